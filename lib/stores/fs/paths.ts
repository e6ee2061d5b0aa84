import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readlink, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, describeCause } from '../../errors.ts';
import { fsRootProblems } from './roots.ts';

/**
 * Containment for the fs store, by construction: directory handles are pinned.
 *
 * The root is opened once (`O_DIRECTORY|O_NOFOLLOW`) and every directory below it is opened one
 * segment at a time relative to its parent's open handle, again with `O_NOFOLLOW`; every operation
 * (readdir, lstat, unlink, rmdir, mkdir, open) then names one entry *within* a pinned directory.
 * A directory swapped for a symlink after it was checked cannot redirect anything: the handle is
 * the directory that was opened, and a symlink met on the way down is refused, never followed.
 *
 * Node has no `*at()` calls; on Linux `/proc/self/fd/<fd>/<name>` is exactly that: the kernel
 * jumps from the magic link to the open directory itself (no path is walked again) and looks up
 * `<name>` in it, and, as for any path, lstat/unlink/rmdir/mkdir do not follow a final symlink.
 * `openRoot` verifies this works and refuses the store where it does not (no Linux /proc).
 *
 * A handle follows its directory if it is renamed: within the root that changes nothing; moving
 * it out needs write access outside the root, and even then only what was inside goes. Handles
 * last one call (a batch), so the next call starts from the root again.
 */

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;
const DIRECTORY_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

/** The open file `fd` itself, as a magic link. */
function fdLink(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** The entry `name` of the directory open as `fd`, resolved by the kernel like an `*at()` call. */
export function within(fd: number, name: string): string {
  return `${fdLink(fd)}/${name}`;
}

/** A directory below the root, open; or why there is none to use. */
export type Directory = { ok: true; fd: number; handle?: FileHandle } | { ok: false; missing: boolean; reason: string };

/**
 * Opens `name` in the directory open as `parentFd`, refusing a symlink. `missing`: nothing there,
 * or not a directory (so nothing below it exists either). Other errors (permissions) are thrown.
 */
export async function openDirectoryAt(parentFd: number, name: string, relative: string): Promise<Directory> {
  try {
    const handle = await open(within(parentFd, name), DIRECTORY_FLAGS);
    return { ok: true, fd: handle.fd, handle };
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return { ok: false, missing: true, reason: `${relative} does not exist` };
    if (!isErrnoCode(error, 'ENOTDIR', 'ELOOP')) throw error;
    // O_NOFOLLOW|O_DIRECTORY answers ENOTDIR for a symlink too: tell the two apart for the report.
    const entry = await lstat(within(parentFd, name)).catch(() => undefined);
    if (entry?.isSymbolicLink()) return { ok: false, missing: false, reason: `${relative} is a symlink` };
    return { ok: false, missing: true, reason: `${relative} is not a directory` };
  }
}

/**
 * Open directories a batch keeps at most, past which `trim()` releases them: a 10,000-key batch
 * spread over as many directories must not run out of file descriptors.
 */
const MAX_OPEN_DIRECTORIES = 256;

/**
 * The directories of one batch (a delete, a backup, a restore), each opened once from its pinned
 * parent and shared by every key below it; `close()` releases them all. A handle's number must
 * not be closed under a call still naming it (another open could reuse it): callers close or trim
 * only when none of their calls is in flight.
 */
export class PinnedDirectories {
  private readonly opened = new Map<string, Promise<Directory>>();

  constructor(private readonly rootFd: number) {}

  /**
   * The directory `segments` names below the root, reached one pinned level at a time. Only open
   * directories are kept: a miss (missing, a symlink) may be momentary, so the next key asks again.
   */
  lookup(segments: readonly string[]): Promise<Directory> {
    if (segments.length === 0) return Promise.resolve({ ok: true, fd: this.rootFd });
    const relative = segments.join('/');
    let directory = this.opened.get(relative);
    if (!directory) {
      const opening = this.lookup(segments.slice(0, -1)).then((parent) =>
        parent.ok ? openDirectoryAt(parent.fd, segments.at(-1)!, relative) : parent,
      );
      const forget = () => {
        if (this.opened.get(relative) === opening) this.opened.delete(relative);
      };
      opening.then((opened) => opened.ok || forget(), forget);
      this.opened.set(relative, opening);
      directory = opening;
    }
    return directory;
  }

  /** Like lookup, creating missing levels one at a time inside their pinned parents (restore). */
  async ensure(segments: readonly string[]): Promise<Directory> {
    let parent: Directory = { ok: true, fd: this.rootFd };
    for (let depth = 1; depth <= segments.length; depth += 1) {
      const prefix = segments.slice(0, depth);
      let current = await this.lookup(prefix);
      if (!current.ok && current.missing) {
        try {
          await mkdir(within(parent.fd, prefix.at(-1)!));
        } catch (error) {
          if (!isErrnoCode(error, 'EEXIST')) throw error;
        }
        this.opened.delete(prefix.join('/'));
        current = await this.lookup(prefix);
      }
      if (!current.ok) return current;
      parent = current;
    }
    return parent;
  }

  /** Releases every directory once more than MAX_OPEN_DIRECTORIES are open; later keys open theirs again. */
  async trim(): Promise<void> {
    if (this.opened.size > MAX_OPEN_DIRECTORIES) await this.close();
  }

  async close(): Promise<void> {
    const entries = await Promise.allSettled(this.opened.values());
    this.opened.clear();
    const open = entries.flatMap((entry) => (entry.status === 'fulfilled' && entry.value.ok ? [entry.value] : []));
    await Promise.allSettled(open.map((directory) => directory.handle?.close()));
  }
}

/**
 * Opens and verifies the root: the backstop of the config-time root checks, then the handle every
 * directory below is reached from. The handle must be the directory at exactly `root` (no symlink
 * anywhere on its path) and names inside it must resolve through /proc/self/fd (see above).
 */
export async function openRoot(root: string, location: string): Promise<FileHandle> {
  const context = { store: location };
  if (process.platform !== 'linux') {
    const message = `the fs store needs Linux (/proc/self/fd); this is ${process.platform}`;
    throw ConfigError.single('store.kind', message, 'run it on Linux, or use another store kind', context);
  }
  const problems = await fsRootProblems(root, []);
  if (problems.length > 0) {
    throw new ConfigError(
      problems.map((problem) => ({ path: 'store.root', ...problem })),
      context,
    );
  }
  const handle = await openRootHandle(root, context);
  try {
    await verifyPinned(handle, root, context);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

async function openRootHandle(root: string, context: { store: string }): Promise<FileHandle> {
  const refused = (message: string, fix: string, cause?: unknown) =>
    new ConfigError([{ path: 'store.root', message, fix }], context, cause === undefined ? {} : { cause });
  try {
    return await open(root, DIRECTORY_FLAGS);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) throw refused(`${root} does not exist`, 'create it or fix the path');
    if (isErrnoCode(error, 'ENOTDIR', 'ELOOP')) {
      const symlink = (await lstat(root).catch(() => undefined))?.isSymbolicLink();
      if (symlink) throw refused(`${root} is a symlink`, 'name the real directory');
      throw refused(`${root} is not a directory`, 'create it or fix the path');
    }
    throw refused(`${root} cannot be read: ${describeCause(error)}`, 'check its permissions', error);
  }
}

async function verifyPinned(handle: FileHandle, root: string, context: { store: string }): Promise<void> {
  const noProc = (cause?: unknown) => {
    const why = cause ? ` (${describeCause(cause)})` : '';
    const message = `the fs store needs /proc/self/fd to reach files through pinned directories${why}`;
    const issue = { path: 'store.kind', message, fix: 'mount /proc (procfs)' };
    return new ConfigError([issue], context, cause ? { cause } : {});
  };
  let linked: string;
  let viaProc: Stats;
  try {
    [linked, viaProc] = await Promise.all([readlink(fdLink(handle.fd)), stat(within(handle.fd, '.'))]);
  } catch (error) {
    throw noProc(error);
  }
  const opened = await handle.stat();
  if (viaProc.dev !== opened.dev || viaProc.ino !== opened.ino) throw noProc();
  // Moved, or reached through a symlink swapped in since the checks above.
  if (linked !== root) {
    const fix = 'name the real directory: the tool never follows a symlink to a root';
    throw ConfigError.single('store.root', `${root} resolves to ${linked}`, fix, context);
  }
}

export type ResolvedKey = { ok: true; segments: string[] } | { ok: false; reason: string };

/** Lexical check: a key is a relative POSIX path of plain segments (no `..`, `.`, `//`, NUL). */
export function resolveKey(key: string): ResolvedKey {
  if (key === '') return { ok: false, reason: 'empty key' };
  if (key.includes('\0')) return { ok: false, reason: 'key contains a NUL byte' };
  if (key.startsWith('/')) return { ok: false, reason: 'key is an absolute path' };
  const segments = key.split('/');
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    return { ok: false, reason: 'key has an empty, "." or ".." path segment' };
  }
  return { ok: true, segments };
}

export type ContainedFile =
  | { ok: true; parentFd: number; name: string; segments: string[]; stats: Stats }
  | { ok: false; missing: boolean; reason: string };

/** The regular file `key` names inside the root, reached through pinned directories only; else why not. */
export async function containedFile(directories: PinnedDirectories, key: string): Promise<ContainedFile> {
  const resolved = resolveKey(key);
  if (!resolved.ok) return { ok: false, missing: false, reason: `refused: ${resolved.reason}` };
  const parent = await directories.lookup(resolved.segments.slice(0, -1));
  if (!parent.ok && parent.missing) return { ok: false, missing: true, reason: 'no such file' };
  if (!parent.ok) return { ok: false, missing: false, reason: `refused: ${parent.reason}` };
  const name = resolved.segments.at(-1)!;
  const stats = await lstatOrUndefined(within(parent.fd, name));
  if (!stats) return { ok: false, missing: true, reason: 'no such file' };
  if (stats.isSymbolicLink()) return { ok: false, missing: false, reason: 'refused: is a symlink' };
  if (!stats.isFile()) return { ok: false, missing: false, reason: 'refused: not a regular file' };
  return { ok: true, parentFd: parent.fd, name, segments: resolved.segments, stats };
}

/**
 * Removes directories that deleting `keys` left empty, deepest first, climbing while a removal
 * succeeds; never the root. Best effort by design: the deletions already happened and their
 * outcomes must reach the audit, so a directory that cannot go (a new file raced in, permissions)
 * stays and is never a failure. rmdir names the directory within its pinned parent and removes
 * only an empty directory, never a symlink.
 */
export async function removeEmptyParents(directories: PinnedDirectories, keys: string[]): Promise<void> {
  const byDepth = new Map<number, Set<string>>();
  const enqueue = (directory: string): void => {
    if (directory === '.' || directory === '') return;
    const depth = directory.split('/').length;
    const level = byDepth.get(depth) ?? new Set<string>();
    level.add(directory);
    byDepth.set(depth, level);
  };
  for (const key of keys) enqueue(path.posix.dirname(key));
  const deepest = Math.max(0, ...byDepth.keys());
  for (let depth = deepest; depth > 0; depth -= 1) {
    for (const directory of byDepth.get(depth) ?? []) {
      const segments = directory.split('/');
      try {
        await directories.trim();
        const parent = await directories.lookup(segments.slice(0, -1));
        if (!parent.ok) continue;
        await rmdir(within(parent.fd, segments.at(-1)!));
        enqueue(path.posix.dirname(directory));
      } catch {
        // Not empty, already gone, or not removable: leave it (see above).
      }
    }
  }
}

/** lstat that treats "gone" as undefined (files may vanish mid-walk); other errors propagate. */
export async function lstatOrUndefined(target: string): Promise<Stats | undefined> {
  try {
    return await lstat(target);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT', 'ENOTDIR')) return undefined;
    throw error;
  }
}

export function isErrnoCode(error: unknown, ...codes: string[]): boolean {
  return typeof error === 'object' && error !== null && codes.includes((error as NodeJS.ErrnoException).code ?? '');
}
