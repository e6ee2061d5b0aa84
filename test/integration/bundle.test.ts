import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFunction } from '../support/bundle.ts';

/** Each Lambda entry point bundles with esbuild into one file that loads and exports a handler. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;

beforeAll(async () => {
  const cache = path.join(ROOT, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  dir = await mkdtemp(path.join(cache, 'retention-bundle-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('function bundles', () => {
  it.each(['blobs', 'rows', 'tokens', 'health'])('functions/%s.ts bundles and exports a handler', async (name) => {
    const outfile = path.join(dir, `${name}.mjs`);
    const bytes = await bundleFunction(path.join(ROOT, 'functions', `${name}.ts`), outfile);
    expect(bytes).toBeGreaterThan(0);
    // Loaded in a fresh process with nothing configured, as at a cold start before secrets.
    const probe = `const m = await import(${JSON.stringify(outfile)}); process.stdout.write(typeof m.handler);`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', probe], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '' },
    });
    expect(stdout.trim().split('\n').at(-1)).toBe('function');
  });
});
