import { execFile } from 'node:child_process';
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

export function runCli(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: options.cwd, env: { ...process.env, RETENTION_LOG_LEVEL: 'info', ...options.env }, maxBuffer: 64 * 1024 * 1024 },
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
export async function seedFiles(root: string, files: Array<{ key: string; mtime: Date; content?: string }>): Promise<void> {
  for (const file of files) {
    const target = path.join(root, file.key);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, file.content ?? `content of ${file.key}`);
    await utimes(target, file.mtime, file.mtime);
  }
}
