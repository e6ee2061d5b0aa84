import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { BIN } from '../support/cli.ts';

/** `retention serve --port 0` in a child process, as an operator starts it; `url` from what it prints. */
export interface ServeProcess {
  url: string;
  child: ChildProcess;
  output(): { stdout: string; stderr: string };
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

export async function startServe(args: string[], env: Record<string, string>): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, ...args, 'serve', '--port', '0'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  // Whatever happens to the test file, the server does not outlive it.
  const orphaned = () => child.kill('SIGKILL');
  process.once('exit', orphaned);
  void exited.then(() => process.off('exit', orphaned));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /^dashboard: (http:\/\/\S+?)\/$/m.exec(stdout);
      if (match) resolve(match[1]!);
    });
    void exited.then(([code]) =>
      reject(new Error(`retention serve exited ${code} before listening:\n${stdout}\n${stderr}`)),
    );
  });
  return {
    url,
    child,
    output: () => ({ stdout, stderr }),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}
