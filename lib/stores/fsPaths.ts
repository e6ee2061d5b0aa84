import { lstat, mkdir, realpath, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { isErrnoCode } from './fsWalk.ts';

/**
 * Containment for the fs store: a key names a file strictly inside the root, reached through real
 * directories only. Scan never lists anything else; these checks make delete, backup and restore
 * refuse anything else too, whatever key they are handed (a forged checkpoint, a bad audit row).
 */

export type ResolvedKey = { ok: true; path: string; segments: string[] } | { ok: false; reason: string };

/** Lexical check: a key is a relative POSIX path of plain segments (no `..`, `.`, `//`, NUL). */
export function resolveKey(root: string, key: string): ResolvedKey {
  if (key === '') return { ok: false, reason: 'empty key' };
  if (key.includes('\0')) return { ok: false, reason: 'key contains a NUL byte' };
  if (key.startsWith('/')) return { ok: false, reason: 'key is an absolute path' };
  const segments = key.split('/');
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    return { ok: false, reason: 'key has an empty, "." or ".." path segment' };
  }
  return { ok: true, path: path.join(root, ...segments), segments };
}

export type ParentCheck = { status: 'inside' } | { status: 'missing' } | { status: 'refused'; reason: string };

/**
 * `root` is a realpath, so a parent reached through real directories only has a realpath equal to
 * its lexical path; any difference means a symlink somewhere on the way, possibly out of the root.
 */
export async function checkParent(filePath: string): Promise<ParentCheck> {
  const parent = path.dirname(filePath);
  try {
    const resolved = await realpath(parent);
    if (resolved === parent) return { status: 'inside' };
    return { status: 'refused', reason: `parent directory is reached through a symlink (resolves to ${resolved})` };
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT', 'ENOTDIR')) return { status: 'missing' };
    throw error;
  }
}

/**
 * Creates the directories of `segments` under `root` one level at a time with lstat, so a
 * symlinked component is refused instead of followed (mkdir -p would follow it out of the root).
 * Returns a reason when refused.
 */
export async function ensureDirectoryInside(root: string, segments: string[]): Promise<string | undefined> {
  let current = root;
  for (const segment of segments) {
    current = path.join(current, segment);
    try {
      await mkdir(current);
    } catch (error) {
      if (!isErrnoCode(error, 'EEXIST')) throw error;
    }
    const stats = await lstat(current);
    if (!stats.isDirectory()) return `${path.relative(root, current)} is not a directory (or is a symlink)`;
  }
  return undefined;
}

/**
 * Removes directories that deleting `keys` left empty, deepest first, climbing while a removal
 * succeeds; never the root. Best effort by design: the deletions already happened and their
 * outcomes must reach the audit, so a directory that cannot go (a new file raced in, permissions)
 * stays and is never a failure. rmdir only removes empty directories and does not follow symlinks.
 */
export async function removeEmptyParents(root: string, keys: string[]): Promise<void> {
  const byDepth = new Map<number, Set<string>>();
  const enqueue = (directory: string): void => {
    if (directory === '.' || directory === '') return;
    const depth = directory.split('/').length;
    const level = byDepth.get(depth) ?? new Set<string>();
    level.add(directory);
    byDepth.set(depth, level);
  };
  keys.forEach((key) => enqueue(path.posix.dirname(key)));
  const deepest = Math.max(0, ...byDepth.keys());
  for (let depth = deepest; depth > 0; depth -= 1) {
    for (const directory of byDepth.get(depth) ?? []) {
      try {
        await rmdir(path.join(root, ...directory.split('/')));
        enqueue(path.posix.dirname(directory));
      } catch {
        // Not empty, already gone, or not removable: leave it (see above).
      }
    }
  }
}
