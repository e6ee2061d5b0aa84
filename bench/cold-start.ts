/**
 * Cold start of each Lambda function (issue 6, issue 16 item 3): bundles each function entry as a
 * deployment does (test/support/bundle.ts: SST's esbuild options, code splitting, the plugins;
 * the entries of one control store kind, the plan's functionHandler) and prints per function what
 * a cold start reads (the entry and its static chunks) and everything deployed (lazy chunks
 * included), unzipped and deflated as in the zip Lambda downloads. Then a fresh `node` imports the
 * function and reports, from its own start, when `handler` is ready and when the code of a first
 * run is loaded too (FIRST_RUN: its stores and control store, through the loaders the entry
 * carries), each as wall-clock and CPU time. Medians of several runs, against an empty handler
 * bundled and measured the same way. Targets: ≤ 1.5 MB deployed (hence read at cold start too),
 * ≤ 250 ms to ready. Exit code 1 when a function misses one. `--control dynamodb` measures the
 * entries of a DynamoDB control store. `--external-aws-sdk` leaves `@aws-sdk/*` out of the
 * bundles, as if taken from the Lambda runtime.
 *
 *   npx tsx bench/cold-start.ts [--runs 7] [--control postgres|dynamodb] [--external-aws-sdk]
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ControlKind } from '../lib/control/registry.ts';
import type { DataClass } from '../lib/core/types.ts';
import { functionHandler } from '../lib/serverless/bundling.ts';
import type { FunctionRole } from '../lib/serverless/naming.ts';
import type { StoreKind } from '../lib/stores/registry.ts';
import { bundleFunction, type FunctionBundle } from '../test/support/bundle.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAX_BYTES = 1.5 * 1024 * 1024;
const MAX_READY_MS = 250;
const runsFlag = process.argv.indexOf('--runs');
const runs = runsFlag === -1 ? 7 : Number(process.argv[runsFlag + 1]);
const externalAwsSdk = process.argv.includes('--external-aws-sdk');
const controlFlag = process.argv.indexOf('--control');
const control = (controlFlag === -1 ? 'postgres' : process.argv[controlFlag + 1]) as ControlKind;

/**
 * What the first run of each function loads, for the kind of deployment retention.config.ts
 * ships: S3 blobs (also a rows policy's linked files), PostgreSQL rows, DynamoDB tokens; the
 * control store of --control. Stores by class and kind, through the class's loader table.
 */
const FIRST_RUN: Record<FunctionRole, Array<[DataClass, StoreKind]>> = {
  blobs: [['blobs', 's3']],
  rows: [
    ['rows', 'postgres'],
    ['blobs', 's3'],
  ],
  tokens: [['tokens', 'dynamodb']],
  health: [],
  api: [],
};
/** The loader table each data class's entry imports (lib/stores/). */
const LOADER_TABLES: Record<DataClass, [file: string, name: string]> = {
  blobs: ['lib/stores/blobLoaders.ts', 'BLOB_LOADERS'],
  rows: ['lib/stores/rowLoaders.ts', 'ROW_LOADERS'],
  tokens: ['lib/stores/tokenLoaders.ts', 'TOKEN_LOADERS'],
};
const CONTROL_LOADER: Record<ControlKind, [file: string, name: string]> = {
  postgres: ['lib/control/postgres/load.ts', 'loadPostgresControl'],
  dynamodb: ['lib/control/dynamodb/load.ts', 'loadDynamoControl'],
};

/** The function entry of a role for --control, as the deployment plan names it. */
const entryOf = (role: FunctionRole) => path.join(ROOT, functionHandler(role, control).replace(/\.handler$/, '.ts'));

// As deployed: Sentry initialises at cold start when a DSN is linked (nothing is sent at init), and
// the health function has its token.
const COLD_START_ENV = {
  ...process.env,
  SENTRY_DSN: 'http://public@127.0.0.1:9/1',
  RETENTION_HEALTH_TOKEN: 'bench',
  RETENTION_API_TOKEN: 'bench-operator-token',
  RETENTION_LOG_LEVEL: 'error',
};

/** The function's module and a `firstRun()` that loads its first run's code as its loaders do. */
function probeEntry(role: FunctionRole): string {
  const file = (name: string) => JSON.stringify(path.join(ROOT, name));
  const stores = FIRST_RUN[role];
  // The role's own table: a rows function opens linked blob stores through ROW_LOADERS too.
  const table = stores[0] ? LOADER_TABLES[stores[0][0]] : undefined;
  const [controlFile, controlLoader] = CONTROL_LOADER[control];
  const loads = [
    ...stores.map(([dataClass, kind]) => `${table![1]}.${dataClass}[${JSON.stringify(kind)}]()`),
    `${controlLoader}()`,
  ];
  return [
    `export { handler } from ${JSON.stringify(entryOf(role))};`,
    ...(table ? [`import { ${table[1]} } from ${file(table[0])};`] : []),
    `import { ${controlLoader} } from ${file(controlFile)};`,
    `export const firstRun = () => Promise.all([${loads.join(', ')}]);`,
  ].join('\n');
}

const EMPTY_ENTRY = 'export const handler = async () => ({});\nexport const firstRun = async () => {};\n';

/** Imports a probe entry in a fresh process: figures since the process started. */
const PROBE = [
  "const m = await import(new URL(process.argv[2], 'file://').href);",
  "if (typeof m.handler !== 'function') throw new Error('no handler export');",
  'const ready = performance.now();',
  'const cpu = process.cpuUsage();',
  'await m.firstRun();',
  'const firstRunCpu = process.cpuUsage();',
  'const ms = ({ user, system }) => (user + system) / 1000;',
  "process.stdout.write([ready, ms(cpu), performance.now(), ms(firstRunCpu)].join(' '));",
].join('\n');

/** One cold start, in milliseconds since the process started; cpu is user + system time of every thread. */
interface Start {
  ready: number;
  cpu: number;
  firstRun: number;
  firstRunCpu: number;
}

async function coldStart(probeBundle: string, probe: string): Promise<Start> {
  const { stdout } = await promisify(execFile)(process.execPath, [probe, probeBundle], {
    env: COLD_START_ENV,
    cwd: path.dirname(probeBundle),
  });
  // The figures are the last line: a function may log at cold start.
  const [ready, cpu, firstRun, firstRunCpu] = stdout.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { ready: ready!, cpu: cpu!, firstRun: firstRun!, firstRunCpu: firstRunCpu! };
}

const median = (samples: number[]): number => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;

interface Row {
  name: string;
  /** The function as deployed: its sizes. */
  bundle: FunctionBundle;
  /** Its probe entry bundled the same way: what is timed. */
  probeBundle: string;
  starts: Start[];
}

async function main(): Promise<void> {
  // Inside the project, so that what is left external still resolves from node_modules.
  const cache = path.join(ROOT, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  const dir = await mkdtemp(path.join(cache, 'retention-cold-start-'));
  try {
    const probe = path.join(dir, 'probe.mjs');
    await writeFile(probe, `${PROBE}\n`);
    const rows: Row[] = [];
    for (const role of ['empty', ...Object.keys(FIRST_RUN)] as Array<FunctionRole | 'empty'>) {
      const probeSource = path.join(dir, `${role}-probe.ts`);
      await writeFile(probeSource, role === 'empty' ? EMPTY_ENTRY : probeEntry(role));
      const entry = role === 'empty' ? probeSource : entryOf(role);
      const options = { externalAwsSdk };
      rows.push({
        name: role === 'empty' ? '(empty handler)' : role,
        bundle: await bundleFunction(entry, path.join(dir, role), options),
        probeBundle: (await bundleFunction(probeSource, path.join(dir, `${role}-probe`), options)).entry,
        starts: [],
      });
    }
    // Round-robin, so that a burst of load elsewhere on the machine hits every bundle alike.
    for (let run = 0; run < runs; run += 1) {
      for (const row of rows) row.starts.push(await coldStart(row.probeBundle, probe));
    }
    report(rows);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function report(rows: Row[]): void {
  const of = (row: Row, figure: keyof Start) => median(row.starts.map((start) => start[figure]));
  const [empty, ...functions] = rows;
  const options = [`${control} control store`, ...(externalAwsSdk ? ['@aws-sdk/* external'] : [])];
  console.log(
    `cold start, ${os.cpus().length} cores, node ${process.version}, median of ${runs} runs, ${options.join(', ')}\n`,
  );
  const widths = [16, 9, 10, 9, 9, 11, 8, 10, 8];
  const line = (cells: string[]) =>
    console.log(cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(''));
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;
  const ms = (value: number) => `${value.toFixed(0)} ms`;
  line(['', 'read at', 'deployed', '', '', '', '', 'first run', '']);
  line(['function', 'start', 'unzipped', 'zipped', 'ready', 'over empty', 'cpu', 'loaded', 'cpu']);
  for (const row of [empty!, ...functions]) {
    const ready = of(row, 'ready');
    const baseline = row === empty;
    const met = row.bundle.totalBytes <= MAX_BYTES && ready <= MAX_READY_MS;
    if (!baseline && !met) process.exitCode = 1;
    line([
      row.name,
      mb(row.bundle.startBytes),
      mb(row.bundle.totalBytes),
      mb(row.bundle.zippedBytes),
      ms(ready),
      baseline ? '-' : `+${ms(ready - of(empty!, 'ready'))}`,
      ms(of(row, 'cpu')),
      ms(of(row, 'firstRun')),
      ms(of(row, 'firstRunCpu')),
      baseline ? '' : met ? '  ok' : '  MISSED (≤ 1.5 MB deployed, ≤ 250 ms)',
    ]);
  }
}

await main();
