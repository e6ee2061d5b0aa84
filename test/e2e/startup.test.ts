import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../support/cli.ts';

/**
 * What a CLI command loads before it does anything: every command pays for it, every run, and the
 * test suite runs the CLI hundreds of times. The scheduler pulls in Sentry, the server Hono, the
 * stores their SDKs: each only where its command or policy needs it. (A static import of the
 * daemon once made every command load @sentry/node: 2 s → 9 s per start-up on this machine.)
 */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'retention-startup-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The packages a CLI invocation resolved, from a module-resolution hook in the child. */
async function packagesLoadedBy(args: string[]): Promise<{ code: number; packages: Set<string> }> {
  const log = path.join(dir, `resolved-${args.join('-').replace(/\W+/g, '_')}.txt`);
  const hooks = path.join(dir, 'hooks.mjs');
  await writeFile(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.RESOLVED_LOG, result.url + '\\n');
  return result;
}`,
  );
  const register = `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)});`;
  const code = await new Promise<number>((resolve) => {
    execFile(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(register)}`, BIN, ...args],
      { env: { ...process.env, RESOLVED_LOG: log } },
      (error) => resolve(error ? Number((error as { code?: number }).code ?? 1) : 0),
    );
  });
  const urls = (await readFile(log, 'utf8')).split('\n');
  const packages = new Set(urls.flatMap((url) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1] ?? []));
  return { code, packages };
}

describe('CLI start-up', () => {
  it('a command on a local policy loads no cloud SDK, no Sentry, no HTTP server', async () => {
    const config = path.join(dir, 'bad.json');
    const policy = {
      name: 'x',
      class: 'blobs',
      store: { kind: 'fs', root: 'relative' },
      retention: '30d',
      schedule: '0 3 * * *',
    };
    await writeFile(config, JSON.stringify({ policies: [policy] }));
    const { code, packages } = await packagesLoadedBy(['--config', config, 'plan', '--policy', 'x']);
    expect(code).toBe(2);
    expect(packages.has('commander')).toBe(true);
    const heavy = [...packages].filter((name) => /^(@sentry|@aws-sdk|@vercel|@hono|hono|@opentelemetry)/.test(name));
    expect(heavy).toEqual([]);
  });
});
