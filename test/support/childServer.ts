import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A test server started in a child process announces `{"port": N}` as its first stdout line. */
export async function readPort(child: ChildProcess, name: string): Promise<number> {
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${name} exited early (code ${code})`))),
  );
  const first = new Promise<string>((resolve) => lines.once('line', resolve));
  const line = await Promise.race([first, exited]);
  lines.close();
  return (JSON.parse(line) as { port: number }).port;
}
