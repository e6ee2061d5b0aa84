import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import { CONTROL_BACKENDS, type ControlKind } from '../../lib/control/registry.ts';
import type { DataClass } from '../../lib/core/types.ts';
import { ConfigError } from '../../lib/errors.ts';
import { functionHandler } from '../../lib/serverless/bundling.ts';
import { planDeployment } from '../../lib/serverless/deployment.ts';
import type { FunctionRole } from '../../lib/serverless/naming.ts';
import { openStore } from '../../lib/stores/descriptors.ts';
import { TOKEN_LOADERS } from '../../lib/stores/tokenLoaders.ts';
import { bundleFunction, type FunctionBundle } from '../support/bundle.ts';
import { startVercelBlobStandIn } from '../support/vercelBlob.ts';

/**
 * Each Lambda entry point bundles as SST deploys it (code splitting, the plugins), one per role
 * and control store kind as the deployment plan names them: everything it deploys fits in 1.5 MB,
 * a cold start reads no backend SDK, every lazy chunk loads, and it carries the store code of its
 * own class and the control store of its own kind only.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAX_BYTES = 1.5 * 1024 * 1024;
/** The stores' and control stores' SDKs and drivers, and the Lambda client of backfill continuations. */
const LAZY_PACKAGES = [
  '@aws-sdk/client-s3',
  '@aws-sdk/client-dynamodb',
  '@aws-sdk/client-lambda',
  '@vercel/blob',
  'pg',
  '@neondatabase/serverless',
];
const ROLES: FunctionRole[] = ['blobs', 'rows', 'tokens', 'health', 'api'];
/**
 * The code of each class's stores, as its loaders import it. The tokens store of PostgreSQL is
 * built on the rows store's code, so what is the rows class's alone is its loader.
 */
const STORE_CODE: Record<DataClass, string[]> = {
  blobs: ['lib/stores/fs/store.ts', 'lib/stores/s3/store.ts', 'lib/stores/vercel-blob/store.ts'],
  rows: ['lib/stores/postgres/loadRows.ts'],
  tokens: ['lib/stores/dynamodb/store.ts', 'lib/stores/postgres/tokens.ts'],
};
/** The classes whose stores a data-class function opens: its own, and a rows policy's linked files. */
const OPENS: Record<DataClass, DataClass[]> = { blobs: ['blobs'], rows: ['rows', 'blobs'], tokens: ['tokens'] };
const CONTROL_CODE: Record<ControlKind, string> = {
  postgres: 'lib/control/postgres/open.ts',
  dynamodb: 'lib/control/dynamodb/open.ts',
};
const ENTRIES = CONTROL_BACKENDS.flatMap(({ kind: control }) =>
  ROLES.map((role) => ({ role, control, entry: functionHandler(role, control).replace(/\.handler$/, '.ts') })),
);
let dir: string;

beforeAll(async () => {
  const cache = path.join(ROOT, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  dir = await mkdtemp(path.join(cache, 'retention-bundle-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `script` (an ES module) in a fresh Node process in the bundle directory; its last stdout line. */
async function runNode(script: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  return stdout.trim().split('\n').at(-1) ?? '';
}

describe.each(ENTRIES)('$entry', ({ role, control, entry }) => {
  let bundle: FunctionBundle;
  beforeAll(async () => {
    bundle = await bundleFunction(path.join(ROOT, entry), path.join(dir, control, role));
  });

  it('deploys at most 1.5 MB, starts without its backends and loads each on demand', async () => {
    expect(bundle.totalBytes).toBeLessThanOrEqual(MAX_BYTES);
    expect(bundle.startBytes).toBeLessThan(bundle.totalBytes);
    expect(LAZY_PACKAGES.filter((pkg) => bundle.startPackages.has(pkg))).toEqual([]);
    // Loaded in a fresh process with nothing configured, as at a cold start before secrets; then
    // every lazy chunk, as runs would load them (a chunk that fails to load fails a run, not the start).
    const probe = [
      `const m = await import(${JSON.stringify(bundle.entry)});`,
      `const chunks = ${JSON.stringify([...bundle.lazyChunks.values()])};`,
      'for (const chunk of chunks) await import(chunk);',
      "process.stdout.write([typeof m.handler, chunks.length].join(' '));",
    ].join('\n');
    expect(await runNode(probe)).toBe(`function ${bundle.lazyChunks.size}`);
    expect(bundle.lazyChunks.size).toBeGreaterThan(0);
  });

  it("carries its own class's stores and its own control store kind, nothing of the others", () => {
    const carried = (files: string[]) => files.filter((file) => bundle.inputs.has(file));
    for (const [kind, file] of Object.entries(CONTROL_CODE)) {
      expect(carried([file]), `${kind} control store`).toEqual(kind === control ? [file] : []);
    }
    if (role === 'health') expect(carried(Object.values(STORE_CODE).flat())).toEqual([]);
    if (role === 'health' || role === 'api') return;
    for (const [dataClass, files] of Object.entries(STORE_CODE) as Array<[DataClass, string[]]>) {
      expect(carried(files), `${dataClass} stores`).toEqual(OPENS[role].includes(dataClass) ? files : []);
    }
  });
});

describe('the deployment plan', () => {
  const CONTROLS = {
    postgres: { kind: 'postgres', url: 'postgres://retention@db/retention' },
    dynamodb: { kind: 'dynamodb', table: 'retention-control', region: 'eu-west-1' },
  } as const;
  it.each(CONTROL_BACKENDS.map((backend) => backend.kind))('names entries of control kind %s that exist', (kind) => {
    const policies = (['blobs', 'tokens'] as const).map((dataClass) => ({
      name: dataClass,
      class: dataClass,
      store:
        dataClass === 'blobs'
          ? { kind: 's3', bucket: 'docs', region: 'eu-west-1' }
          : { kind: 'dynamodb', table: 'sessions', key: { partition: 'id' } },
      retention: '7d',
      schedule: '0 3 * * *',
    }));
    const config = parseConfig({ control: CONTROLS[kind], policies } as Parameters<typeof parseConfig>[0]);
    const context = { app: 'app', stage: 'test', region: 'eu-west-1', accountId: '123456789012' };
    const handlers = planDeployment(config, context).functions.map((fn) => fn.handler);
    expect(handlers).toEqual(
      ['blobs', 'tokens', 'health', 'api'].map((role) => functionHandler(role as FunctionRole, kind)),
    );
    expect(handlers.filter((handler) => !existsSync(path.join(ROOT, handler.replace(/\.handler$/, '.ts'))))).toEqual(
      [],
    );
  });
});

describe('a kind a function does not carry', () => {
  it('a control store kind: the function refuses at start, naming control.kind and the fix', async () => {
    const bundle = await bundleFunction(path.join(ROOT, 'functions/blobs.ts'), path.join(dir, 'refusal'));
    const config = path.join(dir, 'dynamodb-control.json');
    await writeFile(
      config,
      JSON.stringify({
        control: { kind: 'dynamodb', table: 'retention-control', region: 'eu-west-1' },
        policies: [
          {
            name: 'pdfs',
            class: 'blobs',
            store: { kind: 's3', bucket: 'docs', region: 'eu-west-1' },
            retention: '7d',
            schedule: '0 3 * * *',
          },
        ],
      }),
    );
    const probe = [
      `const { handler } = await import(${JSON.stringify(bundle.entry)});`,
      "const context = { functionName: 'f', awsRequestId: 'r', getRemainingTimeInMillis: () => 60000 };",
      "const result = await handler({ policy: 'pdfs', trigger: 'scheduled' }, context);",
      'process.stdout.write(JSON.stringify(result));',
    ].join('\n');
    const result = JSON.parse(await runNode(probe, { RETENTION_CONFIG: config, RETENTION_LOG_LEVEL: 'error' }));
    expect(result.error.code).toBe('bad_config');
    expect(result.error.issues).toEqual([
      {
        path: 'control.kind',
        message: expect.stringContaining('"dynamodb" is not in this function\'s code (it has: postgres)'),
        fix: expect.stringContaining('npx sst deploy'),
      },
    ]);
  });

  it("a store kind outside the loaders' classes: refused before any code is loaded", async () => {
    const policy = {
      name: 'pdfs',
      class: 'blobs',
      retention: { default: 7 * 86_400_000 },
      store: { kind: 's3', bucket: 'docs', prefix: '' },
    } as unknown as Parameters<typeof openStore>[1];
    const refused = await openStore(TOKEN_LOADERS, policy).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as ConfigError).issues).toEqual([
      {
        path: 'store.kind',
        message: 'a blobs store of kind "s3" is not in this function\'s code (it has: none)',
        fix: 'run the policy in the blobs function, or with the CLI',
      },
    ]);
  });
});

describe('the plugins', () => {
  it("@vercel/blob, bundled with Node's fetch and without the OIDC refresh, still lists and deletes", async () => {
    const standIn = await startVercelBlobStandIn();
    try {
      standIn.seed([{ pathname: 'u/old.txt', uploadedAt: new Date('2020-01-01T00:00:00Z'), body: 'x' }]);
      const source = path.join(dir, 'vercel-blob-probe.ts');
      await writeFile(
        source,
        [
          `import { parseConfig } from ${JSON.stringify(path.join(ROOT, 'lib/config/load.ts'))};`,
          `import { BLOB_LOADERS } from ${JSON.stringify(path.join(ROOT, 'lib/stores/blobLoaders.ts'))};`,
          `import { openStore } from ${JSON.stringify(path.join(ROOT, 'lib/stores/descriptors.ts'))};`,
          'const store = { kind: "vercel-blob", prefix: "u/", token: process.env.TOKEN };',
          'const policy = { name: "uploads", class: "blobs", retention: "1d", schedule: "0 3 * * *", store };',
          'const opened = await openStore(BLOB_LOADERS, parseConfig({ policies: [policy] }).policies[0]);',
          'await opened.open();',
          'const page = await opened.scan({ cursor: undefined, limit: 10 });',
          'const outcomes = await opened.delete(page.items.map((item) => ({ ...item, cutoff: new Date() })));',
          'process.stdout.write(JSON.stringify({ keys: page.items.map((item) => item.key), outcomes }));',
        ].join('\n'),
      );
      const bundle = await bundleFunction(source, path.join(dir, 'vercel-blob-probe'));
      // Neither undici nor the OIDC refresh (jose, the Vercel CLI's helpers) is deployed.
      const refresh = /node_modules\/(undici|jose|@vercel\/cli-[a-z]+)\/|get-vercel-oidc-token-with-refresh/;
      expect([...bundle.inputs].filter((input) => refresh.test(input))).toEqual([]);
      const probe = `await import(${JSON.stringify(bundle.entry)});`;
      const result = JSON.parse(await runNode(probe, { VERCEL_BLOB_API_URL: standIn.apiUrl, TOKEN: standIn.token }));
      expect(result.keys).toEqual(['u/old.txt']);
      expect(result.outcomes).toEqual([expect.objectContaining({ key: 'u/old.txt', status: 'deleted' })]);
      expect(standIn.get('u/old.txt')).toBeUndefined();
    } finally {
      await standIn.stop();
    }
  });
});
