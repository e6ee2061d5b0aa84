import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Runs the CLI as an operator does (`node bin/retention.js …`, its own process, the embedded
 * control store under a $RETENTION_HOME of its own unless the config names one) and times it
 * from spawn to exit (wall clock, and CPU time through /usr/bin/time). Shared by bench/rows.ts
 * (the default policy through the CLI) and bench/cliCost.ts (a run with nothing to do).
 */
const BIN = path.join(import.meta.dirname, '..', 'bin', 'retention.js');

export interface CliRun {
  seconds: number;
  /** CPU seconds (user + system) of the CLI process and what it waited for (pg_ctl), not of the server. */
  cpuSeconds: number;
  exitCode: number | null;
  stdout: string;
  /** The JSON log lines the run wrote to stderr, parsed. */
  events: Array<Record<string, unknown>>;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, cwd: string, bin = BIN): Promise<CliRun> {
  return runTimed([process.execPath, bin, ...args], env, cwd);
}

/** Any command, timed the same way (`node -e 0` for the runtime alone). */
export async function runTimed(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<CliRun> {
  const started = performance.now();
  const times = path.join(cwd, `cpu-${process.pid}-${started}`);
  const child = spawn('/usr/bin/time', ['-f', '%U %S', '-o', times, ...argv], { cwd, env: { ...process.env, ...env } });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const exitCode = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const seconds = (performance.now() - started) / 1000;
  const [user = 0, system = 0] = (await readFile(times, 'utf8')).trim().split(' ').map(Number);
  await rm(times, { force: true });
  const events = Buffer.concat(err)
    .toString()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { seconds, cpuSeconds: user + system, exitCode, stdout: Buffer.concat(out).toString(), events };
}

/** A scratch directory with `config` as its retention.config.json and a $RETENTION_HOME of its own. */
export async function cliWorkspace(
  config: unknown,
): Promise<{ dir: string; env: NodeJS.ProcessEnv; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'retention-bench-cli-'));
  await writeFile(path.join(dir, 'retention.config.json'), JSON.stringify(config));
  const env = { RETENTION_HOME: path.join(dir, 'home'), RETENTION_LOG_LEVEL: 'info' };
  return { dir, env, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Milliseconds between consecutive `batch_deleted` lines (by their timestamps): each batch after
 * the first with the checkpoint of the one before (the first one's time includes the run's setup).
 */
export function batchGaps(events: CliRun['events']): number[] {
  const times = events
    .filter((event) => event.event === 'batch_deleted')
    .map((event) => Date.parse(String(event.timestamp)));
  return times.slice(1).map((time, index) => time - times[index]!);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
