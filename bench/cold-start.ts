/**
 * Cold start of each Lambda function (issue 6): bundles `functions/*.ts` as a deployment would
 * (esbuild: minified, platform node, target node22, ESM), then prints per function the bundle size
 * and the time from process start to handler ready — a fresh `node` imports the bundle and reports
 * `performance.now()` (milliseconds since its own start) once `handler` is a function. The median
 * of several runs is shown against an empty handler bundled and measured the same way, in the same run.
 * Targets: ≤ 2 MB per bundle, ≤ 300 ms to ready. Exit code 1 when a function misses one.
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
import { bundleFunction } from '../test/support/bundle.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FUNCTIONS = ['blobs', 'rows', 'tokens', 'health'];
const MAX_BYTES = 2 * 1024 * 1024;
const MAX_READY_MS = 300;
const runsFlag = process.argv.indexOf('--runs');
const runs = runsFlag === -1 ? 7 : Number(process.argv[runsFlag + 1]);
const externalAwsSdk = process.argv.includes('--external-aws-sdk');

// As deployed: Sentry initialises at cold start when a DSN is linked (nothing is sent at init), and
// the health function has its token.
const COLD_START_ENV = {
  ...process.env,
  SENTRY_DSN: 'http://public@127.0.0.1:9/1',
  RETENTION_HEALTH_TOKEN: 'bench',
  RETENTION_LOG_LEVEL: 'error',
};

/** Milliseconds from a fresh process's start until the bundle's handler is ready. */
async function readyMs(bundlePath: string, probe: string): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, [probe, bundlePath], {
    env: COLD_START_ENV,
    cwd: path.dirname(bundlePath),
  });
  // The figure is the last line: a function may log at cold start.
  return Number(stdout.trim().split('\n').at(-1));
}

const median = (samples: number[]): number => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;

async function main(): Promise<void> {
  // Inside the project, so that what is left external still resolves from node_modules.
  const cache = path.join(ROOT, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  const dir = await mkdtemp(path.join(cache, 'retention-cold-start-'));
  try {
    const probe = path.join(dir, 'probe.mjs');
    await writeFile(
      probe,
      "const m = await import(new URL(process.argv[2], 'file://').href);\n" +
        "if (typeof m.handler !== 'function') throw new Error('no handler export');\n" +
        'process.stdout.write(String(performance.now()));\n',
    );
    const empty = path.join(dir, 'empty.ts');
    await writeFile(empty, 'export const handler = async () => ({});\n');

    const rows: Array<{ name: string; outfile: string; bytes: number; samples: number[]; baseline: boolean }> = [];
    for (const [name, entry] of [
      ['(empty handler)', empty],
      ...FUNCTIONS.map((fn) => [fn, path.join(ROOT, 'functions', `${fn}.ts`)]),
    ] as const) {
      const outfile = path.join(dir, `${name.replace(/\W/g, '') || 'empty'}.mjs`);
      rows.push({
        name,
        outfile,
        bytes: await bundleFunction(entry, outfile, { externalAwsSdk }),
        samples: [],
        baseline: entry === empty,
      });
    }
    // Round-robin, so that a burst of load elsewhere on the machine hits every bundle alike.
    for (let run = 0; run < runs; run += 1) {
      for (const row of rows) row.samples.push(await readyMs(row.outfile, probe));
    }

    const baselineMs = median(rows.find((row) => row.baseline)!.samples);
    console.log(
      `cold start, ${os.cpus().length} cores, node ${process.version}, median of ${runs} runs${externalAwsSdk ? ', @aws-sdk/* external' : ''}\n`,
    );
    console.log(
      [
        'function'.padEnd(16),
        'bundle'.padStart(10),
        'ready'.padStart(9),
        'over empty'.padStart(11),
        '  targets (≤ 2 MB, ≤ 300 ms)',
      ].join(''),
    );
    let missed = false;
    for (const row of rows) {
      const ms = median(row.samples);
      const over = row.baseline ? '-' : `+${(ms - baselineMs).toFixed(0)} ms`;
      const verdict = row.baseline ? '' : row.bytes <= MAX_BYTES && ms <= MAX_READY_MS ? 'ok' : 'MISSED';
      if (verdict === 'MISSED') missed = true;
      console.log(
        [
          row.name.padEnd(16),
          `${(row.bytes / 1024 / 1024).toFixed(2)} MB`.padStart(10),
          `${ms.toFixed(0)} ms`.padStart(9),
          over.padStart(11),
          `  ${verdict}`,
        ].join(''),
      );
    }
    if (missed) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
