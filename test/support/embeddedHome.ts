import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { isProcessAlive } from '../../lib/control/local/processCoordination.ts';

/** Where a home's server keeps its data directory and log: `pg`, or (as root) the directory recorded there. */
export async function serverDirOf(home: string): Promise<string> {
  const recorded = await readFile(path.join(home, 'pg', 'server-dir'), 'utf8').catch(() => '');
  return recorded.trim() || path.join(home, 'pg');
}

/** The pid in a home's postmaster.pid, or null when no server has left one. */
export async function postmasterPid(home: string): Promise<number | null> {
  const text = await readFile(path.join(await serverDirOf(home), 'data', 'postmaster.pid'), 'utf8').catch(() => null);
  return text === null ? null : Number(text.split('\n')[0]);
}

/** Kills whatever server a failed run left in `home`, then removes the home and its server's files. */
export async function removeHome(home: string): Promise<void> {
  const pid = await postmasterPid(home);
  if (pid !== null && isProcessAlive(`${pid}:`)) process.kill(pid, 'SIGKILL');
  await rm(await serverDirOf(home), { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
}

/** A brand-new $RETENTION_HOME under os.tmpdir(), traversable by the postgres user (mkdtemp makes it 0700). */
export async function createHome(prefix = 'retention-home-'): Promise<string> {
  const home = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chmod(home, 0o755);
  return home;
}

/** Registers an afterEach that removes every home `newHome()` made during the test. */
export function useFreshHomes(prefix?: string): () => Promise<string> {
  const homes: string[] = [];
  afterEach(async () => {
    for (const home of homes.splice(0)) await removeHome(home);
  });
  return async () => {
    const home = await createHome(prefix);
    homes.push(home);
    return home;
  };
}
