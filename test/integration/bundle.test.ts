import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFunction } from '../support/bundle.ts';

/**
 * Each Lambda entry point bundles as SST deploys it (code splitting): a cold start reads at most
 * 1.5 MB and no backend SDK, the entry exports a handler, and every lazy chunk loads.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAX_START_BYTES = 1.5 * 1024 * 1024;
/** The stores' and control stores' SDKs and drivers, and the Lambda client of backfill continuations. */
const LAZY_PACKAGES = [
  '@aws-sdk/client-s3',
  '@aws-sdk/client-dynamodb',
  '@aws-sdk/client-lambda',
  '@vercel/blob',
  'pg',
  '@neondatabase/serverless',
];
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
  it.each(['blobs', 'rows', 'tokens', 'health', 'api'])(
    'functions/%s.ts starts without its backends and loads each on demand',
    async (name) => {
      const bundle = await bundleFunction(path.join(ROOT, 'functions', `${name}.ts`), path.join(dir, name));
      expect(bundle.startBytes).toBeLessThanOrEqual(MAX_START_BYTES);
      expect(LAZY_PACKAGES.filter((pkg) => bundle.startPackages.has(pkg))).toEqual([]);
      // Loaded in a fresh process with nothing configured, as at a cold start before secrets; then
      // every lazy chunk, as runs would load them (a chunk that fails to load fails a run, not the start).
      const probe = [
        `const m = await import(${JSON.stringify(bundle.entry)});`,
        `const chunks = ${JSON.stringify([...bundle.lazyChunks.values()])};`,
        'for (const chunk of chunks) await import(chunk);',
        "process.stdout.write([typeof m.handler, chunks.length].join(' '));",
      ].join('\n');
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', probe], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '' },
      });
      expect(stdout.trim().split('\n').at(-1)).toBe(`function ${bundle.lazyChunks.size}`);
      expect(bundle.lazyChunks.size).toBeGreaterThan(0);
    },
  );
});
