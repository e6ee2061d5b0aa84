import type { Dirent } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, readdir, realpath, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { FsStoreConfig } from './schema.ts';

export type { FsStoreConfig };

import { chunks } from '../../core/async.ts';
import type {
  BackupOutcome,
  BackupRef,
  Census,
  CensusQuery,
  DeleteOptions,
  DeleteOutcome,
  Page,
  RestoreOutcome,
  ScanQuery,
  Store,
} from '../../core/store.ts';
import type { EligibleItem, Item } from '../../core/types.ts';
import { ConfigError, describeCause, StoreError } from '../../errors.ts';
import { COMPRESSED_SUFFIX, type CompressFormat } from '../../policy/compress.ts';
import { backupSegment, countCensus, scopeMatcher, sendGuarded } from '../common.ts';
import { backupFiles, restoreFile } from './backup.ts';
import { compression, isCompressTemporary } from './compress.ts';
import {
  containedFile,
  isErrnoCode,
  lstatOrUndefined,
  openRoot,
  PinnedDirectories,
  removeEmptyParents,
  within,
} from './paths.ts';
import { type WalkedFile, walkFiles } from './walk.ts';

/** Each delete is two thread-pool round trips (lstat, unlink) after its directory is open; overlap a few files. */
const DELETE_CONCURRENCY = 16;
/** Leftover temporaries remembered between passes; past this many, the next pass finds the rest. */
const MAX_LEFTOVERS = 10_000;

/**
 * A local directory (data class `blobs`): keys are POSIX paths relative to the root, timestamps
 * are mtimes. Every directory is reached from the root's open handle one level at a time without
 * following a symlink (paths.ts), so nothing outside the root is listed, deleted, copied or
 * written, whatever is swapped for what inside it meanwhile. Needs Linux (/proc/self/fd).
 * `compress`: the policy's compress tier (compress.ts); its compressed files stay in scope.
 */
export function createFsStore(config: FsStoreConfig, compress?: { format: CompressFormat }): Store {
  const location = `fs:${config.root}`;
  const inScope = compressedInScope(scopeMatcher(config.include, config.exclude), compress?.format);
  /** Temporary files of compressions that never finished, met by listings: removed by the next compress pass. */
  const leftovers = new Set<string>();
  let pinning: Promise<FileHandle> | undefined;

  /** The root's handle, opened and verified once; a failed open is retried on the next call. */
  function pinnedRoot(): Promise<FileHandle> {
    pinning ??= openRoot(config.root, location).catch((error: unknown) => {
      pinning = undefined;
      throw error;
    });
    return pinning;
  }

  /** The directories one call opens below the root, closed when it is done. */
  async function withDirectories<T>(use: (directories: PinnedDirectories) => Promise<T>): Promise<T> {
    const directories = new PinnedDirectories((await pinnedRoot()).fd);
    try {
      return await use(directories);
    } finally {
      await directories.close();
    }
  }

  async function* filesInScope(after?: string): AsyncGenerator<WalkedFile> {
    const root = await pinnedRoot();
    for await (const file of walkFiles({ fd: root.fd, location }, after)) {
      // The store's own work in progress is never an item (invariant 10).
      if (isCompressTemporary(path.posix.basename(file.key))) {
        if (leftovers.size < MAX_LEFTOVERS) leftovers.add(file.key);
      } else if (inScope(file.key)) yield file;
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
      await pinnedRoot();
    },

    async close() {
      const pinned = pinning;
      pinning = undefined;
      await (await pinned?.catch(() => undefined))?.close();
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

    delete(items: EligibleItem[], options?: DeleteOptions): Promise<DeleteOutcome[]> {
      return withDirectories(async (directories) => {
        // One group of unlinks at a time, the lease checked before each (a stalled run stops on waking).
        const outcomes = await sendGuarded(
          chunks(items, DELETE_CONCURRENCY),
          1,
          options?.beforeRequest,
          async (chunk) => {
            const done = await Promise.all(chunk.map((item) => deleteFile(directories, item)));
            await directories.trim();
            return done;
          },
        );
        if (config.removeEmptyDirs) {
          const gone = outcomes.filter((outcome) => outcome.status === 'deleted' || outcome.status === 'missing');
          await removeEmptyParents(
            directories,
            gone.map((outcome) => outcome.key),
          );
        }
        return outcomes;
      });
    },

    present(keys: string[]): Promise<Set<string>> {
      return withDirectories(async (directories) => {
        const found = new Set<string>();
        for (const key of keys) {
          try {
            await directories.trim();
            if ((await containedFile(directories, key)).ok) found.add(key);
          } catch (error) {
            throw new StoreError(`cannot tell whether ${key} exists`, { store: location, key }, { cause: error });
          }
        }
        return found;
      });
    },

    ...(compress ? { compress: compression(withDirectories, compress.format, leftovers) } : {}),

    lookup: {
      find: (key: string): Promise<Item[]> =>
        withDirectories(async (directories) => {
          if (!inScope(key)) return [];
          const file = await containedFile(directories, key);
          return file.ok ? [{ key, timestamp: file.stats.mtime, size: file.stats.size }] : [];
        }),
    },

    backups: {
      async backup(items: EligibleItem[], ref: BackupRef): Promise<BackupOutcome[]> {
        await pinnedRoot();
        const realRunDirectory = await createBackupRunDirectory(ref, location);
        // Copies keep their old mtime: inside the root they would be scanned and deleted as expired.
        if (isInside(config.root, realRunDirectory)) {
          throw ConfigError.single(
            'backup.to',
            `${ref.to} is inside the store root ${config.root}`,
            'choose a directory outside the root',
            { store: location, policy: ref.policy },
          );
        }
        return withDirectories((directories) => backupFiles(directories, items, realRunDirectory));
      },

      restore(ref: BackupRef, keys: string[]): Promise<RestoreOutcome[]> {
        const runDirectory = backupRunDirectory(ref, location);
        return withDirectories(async (directories) => {
          const outcomes: RestoreOutcome[] = [];
          for (const key of keys) {
            try {
              await directories.trim();
              outcomes.push(await restoreFile(directories, runDirectory, key));
            } catch (error) {
              outcomes.push({ key, status: 'failed', error: describeCause(error) });
            }
          }
          return outcomes;
        });
      },

      async prune(to: string, policy: string, olderThan: Date): Promise<number> {
        const policyDirectory = path.resolve(to, pathSegment(policy, 'policy', location));
        let entries: Dirent[];
        try {
          entries = await readdir(policyDirectory, { withFileTypes: true });
        } catch (error) {
          if (isErrnoCode(error, 'ENOENT')) return 0;
          throw new StoreError(
            `cannot list backups in ${policyDirectory}`,
            { store: location, policy },
            { cause: error },
          );
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
    },
  };
}

/** With compression, `x.log.gz` is in scope wherever `x.log` is: the delete tier must still find it. */
function compressedInScope(inScope: (key: string) => boolean, format: CompressFormat | undefined) {
  if (!format) return inScope;
  const suffix = COMPRESSED_SUFFIX[format];
  return (key: string) => inScope(key) || (key.endsWith(suffix) && inScope(key.slice(0, -suffix.length)));
}

function toItem(file: WalkedFile): Item {
  return { key: file.key, timestamp: file.mtime, size: file.size };
}

async function deleteFile(directories: PinnedDirectories, item: EligibleItem): Promise<DeleteOutcome> {
  const { key } = item;
  try {
    const file = await containedFile(directories, key);
    if (!file.ok) return file.missing ? { key, status: 'missing' } : { key, status: 'failed', error: file.reason };
    // Invariant 1: the file may have been rewritten since the scan; its current mtime decides.
    if (file.stats.mtimeMs >= item.cutoff.getTime()) return { key, status: 'kept' };
    // Named within the pinned parent: a symlink swapped in at that name is itself removed, never its target.
    await unlink(within(file.parentFd, file.name));
    return { key, status: 'deleted', bytes: file.stats.size };
  } catch (error) {
    // Gone between the check and the unlink (another run, an operator): done, not failed.
    if (isErrnoCode(error, 'ENOENT')) return { key, status: 'missing' };
    return { key, status: 'failed', error: describeCause(error) };
  }
}

async function createBackupRunDirectory(ref: BackupRef, location: string): Promise<string> {
  const runDirectory = backupRunDirectory(ref, location);
  try {
    await mkdir(runDirectory, { recursive: true });
    return await realpath(runDirectory);
  } catch (error) {
    throw new StoreError(
      `cannot create backup directory ${runDirectory}`,
      { store: location, policy: ref.policy, runId: ref.runId },
      { cause: error },
    );
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
