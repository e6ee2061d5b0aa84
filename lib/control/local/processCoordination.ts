import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlStoreError } from '../../errors.ts';

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

// Waiters poll with a growing, jittered pause: a hundred waiters polling every few ms would
// burn the CPU the holder needs; with many waiters, one of them still looks soon after a release.
const LOCK_POLL_FIRST_MS = 5;
const LOCK_POLL_MAX_MS = 100;
const GENERATION_NAME = /^\d{1,15}$/;
const DRAFT_PREFIX = 'draft-';

/** One generation file of a lock: who took it, and whether they are done with it. */
interface Generation {
  owner: string;
  token: string;
  released: boolean;
}

/**
 * Runs `fn` while holding the lock `lockDir`, across processes. The lock is a directory of
 * numbered generation files; the highest one is the lock's state. Generation n+1 may be taken
 * only once generation n is free (released by its owner, or its owner is dead), and it is taken
 * by link()ing a complete draft to its name, which fails when the name exists: of all the
 * processes that saw n free, exactly one creates n+1. Freedom is permanent (a released
 * generation stays released, a dead owner stays dead) and no process ever removes, renames or
 * rewrites a generation that someone could still hold, so there is no window in which a slow
 * process undoes a faster one's lock: the race of a lock that is removed and re-created, where
 * a rename or a breaker lands on the fresh lock of another process. Waiting ends after
 * `timeoutMs` without progress (the same live holder all along).
 */
export async function withProcessLock<T>(lockDir: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const held = await acquireLock(lockDir, timeoutMs);
  try {
    return await fn();
  } finally {
    await releaseLock(lockDir, held);
  }
}

interface HeldLock {
  generation: number;
  token: string;
}

async function acquireLock(lockDir: string, timeoutMs: number): Promise<HeldLock> {
  await mkdir(lockDir, { recursive: true });
  const token = randomBytes(8).toString('hex');
  const draft = path.join(lockDir, `${DRAFT_PREFIX}${process.pid}-${token}`);
  await writeFile(draft, JSON.stringify({ owner: processIdentity(), token, released: false } satisfies Generation));
  try {
    let awaited = { generation: -1, since: Date.now() };
    let pause = LOCK_POLL_FIRST_MS;
    for (;;) {
      const top = await highestGeneration(lockDir);
      const state = top === 0 ? null : await readGeneration(lockDir, top);
      if (state === undefined) continue; // removed between listing and reading: a newer one exists
      if (state === null || state.released || !isProcessAlive(state.owner)) {
        const mine = top + 1;
        if (await linkIfAbsent(draft, generationFile(lockDir, mine))) {
          if ((await highestGeneration(lockDir)) === mine) {
            await removeSuperseded(lockDir, mine);
            return { generation: mine, token };
          }
          // We saw `top` free long ago, and generations up to a newer holder's were cleaned
          // up since: we re-created an old number. It is not the lock; the newer one is.
          await rm(generationFile(lockDir, mine), { force: true });
        }
        continue;
      }
      if (top !== awaited.generation) awaited = { generation: top, since: Date.now() };
      else if (Date.now() - awaited.since > timeoutMs) {
        throw new ControlStoreError(
          `timed out after ${timeoutMs} ms waiting for the lock ${lockDir} held by process ${state.owner}`,
          { lock: lockDir, owner: state.owner },
        );
      }
      await sleep(pause * (0.5 + Math.random()));
      pause = Math.min(pause * 2, LOCK_POLL_MAX_MS);
    }
  } finally {
    await rm(draft, { force: true });
  }
}

/** Marks our generation released, atomically (rename of a complete file over it). */
async function releaseLock(lockDir: string, held: HeldLock): Promise<void> {
  const file = generationFile(lockDir, held.generation);
  const current = await readGeneration(lockDir, held.generation);
  if (current?.token !== held.token) {
    // Only a holder of a newer generation removes ours, and only once ours is free: the lock
    // was taken from us (our process was seen dead), so mutual exclusion did not hold.
    const message = `the lock ${lockDir} (generation ${held.generation}) is no longer ours`;
    throw new ControlStoreError(message, { lock: lockDir });
  }
  const draft = path.join(lockDir, `${DRAFT_PREFIX}${process.pid}-${held.token}-released`);
  await writeFile(draft, JSON.stringify({ ...current, released: true } satisfies Generation));
  await rename(draft, file);
}

const generationFile = (lockDir: string, generation: number): string => path.join(lockDir, String(generation));

async function highestGeneration(lockDir: string): Promise<number> {
  const names = await readdir(lockDir);
  return Math.max(0, ...names.filter((name) => GENERATION_NAME.test(name)).map(Number));
}

/**
 * undefined: the file is gone; null: it holds no owner. Files appear whole, by link() or
 * rename(), so only an OS crash (after which nobody holds anything) leaves one unreadable.
 */
async function readGeneration(lockDir: string, generation: number): Promise<Generation | null | undefined> {
  let text: string;
  try {
    text = await readFile(generationFile(lockDir, generation), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as Generation;
  } catch {
    return null;
  }
}

async function linkIfAbsent(source: string, target: string): Promise<boolean> {
  try {
    await link(source, target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Run by the holder of `current`: older generations are all free (each was free before the next
 * was taken), and drafts of dead processes were left by a kill -9 mid-acquire.
 */
async function removeSuperseded(lockDir: string, current: number): Promise<void> {
  for (const name of await readdir(lockDir)) {
    const draftOwner = name.startsWith(DRAFT_PREFIX) ? name.slice(DRAFT_PREFIX.length).split('-')[0] : undefined;
    const deadDraft = draftOwner !== undefined && !isProcessAlive(`${draftOwner}:`);
    const stale = GENERATION_NAME.test(name) ? Number(name) < current : deadDraft;
    if (stale) await rm(path.join(lockDir, name), { force: true });
  }
}

/** Adds a client entry for this process (one per acquisition: a process may hold several). */
export async function registerClient(clientsDir: string): Promise<string> {
  await mkdir(clientsDir, { recursive: true });
  const entry = path.join(clientsDir, `${process.pid}-${randomBytes(4).toString('hex')}`);
  await writeFile(entry, processIdentity());
  return entry;
}

/**
 * Whether a live process is registered. Entries of dead processes met on the way are removed;
 * the scan stops at the first live one, as only the last client out needs the whole list.
 */
export async function anyLiveClient(clientsDir: string): Promise<boolean> {
  for (const name of await readdir(clientsDir).catch(() => [])) {
    const entry = path.join(clientsDir, name);
    const owner = await readFile(entry, 'utf8').catch(() => '');
    if (isProcessAlive(owner.trim())) return true;
    await rm(entry, { force: true });
  }
  return false;
}
