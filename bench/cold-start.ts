/**
 * Cold start of each Lambda function (issue 6, issue 16 item 3): bundles `functions/*.ts` as a
 * deployment does (test/support/bundle.ts: SST's esbuild options, code splitting), then prints
 * per function what a cold start reads (the entry and its static chunks), everything deployed
 * (lazy chunks included), and two times from process start: `ready`, when a fresh `node` has
 * imported the entry and `handler` is a function, and `first run`, when it has also imported the
 * chunks a function's first run loads (FIRST_RUN). Medians of several runs, against an empty
 * handler bundled and measured the same way, in the same run.
 * Targets: ≤ 1.5 MB read at cold start, ≤ 250 ms to ready. Exit code 1 when a function misses one.
 * `--external-aws-sdk` leaves `@aws-sdk/*` out of the bundles, as if taken from the Lambda runtime.
 *
 *   npx tsx bench/cold-start.ts [--runs 7] [--external-aws-sdk]
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { bundleFunction, type FunctionBundle } from '../test/support/bundle.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAX_START_BYTES = 1.5 * 1024 * 1024;
const MAX_READY_MS = 250;
const runsFlag = process.argv.indexOf('--runs');
const runs = runsFlag === -1 ? 7 : Number(process.argv[runsFlag + 1]);
const externalAwsSdk = process.argv.includes('--external-aws-sdk');

/**
 * What the first run of each function loads besides its entry, for the shipped
 * retention.config.ts's kind of deployment: a PostgreSQL (Neon) control store, S3 blobs (also a
 * rows policy's linked files), PostgreSQL rows and DynamoDB tokens.
 */
const CONTROL = 'lib/control/postgres/open.ts';
const FIRST_RUN: Record<string, string[]> = {
  blobs: ['lib/stores/s3/store.ts', CONTROL],
  rows: ['lib/stores/postgres/rows.ts', 'lib/stores/postgres/tokens.ts', 'lib/stores/s3/store.ts', CONTROL],
  tokens: ['lib/stores/dynamodb/store.ts', CONTROL],
  health: [CONTROL],
};

// As deployed: Sentry initialises at cold start when a DSN is linked (nothing is sent at init), and
// the health function has its token.
const COLD_START_ENV = {
  ...process.env,
  SENTRY_DSN: 'http://public@127.0.0.1:9/1',
  RETENTION_HEALTH_TOKEN: 'bench',
  RETENTION_LOG_LEVEL: 'error',
};

/** One cold start: milliseconds from process start. */
interface Start {
  /** Until the handler is ready (wall clock). */
  ready: number;
  /** CPU time (user + system, every thread) spent until then: steadier than the wall clock on a busy machine. */
  cpu: number;
  /** Until the chunks of the first run are loaded too. */
  firstRun: number;
}

/** Imports the entry, then the chunks of its first run, in a fresh process. */
const PROBE = [
  "const [entry, ...chunks] = process.argv.slice(2).map((file) => new URL(file, 'file://').href);",
  'const m = await import(entry);',
  "if (typeof m.handler !== 'function') throw new Error('no handler export');",
  'const ready = performance.now();',
  'const { user, system } = process.cpuUsage();',
  'await Promise.all(chunks.map((chunk) => import(chunk)));',
  "process.stdout.write([ready, (user + system) / 1000, performance.now()].join(' '));",
].join('\n');

async function coldStart(bundle: FunctionBundle, chunks: string[], probe: string): Promise<Start> {
  const { stdout } = await promisify(execFile)(process.execPath, [probe, bundle.entry, ...chunks], {
    env: COLD_START_ENV,
    cwd: path.dirname(bundle.entry),
  });
  // The figures are the last line: a function may log at cold start.
  const [ready, cpu, firstRun] = stdout.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { ready: ready!, cpu: cpu!, firstRun: firstRun! };
}

const median = (samples: number[]): number => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;

interface Row {
  name: string;
  bundle: FunctionBundle;
  chunks: string[];
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
    const empty = path.join(dir, 'empty.ts');
    await writeFile(empty, 'export const handler = async () => ({});\n');

    const rows: Row[] = [];
    for (const [name, entry] of [
      ['(empty handler)', empty],
      ...Object.keys(FIRST_RUN).map((fn) => [fn, path.join(ROOT, 'functions', `${fn}.ts`)]),
    ] as const) {
      const bundle = await bundleFunction(entry, path.join(dir, name.replace(/\W/g, '') || 'empty'), {
        externalAwsSdk,
      });
      const chunks = (FIRST_RUN[name] ?? []).map((source) => {
        const chunk = bundle.lazyChunks.get(source);
        if (!chunk) throw new Error(`${name}: no lazy chunk for ${source} (update FIRST_RUN in bench/cold-start.ts)`);
        return chunk;
      });
      rows.push({ name, bundle, chunks, starts: [] });
    }
    // Round-robin, so that a burst of load elsewhere on the machine hits every bundle alike.
    for (let run = 0; run < runs; run += 1) {
      for (const row of rows) row.starts.push(await coldStart(row.bundle, row.chunks, probe));
    }
    report(rows);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function report(rows: Row[]): void {
  const of = (row: Row, figure: keyof Start) => median(row.starts.map((start) => start[figure]));
  const [baseline, ...functions] = rows;
  console.log(
    `cold start, ${os.cpus().length} cores, node ${process.version}, median of ${runs} runs${externalAwsSdk ? ', @aws-sdk/* external' : ''}\n`,
  );
  const widths = [16, 10, 10, 9, 11, 9, 11];
  const line = (cells: string[]) =>
    console.log(cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(''));
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;
  const ms = (value: number) => `${value.toFixed(0)} ms`;
  line([
    'function',
    'at start',
    'deployed',
    'ready',
    'over empty',
    'cpu',
    'first run',
    '  targets (≤ 1.5 MB, ≤ 250 ms)',
  ]);
  line([
    baseline!.name,
    mb(baseline!.bundle.startBytes),
    '',
    ms(of(baseline!, 'ready')),
    '-',
    ms(of(baseline!, 'cpu')),
  ]);
  for (const row of functions) {
    const ready = of(row, 'ready');
    const met = row.bundle.startBytes <= MAX_START_BYTES && ready <= MAX_READY_MS;
    if (!met) process.exitCode = 1;
    line([
      row.name,
      mb(row.bundle.startBytes),
      mb(row.bundle.totalBytes),
      ms(ready),
      `+${ms(ready - of(baseline!, 'ready'))}`,
      ms(of(row, 'cpu')),
      ms(of(row, 'firstRun')),
      met ? '  ok' : '  MISSED',
    ]);
  }
}

await main();
