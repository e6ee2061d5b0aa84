import { readFile, readlink, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlStoreError } from '../../errors.ts';
import { isProcessAlive } from './processCoordination.ts';

/**
 * The embedded server as its postmaster.pid shows it: running or not, ready, gone. Read by the
 * process holding the home's lock (embedded.ts), which alone starts and stops the server.
 */
export interface ServerFiles {
  home: string;
  data: string;
  log: string;
}

/** How often a starting or stopping server is looked at. */
const WATCH_MS = 5;
const STOP_TIMEOUT_MS = 60_000;

/**
 * Reads postmaster.pid (line 1: pid, line 4: port). The file is stale when its process is gone
 * or is not a server of this data directory (the pid was reused): it is then removed so the next
 * start is clean. A live server's file is never removed: two servers on one data directory
 * would corrupt it.
 */
export async function postmasterOf(layout: ServerFiles): Promise<{ pid: number; port: number } | null> {
  const pidFile = path.join(layout.data, 'postmaster.pid');
  const lines = (await readFile(pidFile, 'utf8').catch(() => '')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  if (await isServerOf(pid, layout.data)) return { pid, port };
  await rm(pidFile, { force: true });
  return null;
}

async function isServerOf(pid: number, dataDir: string): Promise<boolean> {
  if (!isProcessAlive(`${pid}:`)) return false;
  // A postmaster's working directory is its data directory (it chdir()s there at start).
  const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => null);
  if (cwd !== null) return cwd === (await realpath(dataDir));
  // Unreadable (no /proc, or not allowed): when in doubt, it is a live server.
  const command = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => 'postgres');
  return command.trim() === 'postgres';
}

/**
 * Resolves when the server is ready: when `pgCtl` (start -w) succeeds, or sooner, when the
 * postmaster.pid of a live server of this data directory says `ready` (what pg_ctl itself waits
 * for, but it looks every 100 ms and a server is up in a few tens: every CLI run paid it). We hold
 * the home's lock and found no server running, so a ready server here is the one being started.
 * pg_ctl's own outcome is still awaited when it comes first: a start that fails rejects.
 */
export async function startedOrReady(layout: ServerFiles, pgCtlStart: Promise<void>): Promise<void> {
  let settled = false;
  const started = pgCtlStart.finally(() => (settled = true));
  // Once the server is ready, pg_ctl's later exit is of no interest (it reports the same).
  started.catch(() => undefined);
  const ready = (async () => {
    while (!settled) {
      if (await isReady(layout)) return;
      await sleep(WATCH_MS);
    }
    await started;
  })();
  await Promise.race([started, ready]);
}

async function isReady(layout: ServerFiles): Promise<boolean> {
  const lines = (await readFile(path.join(layout.data, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
  const pid = Number(lines[0]);
  return lines[7]?.trim() === 'ready' && Number.isSafeInteger(pid) && pid > 0 && (await isServerOf(pid, layout.data));
}

/** Returns once the server process has exited (still under the lock: no start may overlap its shutdown). */
export async function untilStopped(layout: ServerFiles, pid: number): Promise<void> {
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (await isServerOf(pid, layout.data)) {
    if (Date.now() > deadline)
      throw new ControlStoreError(
        `the embedded PostgreSQL of ${layout.home} (pid ${pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s ` +
          `(see ${layout.log})`,
        { home: layout.home, pid },
      );
    await sleep(WATCH_MS);
  }
}
