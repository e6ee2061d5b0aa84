import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';

const scratchDirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const dir of scratchDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const LOCK_MODULE = JSON.stringify(path.resolve('lib/control/local/processCoordination.ts'));

/**
 * A process that, `rounds` times, takes the lock and increments a counter file by read, pause,
 * write: without mutual exclusion, increments are lost. `inside` is created exclusively on entry,
 * so a second process inside at the same time fails loudly instead of merely losing a count.
 */
const WORKER = `
  const { withProcessLock } = await import(${LOCK_MODULE});
  const { readFile, rm, writeFile } = await import('node:fs/promises');
  const { setTimeout: sleep } = await import('node:timers/promises');
  const [dir, rounds] = [process.argv[1], Number(process.argv[2])];
  for (let round = 0; round < rounds; round += 1) {
    await withProcessLock(dir + '/lock', async () => {
      await writeFile(dir + '/inside', String(process.pid), { flag: 'wx' });
      const count = Number(await readFile(dir + '/counter', 'utf8'));
      await sleep(Math.random() * 3);
      await writeFile(dir + '/counter', String(count + 1));
      await rm(dir + '/inside');
    });
  }`;

/** Takes the lock, says so, and keeps it until killed. */
const HOLDER = `
  const { withProcessLock } = await import(${LOCK_MODULE});
  await withProcessLock(process.argv[1] + '/lock', () => {
    console.log('holding');
    return new Promise(() => setInterval(() => undefined, 60_000));
  });`;

function start(script: string, args: string[]): ChildProcess {
  const nodeArgs = ['--import', 'tsx', '--input-type=module', '-e', script, ...args];
  const child = spawn(process.execPath, nodeArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

async function exitOf(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr };
}

describe('the process lock of the embedded server', () => {
  it('admits one process at a time, and exactly one of its waiters when its holder is killed -9', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'retention-lock-'));
    scratchDirs.push(dir);
    await writeFile(path.join(dir, 'counter'), '0');

    // Every worker finds the lock held, then its owner dead: they all race to take it over.
    const holder = start(HOLDER, [dir]);
    await once(createInterface({ input: holder.stdout! }), 'line');
    const [workers, rounds] = [6, 40];
    const exits = Array.from({ length: workers }, () => exitOf(start(WORKER, [dir, String(rounds)])));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    holder.kill('SIGKILL');

    for (const { code, stderr } of await Promise.all(exits)) expect(code, stderr).toBe(0);
    expect(Number(await readFile(path.join(dir, 'counter'), 'utf8'))).toBe(workers * rounds);
    // What remains is the last generation, released; no draft of any process is left behind.
    const left = await readdir(path.join(dir, 'lock'));
    expect(left).toEqual([String(1 + workers * rounds)]);
    expect(JSON.parse(await readFile(path.join(dir, 'lock', left[0]!), 'utf8'))).toMatchObject({ released: true });
  });
});
