import { constants } from 'node:fs';
import { type FileHandle, mkdir, open, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { BackupOutcome, RestoreOutcome } from '../../core/store.ts';
import type { EligibleItem } from '../../core/types.ts';
import { describeCause } from '../../errors.ts';
import { containedFile, isErrnoCode, lstatOrUndefined, type PinnedDirectories, resolveKey, within } from './paths.ts';

/**
 * Copies between an fs root and a run's backup directory. The root side goes through pinned
 * directories (paths.ts): a source is opened within its pinned parent without following a
 * symlink and copied from that handle; a restored file is created with O_EXCL|O_NOFOLLOW within
 * a parent created one level at a time. Copies keep the original mtime (and restores bring it
 * back), because the mtime is the item's age.
 */

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW, O_NONBLOCK } = constants;
/** NONBLOCK: opening a FIFO planted where a file was must not hang; it is then refused as not a regular file. */
const READ_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
const CHUNK_BYTES = 1 << 20;

/** Copies each item's file into `runDirectory` (the backup location's own directory, outside the root). */
export async function backupFiles(
  directories: PinnedDirectories,
  items: EligibleItem[],
  runDirectory: string,
): Promise<BackupOutcome[]> {
  const outcomes: BackupOutcome[] = [];
  for (const item of items) {
    try {
      await directories.trim();
      const error = await backupFile(directories, item.key, runDirectory);
      outcomes.push(error ? { key: item.key, ok: false, error } : { key: item.key, ok: true });
    } catch (error) {
      // A write to the open copy names no file (`ENOSPC … write`): say which directory's disk.
      outcomes.push({ key: item.key, ok: false, error: describeCause(error, { path: runDirectory }) });
    }
  }
  return outcomes;
}

/** Returns why the file was not copied, or undefined once it was. */
async function backupFile(
  directories: PinnedDirectories,
  key: string,
  runDirectory: string,
): Promise<string | undefined> {
  const file = await containedFile(directories, key);
  if (!file.ok) return file.reason;
  const source = await openRegularFile(within(file.parentFd, file.name));
  if (source === 'missing') return 'no such file';
  if (typeof source === 'string') return `refused: is ${source}`;
  try {
    const stats = await source.stat();
    const target = path.join(runDirectory, ...file.segments);
    await mkdir(path.dirname(target), { recursive: true });
    const copy = await open(target, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, stats.mode & 0o777);
    try {
      await copyContents(source, copy, stats.size);
      await copy.utimes(stats.atime, stats.mtime);
    } finally {
      await copy.close();
    }
    return undefined;
  } finally {
    await source.close();
  }
}

/** Restores `key` from `runDirectory` into the root; never overwrites, never leaves the root. */
export async function restoreFile(
  directories: PinnedDirectories,
  runDirectory: string,
  key: string,
): Promise<RestoreOutcome> {
  const resolved = resolveKey(key);
  if (!resolved.ok) return { key, status: 'failed', error: `refused: ${resolved.reason}` };
  const parentSegments = resolved.segments.slice(0, -1);
  const name = resolved.segments.at(-1)!;
  const existingParent = await directories.lookup(parentSegments);
  if (existingParent.ok && (await lstatOrUndefined(within(existingParent.fd, name)))) return { key, status: 'exists' };

  const backupPath = path.join(runDirectory, ...resolved.segments);
  const backup = await openRegularFile(backupPath);
  if (backup === 'missing') return { key, status: 'no_backup' };
  if (typeof backup === 'string') return { key, status: 'failed', error: `backup ${backupPath} is ${backup}` };
  try {
    const parent = await directories.ensure(parentSegments);
    if (!parent.ok) return { key, status: 'failed', error: `refused: ${parent.reason}` };
    const stats = await backup.stat();
    let restored: FileHandle;
    try {
      // EXCL: a file (or symlink) that appeared since the check above is never overwritten or followed.
      restored = await open(within(parent.fd, name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, stats.mode & 0o777);
    } catch (error) {
      if (isErrnoCode(error, 'EEXIST')) return { key, status: 'exists' };
      throw error;
    }
    try {
      await copyContents(backup, restored, stats.size);
      await restored.utimes(stats.atime, stats.mtime);
    } catch (error) {
      // A partial copy, or one with the wrong mtime (the wrong age), must not stay behind.
      await restored.close();
      await unlink(within(parent.fd, name));
      throw error;
    }
    await restored.close();
    return { key, status: 'restored' };
  } finally {
    await backup.close();
  }
}

/** Opens a regular file for reading without following a symlink; else `missing` or what it is. */
async function openRegularFile(file: string): Promise<FileHandle | 'missing' | string> {
  let handle: FileHandle;
  try {
    handle = await open(file, READ_FLAGS);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT', 'ENOTDIR')) return 'missing';
    if (isErrnoCode(error, 'ELOOP')) return 'a symlink';
    throw error;
  }
  if ((await handle.stat()).isFile()) return handle;
  await handle.close();
  return 'not a regular file';
}

async function copyContents(from: FileHandle, to: FileHandle, size: number): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(Math.max(size, 1), CHUNK_BYTES));
  for (let position = 0; ; ) {
    const { bytesRead } = await from.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) return;
    // writeFile on a handle writes all of it at the current position, looping over short writes.
    await to.writeFile(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}
