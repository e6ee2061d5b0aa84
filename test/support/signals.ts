import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { BIN } from './cli.ts';

export interface SignalledCli {
  /** null when the process was killed by a signal rather than exiting by itself. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI and sends it `signal` once its log has shown `count` `event` lines (e.g. batch_deleted). */
export async function signalCliAfter(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { signal: NodeJS.Signals; event: string; count: number },
): Promise<SignalledCli> {
  const childEnv = { ...env, RETENTION_LOG_LEVEL: 'info' };
  const child = spawn(process.execPath, [BIN, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const marker = `"event":"${options.event}"`;
  let [stdout, stderr, seen] = ['', '', 0];
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    stderr += text;
    seen += text.split(marker).length - 1;
    const running = child.exitCode === null && child.signalCode === null && !child.killed;
    if (seen >= options.count && running) child.kill(options.signal);
  });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}
