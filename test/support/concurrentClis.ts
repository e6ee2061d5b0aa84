import { execFile } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exitCodeFor } from '../../lib/cli/run.ts';
import { isProcessAlive } from '../../lib/control/local/processCoordination.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { BIN, seedFiles } from './cli.ts';
import { postmasterPid } from './embeddedHome.ts';

/**
 * Many CLIs at once on one $RETENTION_HOME, half `run` and half `plan` of one small fs policy:
 * they race to start the shared embedded PostgreSQL, use it, and stop it. The contract checked:
 * every process prints its run report and exits with that run's code; the runs together delete
 * each file once; the last one out stops the server and leaves no client behind.
 */
export interface ConcurrencyFigures {
  processes: number;
  wallSeconds: number;
  /** Per process, from spawn to exit: min, median, max. */
  processSeconds: { min: number; median: number; max: number };
  /** `run completed`, `run skipped_locked`, `plan completed`, … */
  outcomes: Record<string, number>;
  exitCodes: Record<string, number>;
  /** Processes that broke the contract, with what they printed. */
  broken: string[];
  deletedByRuns: number;
  deletedOnDisk: number;
  serverStillRunning: boolean;
  clientsLeft: number;
}

const FILES = 200;

export async function runConcurrentClis(home: string, scratch: string, processes: number): Promise<ConcurrencyFigures> {
  const root = path.join(scratch, 'files');
  await mkdir(root, { recursive: true });
  const old = new Date(Date.now() - 90 * 86_400_000);
  await seedFiles(
    root,
    Array.from({ length: FILES }, (_, i) => ({ key: `f${String(i).padStart(4, '0')}.tmp`, mtime: old })),
  );
  const configPath = path.join(scratch, 'retention.json');
  const policy = {
    name: 'files',
    class: 'blobs',
    store: { kind: 'fs', root },
    retention: '30d',
    schedule: '0 * * * *',
  };
  await writeFile(
    configPath,
    JSON.stringify({ policies: [{ ...policy, batchSize: 50, limits: { maxDeleteFraction: 1 } }] }),
  );

  const env = { ...process.env, RETENTION_HOME: home, RETENTION_DATABASE_URL: '', RETENTION_LOG_LEVEL: 'warn' };
  const started = performance.now();
  const commandOf = (index: number): 'run' | 'plan' => (index % 2 === 0 ? 'run' : 'plan');
  const results = await Promise.all(
    Array.from({ length: processes }, (_, index) => runOne(['--config', configPath, commandOf(index), '--json'], env)),
  );
  const wallSeconds = (performance.now() - started) / 1000;

  const figures: ConcurrencyFigures = {
    processes,
    wallSeconds,
    processSeconds: spread(results.map((result) => result.seconds)),
    outcomes: {},
    exitCodes: {},
    broken: [],
    deletedByRuns: 0,
    deletedOnDisk: FILES - (await readdir(root)).length,
    serverStillRunning: false,
    clientsLeft: (await readdir(path.join(home, 'pg', 'clients'))).length,
  };
  results.forEach((result, index) => {
    const command = commandOf(index);
    const stderrTail = `stderr: ${result.stderr.trim().slice(-400)}`;
    count(figures.exitCodes, String(result.code));
    const report = parseReport(result.stdout);
    if (!report) {
      figures.broken.push(`#${index} ${command}: exit ${result.code}, no report; ${stderrTail}`);
      return;
    }
    count(figures.outcomes, `${command} ${report.status}`);
    if (!report.dryRun) figures.deletedByRuns += report.deleted;
    const expected = exitCodeFor([report], false);
    if (result.code !== expected) {
      figures.broken.push(
        `#${index} ${command}: ${report.status} but exit ${result.code}, not ${expected}; ${stderrTail}`,
      );
    }
  });
  const pid = await postmasterPid(home);
  figures.serverStillRunning = pid !== null && isProcessAlive(`${pid}:`);
  return figures;
}

interface Finished {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

function runOne(args: string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

function parseReport(stdout: string): RunReport | null {
  try {
    const report = JSON.parse(stdout) as RunReport;
    return typeof report.status === 'string' ? report : null;
  } catch {
    return null;
  }
}

const count = (tally: Record<string, number>, key: string): void => void (tally[key] = (tally[key] ?? 0) + 1);

function spread(values: number[]): { min: number; median: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (value: number) => Math.round(value * 10) / 10;
  const at = (index: number) => round(sorted[index] ?? 0);
  return { min: at(0), median: at(Math.floor(sorted.length / 2)), max: at(sorted.length - 1) };
}
