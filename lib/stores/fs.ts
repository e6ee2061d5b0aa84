import { constants, type Stats } from 'node:fs';
import { copyFile, mkdir, readdir, realpath, rm, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import type { FsStoreSchema } from '../config/stores.ts';
import type { EligibleItem, Item } from '../engine/types.ts';
import { ConfigError, describeCause, StoreError } from '../errors.ts';
import { checkParent, ensureDirectoryInside, removeEmptyParents, resolveKey } from './fsPaths.ts';
import { isErrnoCode, lstatOrUndefined, walkFiles, type WalkedFile } from './fsWalk.ts';
import { backupSegment, countCensus, scopeMatcher } from './shared.ts';
import type { BackupOutcome, BackupRef, Census, CensusQuery, DeleteOutcome, Page, RestoreOutcome, ScanQuery, Store } from './types.ts';

/** Each delete is three thread-pool round trips (realpath, lstat, unlink); overlap a few files. */
const DELETE_CONCURRENCY = 16;

export type FsStoreConfig = z.output<typeof FsStoreSchema>;

/**
 * A local directory (data class `blobs`): keys are POSIX paths relative to the root, timestamps
 * are mtimes. Symlinks are never followed, so nothing outside the root is listed or deleted.
 */
export function createFsStore(config: FsStoreConfig): Store {
  const location = `fs:${config.root}`;
  const inScope = scopeMatcher(config.include, config.exclude);
  let opening: Promise<string> | undefined;

  /** The root's realpath, resolved once; a failed open is retried on the next call. */
  function realRoot(): Promise<string> {
    opening ??= resolveRoot(config.root, location).catch((error: unknown) => {
      opening = undefined;
      throw error;
    });
    return opening;
  }

  async function* filesInScope(after?: string): AsyncGenerator<WalkedFile> {
    for await (const file of walkFiles(await realRoot(), after)) {
      if (inScope(file.key)) yield file;
    }
  }

  async function* itemsInScope(): AsyncGenerator<Item> {
    for await (const file of filesInScope()) yield toItem(file);
  }

  return {
    kind: 'fs',
    location,
    order: 'key',

    async open() {
      await realRoot();
    },

    async scan({ cursor, limit }: ScanQuery): Promise<Page> {
      const items: Item[] = [];
      let more = false;
      for await (const file of filesInScope(cursor)) {
        // One item past the page tells "done" apart from "exactly `limit` left" without a second call.
        if (items.length >= limit) {
          more = true;
          break;
        }
        items.push(toItem(file));
      }
      const last = items.at(-1)?.key ?? cursor;
      return { items, ...(last === undefined ? {} : { cursor: last }), done: !more };
    },

    census(query: CensusQuery): Promise<Census> {
      return countCensus(itemsInScope(), query);
    },

    async delete(items: EligibleItem[]): Promise<DeleteOutcome[]> {
      const root = await realRoot();
      const outcomes: DeleteOutcome[] = [];
      for (let start = 0; start < items.length; start += DELETE_CONCURRENCY) {
        const chunk = items.slice(start, start + DELETE_CONCURRENCY);
        outcomes.push(...(await Promise.all(chunk.map((item) => deleteFile(root, item)))));
      }
      if (config.removeEmptyDirs) {
        await removeEmptyParents(root, outcomes.filter((outcome) => outcome.status === 'deleted' || outcome.status === 'missing').map((outcome) => outcome.key));
      }
      return outcomes;
    },

    async present(keys: string[]): Promise<Set<string>> {
      const root = await realRoot();
      const found = new Set<string>();
      for (const key of keys) {
        const resolved = resolveKey(root, key);
        if (!resolved.ok) continue;
        try {
          if ((await lstatOrUndefined(resolved.path))?.isFile()) found.add(key);
        } catch (error) {
          throw new StoreError(`cannot tell whether ${key} exists`, { store: location, key }, { cause: error });
        }
      }
      return found;
    },

    async backup(items: EligibleItem[], ref: BackupRef): Promise<BackupOutcome[]> {
      const root = await realRoot();
      const realRunDirectory = await createBackupRunDirectory(ref, location);
      // Copies keep their old mtime: inside the root they would be scanned and deleted as expired.
      if (isInside(root, realRunDirectory)) {
        throw ConfigError.single('backup.to', `${ref.to} is inside the store root ${config.root}`, 'choose a directory outside the root', { store: location, policy: ref.policy });
      }
      const outcomes: BackupOutcome[] = [];
      for (const item of items) {
        try {
          const source = await containedFile(root, item.key);
          if (!source.ok) {
            outcomes.push({ key: item.key, ok: false, error: source.reason });
            continue;
          }
          const target = path.join(realRunDirectory, ...source.segments);
          await mkdir(path.dirname(target), { recursive: true });
          await copyFile(source.path, target);
          await utimes(target, source.stats.atime, source.stats.mtime);
          outcomes.push({ key: item.key, ok: true });
        } catch (error) {
          outcomes.push({ key: item.key, ok: false, error: describeCause(error) });
        }
      }
      return outcomes;
    },

    async restore(ref: BackupRef, keys: string[]): Promise<RestoreOutcome[]> {
      const root = await realRoot();
      const runDirectory = backupRunDirectory(ref, location);
      const outcomes: RestoreOutcome[] = [];
      for (const key of keys) {
        try {
          outcomes.push(await restoreFile(root, runDirectory, key));
        } catch (error) {
          outcomes.push({ key, status: 'failed', error: describeCause(error) });
        }
      }
      return outcomes;
    },

    async pruneBackups(to: string, policy: string, olderThan: Date): Promise<number> {
      const policyDirectory = path.resolve(to, pathSegment(policy, 'policy', location));
      let entries;
      try {
        entries = await readdir(policyDirectory, { withFileTypes: true });
      } catch (error) {
        if (isErrnoCode(error, 'ENOENT')) return 0;
        throw new StoreError(`cannot list backups in ${policyDirectory}`, { store: location, policy }, { cause: error });
      }
      let pruned = 0;
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        const runDirectory = path.join(policyDirectory, entry.name);
        try {
          const stats = await lstatOrUndefined(runDirectory);
          if (!stats || stats.mtime.getTime() >= olderThan.getTime()) continue;
          // rm does not follow symlinks inside the tree: only the backup copies go.
          await rm(runDirectory, { recursive: true, force: true });
          pruned += 1;
        } catch (error) {
          throw new StoreError(`cannot prune backup ${runDirectory}`, { store: location, policy }, { cause: error });
        }
      }
      return pruned;
    },
  };
}

async function resolveRoot(root: string, location: string): Promise<string> {
  const fix = 'create it or fix the path';
  try {
    if (!(await stat(root)).isDirectory()) throw ConfigError.single('store.root', `${root} is not a directory`, fix, { store: location });
    return await realpath(root);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    if (isErrnoCode(error, 'ENOENT', 'ENOTDIR')) throw ConfigError.single('store.root', `${root} does not exist`, fix, { store: location });
    throw new ConfigError([{ path: 'store.root', message: `${root} cannot be read: ${describeCause(error)}`, fix: 'check its permissions' }], { store: location }, { cause: error });
  }
}

function toItem(file: WalkedFile): Item {
  return { key: file.key, timestamp: file.mtime, size: file.size };
}

type ContainedFile =
  | { ok: true; path: string; segments: string[]; stats: Stats }
  | { ok: false; missing: boolean; reason: string };

/** The regular file `key` names inside the root, reached without any symlink; else why not. */
async function containedFile(root: string, key: string): Promise<ContainedFile> {
  const resolved = resolveKey(root, key);
  if (!resolved.ok) return { ok: false, missing: false, reason: `refused: ${resolved.reason}` };
  const parent = await checkParent(resolved.path);
  if (parent.status === 'missing') return { ok: false, missing: true, reason: 'no such file' };
  if (parent.status === 'refused') return { ok: false, missing: false, reason: `refused: ${parent.reason}` };
  const stats = await lstatOrUndefined(resolved.path);
  if (!stats) return { ok: false, missing: true, reason: 'no such file' };
  if (stats.isSymbolicLink()) return { ok: false, missing: false, reason: 'refused: is a symlink' };
  if (!stats.isFile()) return { ok: false, missing: false, reason: 'refused: not a regular file' };
  return { ok: true, path: resolved.path, segments: resolved.segments, stats };
}

async function deleteFile(root: string, item: EligibleItem): Promise<DeleteOutcome> {
  const { key } = item;
  try {
    const file = await containedFile(root, key);
    if (!file.ok) return file.missing ? { key, status: 'missing' } : { key, status: 'failed', error: file.reason };
    // Invariant 1: the file may have been rewritten since the scan; its current mtime decides.
    if (file.stats.mtimeMs >= item.cutoff.getTime()) return { key, status: 'kept' };
    await unlink(file.path);
    return { key, status: 'deleted', bytes: file.stats.size };
  } catch (error) {
    // Gone between the check and the unlink (another run, an operator): done, not failed.
    if (isErrnoCode(error, 'ENOENT')) return { key, status: 'missing' };
    return { key, status: 'failed', error: describeCause(error) };
  }
}

async function restoreFile(root: string, runDirectory: string, key: string): Promise<RestoreOutcome> {
  const resolved = resolveKey(root, key);
  if (!resolved.ok) return { key, status: 'failed', error: `refused: ${resolved.reason}` };
  if (await lstatOrUndefined(resolved.path)) return { key, status: 'exists' };
  const source = path.join(runDirectory, ...resolved.segments);
  const backup = await lstatOrUndefined(source);
  if (!backup) return { key, status: 'no_backup' };
  if (!backup.isFile()) return { key, status: 'failed', error: `backup ${source} is not a regular file` };
  const refused = await ensureDirectoryInside(root, resolved.segments.slice(0, -1));
  if (refused) return { key, status: 'failed', error: `refused: ${refused}` };
  try {
    // EXCL: a file that appeared since the check above is never overwritten.
    await copyFile(source, resolved.path, constants.COPYFILE_EXCL);
  } catch (error) {
    if (isErrnoCode(error, 'EEXIST')) return { key, status: 'exists' };
    throw error;
  }
  try {
    await utimes(resolved.path, backup.atime, backup.mtime);
  } catch (error) {
    // A restored copy with the wrong mtime would carry the wrong age: take it back out.
    await unlink(resolved.path);
    throw error;
  }
  return { key, status: 'restored' };
}

async function createBackupRunDirectory(ref: BackupRef, location: string): Promise<string> {
  const runDirectory = backupRunDirectory(ref, location);
  try {
    await mkdir(runDirectory, { recursive: true });
    return await realpath(runDirectory);
  } catch (error) {
    throw new StoreError(`cannot create backup directory ${runDirectory}`, { store: location, policy: ref.policy, runId: ref.runId }, { cause: error });
  }
}

function backupRunDirectory(ref: BackupRef, location: string): string {
  return path.resolve(ref.to, pathSegment(ref.policy, 'policy', location), pathSegment(ref.runId, 'runId', location));
}

/** Policy names and run ids become directory names: one plain segment, never a path. */
function pathSegment(value: string, field: string, location: string): string {
  const problem = backupSegment(value, field);
  if (problem) throw new StoreError(problem, { store: location, [field]: value });
  return value;
}

function isInside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(path.sep) ? root : `${root}${path.sep}`);
}
