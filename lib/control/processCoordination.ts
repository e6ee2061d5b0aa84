import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlStoreError } from '../errors.ts';

/**
 * Coordination between local processes through the file system, for the embedded control
 * database: a mutual-exclusion lock and a register of live clients. Both survive `kill -9`:
 * every entry names its owner, and an entry whose owner is dead counts for nothing.
 *
 * A process is named `pid:starttime` (start time from /proc, where there is one), so a pid
 * reused after a reboot or in a new container is not mistaken for the original owner.
 */
function processIdentity(pid: number = process.pid): string {
  return `${pid}:${procStat(pid)?.startTime ?? ''}`;
}

export function isProcessAlive(identity: string): boolean {
  const [pidText = '', startTime = ''] = identity.split(':');
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  if (!stat) return true; // No /proc (macOS): the signal check is all we have.
  // A zombie has exited; its parent just has not reaped it (PID 1 in a container may never do).
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === '' || stat.startTime === startTime;
}

function procStat(pid: number): { state: string; startTime: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may itself contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', startTime: fields[19] ?? '' };
  } catch {
    return null;
  }
}

const OWNER_FILE = 'owner';
const LOCK_POLL_MS = 25;

/**
 * Runs `fn` while holding the lock `lockDir`, across processes. A lock whose owner is dead is
 * stale and is broken; a live owner is waited for, up to `timeoutMs`.
 */
export async function withDirectoryLock<T>(lockDir: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (!(await tryCreateOwnedDir(lockDir))) {
    const owner = await readOwner(lockDir);
    if (owner !== null && !isProcessAlive(owner)) {
      await breakStaleLock(lockDir, owner);
      continue;
    }
    if (Date.now() > deadline) {
      throw new ControlStoreError(`timed out after ${timeoutMs} ms waiting for the lock ${lockDir} held by process ${owner ?? 'unknown'}`, {
        lock: lockDir,
        owner,
      });
    }
    await sleep(LOCK_POLL_MS);
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

/**
 * Creates `dir` holding our owner file, atomically: the directory is built under a unique name
 * and renamed into place, so a lock never exists without its owner (no window in which a
 * crash leaves an ownerless lock). rename() fails when `dir` already exists with an owner.
 */
async function tryCreateOwnedDir(dir: string): Promise<boolean> {
  const draft = `${dir}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await mkdir(draft, { recursive: true });
  await writeFile(path.join(draft, OWNER_FILE), processIdentity());
  try {
    await rename(draft, dir);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(draft, { recursive: true, force: true });
  }
}

async function readOwner(dir: string): Promise<string | null> {
  try {
    return (await readFile(path.join(dir, OWNER_FILE), 'utf8')).trim();
  } catch {
    return null;
  }
}

/**
 * Two waiters may find the same stale lock; without care, the slower one would delete the
 * fresh lock the faster one has just taken. So breaking takes a second lock (`.break`, itself
 * owner-stamped), and the stale lock is removed only if it still has the dead owner.
 */
async function breakStaleLock(lockDir: string, staleOwner: string): Promise<void> {
  const breaker = `${lockDir}.break`;
  if (!(await tryCreateOwnedDir(breaker))) {
    const breakerOwner = await readOwner(breaker);
    if (breakerOwner !== null && !isProcessAlive(breakerOwner)) await rm(breaker, { recursive: true, force: true });
    return;
  }
  try {
    if ((await readOwner(lockDir)) === staleOwner) await rm(lockDir, { recursive: true, force: true });
  } finally {
    await rm(breaker, { recursive: true, force: true });
  }
}

/** Adds a client entry for this process (one per acquisition: a process may hold several). */
export async function registerClient(clientsDir: string): Promise<string> {
  await mkdir(clientsDir, { recursive: true });
  const entry = path.join(clientsDir, `${process.pid}-${randomBytes(4).toString('hex')}`);
  await writeFile(entry, processIdentity());
  return entry;
}

/** Removes the entries of dead processes and returns how many live ones remain. */
export async function countLiveClients(clientsDir: string): Promise<number> {
  const names = await readdir(clientsDir).catch(() => []);
  let live = 0;
  for (const name of names) {
    const entry = path.join(clientsDir, name);
    const owner = await readFile(entry, 'utf8').catch(() => '');
    if (isProcessAlive(owner.trim())) live += 1;
    else await rm(entry, { force: true });
  }
  return live;
}
