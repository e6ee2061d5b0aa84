import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { StoreError } from '../../errors.ts';
import { isErrnoCode, lstatOrUndefined, openDirectoryAt, within } from './paths.ts';

/**
 * A lazy, deterministic walk of a directory tree: regular files only, in byte order of their
 * POSIX path relative to the root, never following a symlink. Determinism is what makes a key
 * a valid cursor: "everything after key K" must mean the same thing on every run.
 */

export interface WalkedFile {
  /** POSIX path relative to the root. */
  key: string;
  mtime: Date;
  size: number;
}

interface DirEntry {
  /** The entry's name in its directory. */
  name: string;
  /** Path relative to the root, without a trailing `/`. */
  relative: string;
  isDirectory: boolean;
  /** `relative`, with a trailing `/` for directories (see sortedEntries). */
  sortKey: Buffer;
}

/** The pinned root a walk starts from (see paths.ts), and the store's location for errors. */
export interface WalkRoot {
  fd: number;
  location: string;
}

/**
 * lstat calls are issued this many at a time: each one is a thread-pool round trip, and awaiting
 * them one by one made a 20k-file walk ~3x slower. Small enough that a short page wastes little.
 */
const LSTAT_BATCH = 64;

/**
 * Yields every regular file under the root whose key sorts strictly after `after` (all when
 * absent). Directories whose whole subtree sorts before `after` are not read at all, so resuming
 * deep into a large tree costs one directory listing per level instead of a walk of everything
 * before it. Each directory is opened from its parent's handle without following a symlink and
 * read and lstat'ed through that handle, so the walk holds one handle per level of the current
 * path and cannot be steered out of the root; a handle is closed as soon as its directory is done
 * (or the consumer stops early: `return()` runs the `finally`).
 */
export async function* walkFiles(root: WalkRoot, after?: string): AsyncGenerator<WalkedFile> {
  yield* walkDirectory(root, root.fd, '', after === undefined ? undefined : Buffer.from(after, 'utf8'));
}

async function* walkDirectory(
  root: WalkRoot,
  fd: number,
  prefix: string,
  after: Buffer | undefined,
): AsyncGenerator<WalkedFile> {
  let files: DirEntry[] = [];
  for (const entry of await sortedEntries(root, fd, prefix)) {
    if (entry.isDirectory) {
      // Files sorted before this directory are yielded before anything inside it.
      yield* statFiles(root, fd, files);
      files = [];
      // Every key below starts with `relative/`: skip the subtree when that prefix sorts before
      // the cursor and the cursor is not inside it.
      if (after && Buffer.compare(entry.sortKey, after) < 0 && !startsWith(after, entry.sortKey)) continue;
      const child = await openDirectoryAt(fd, entry.name, entry.relative).catch((error: unknown) => {
        throw walkError(root, `cannot open directory ${entry.relative}`, entry.relative, error);
      });
      // Removed, or replaced by a file or a symlink since readdir: nothing below it to list.
      if (!child.ok) continue;
      try {
        yield* walkDirectory(root, child.fd, `${entry.relative}/`, after);
      } finally {
        await child.handle?.close();
      }
      continue;
    }
    if (after && Buffer.compare(entry.sortKey, after) <= 0) continue;
    files.push(entry);
    if (files.length === LSTAT_BATCH) {
      yield* statFiles(root, fd, files);
      files = [];
    }
  }
  yield* statFiles(root, fd, files);
}

async function* statFiles(root: WalkRoot, fd: number, entries: DirEntry[]): AsyncGenerator<WalkedFile> {
  const stats = await Promise.all(
    entries.map(async (entry) => {
      try {
        return await lstatOrUndefined(within(fd, entry.name));
      } catch (error) {
        throw walkError(root, `cannot stat ${entry.relative}`, entry.relative, error);
      }
    }),
  );
  for (const [index, entry] of entries.entries()) {
    const stat = stats[index];
    // Re-checked because the entry may have been replaced (or removed) since readdir. A name that
    // is not valid UTF-8 also lands here (its decoded form does not exist) and is never listed.
    if (stat?.isFile()) yield { key: entry.relative, mtime: stat.mtime, size: stat.size };
  }
}

/**
 * Sorting names with a `/` appended to directories makes a depth-first walk emit full paths in
 * byte order: `a-c` (0x2D) comes before `a/b` (0x2F), which sorting bare names would invert.
 * Symlinks, sockets, FIFOs and devices are dropped here: only real files and directories remain.
 */
async function sortedEntries(root: WalkRoot, fd: number, prefix: string): Promise<DirEntry[]> {
  let dirents: Dirent[];
  try {
    dirents = await readdir(within(fd, '.'), { withFileTypes: true });
  } catch (error) {
    // Removed while we walked: nothing below it to list.
    if (isErrnoCode(error, 'ENOENT')) return [];
    throw walkError(root, `cannot list directory ${prefix || '.'}`, prefix, error);
  }
  const entries: DirEntry[] = [];
  for (const dirent of dirents) {
    if (!dirent.isFile() && !dirent.isDirectory()) continue;
    const isDirectory = dirent.isDirectory();
    const relative = `${prefix}${dirent.name}`;
    const sortKey = Buffer.from(isDirectory ? `${relative}/` : relative, 'utf8');
    entries.push({ name: dirent.name, relative, isDirectory, sortKey });
  }
  return entries.sort((a, b) => Buffer.compare(a.sortKey, b.sortKey));
}

function walkError(root: WalkRoot, what: string, key: string, cause: unknown): StoreError {
  return new StoreError(`${what} under ${root.location}`, { store: root.location, key }, { cause });
}

function startsWith(value: Buffer, prefix: Buffer): boolean {
  return value.length >= prefix.length && value.subarray(0, prefix.length).equals(prefix);
}
