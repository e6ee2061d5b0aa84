import { execFile, spawn } from 'node:child_process';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Runs the real CLI (`bin/retention.js`) in a child process, as an operator would. */
export const BIN = fileURLToPath(new URL('../../bin/retention.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: options.cwd,
        env: { ...process.env, RETENTION_LOG_LEVEL: 'info', ...options.env },
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The JSON log lines a run wrote to stderr. */
export function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Creates files under `root` with the given mtimes. */
export async function seedFiles(
  root: string,
  files: Array<{ key: string; mtime: Date; content?: string }>,
): Promise<void> {
  for (const file of files) {
    const target = path.join(root, file.key);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, file.content ?? `content of ${file.key}`);
    await utimes(target, file.mtime, file.mtime);
  }
}

export interface LiveRun {
  /** Resolves once the run has logged `batches` `batch_deleted` lines (or has exited). */
  afterBatches(batches: number): Promise<void>;
  readonly pid: number;
  /** Exit code and stdout (the JSON report with `--json`). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Starts the real CLI in the background (e.g. a long `run --json`) and follows its log lines. */
export function startCli(args: string[], env: Record<string, string>): LiveRun {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, RETENTION_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let batches = 0;
  const waiters: Array<{ batches: number; resolve: () => void }> = [];
  const wake = (): void => {
    for (const waiter of [...waiters]) {
      if (batches >= waiter.batches || child.exitCode !== null) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    stderr += text;
    batches += (text.match(/"event":"batch_deleted"/g) ?? []).length;
    wake();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) =>
      child.once('exit', (code, signal) => {
        // Let the pipes drain before handing out what the process printed.
        setImmediate(() => {
          wake();
          for (const waiter of waiters.splice(0)) waiter.resolve();
          resolve({ code, signal, stdout, stderr });
        });
      }),
  );
  return {
    pid: child.pid!,
    exited,
    afterBatches: (count) =>
      new Promise((resolve) => {
        waiters.push({ batches: count, resolve });
        wake();
      }),
  };
}
