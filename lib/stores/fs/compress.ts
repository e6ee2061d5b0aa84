import { createHash, randomBytes } from 'node:crypto';
// Streams over the handles' numbers: a FileHandle's own streams hold it open until they close
// themselves, and these must not (the copy is synced and stamped after the pipeline ends).
import { constants, createReadStream, createWriteStream, fsync, type Stats } from 'node:fs';
import { type FileHandle, link, lstat, open, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, createGzip } from 'node:zlib';
import { chunks } from '../../core/async.ts';
import type { CompressOutcome, StoreCompression } from '../../core/store.ts';
import type { EligibleItem } from '../../core/types.ts';
import { describeCause } from '../../errors.ts';
import { COMPRESSED_SUFFIX, type CompressFormat } from '../../policy/compress.ts';
import { sendGuarded } from '../common.ts';
import { containedFile, isErrnoCode, lstatOrUndefined, type PinnedDirectories, within } from './paths.ts';

/**
 * Compression in place, crash-safe per file. The compressed copy is written to a temporary file
 * in the same directory, fsynced, given the original's mtime, and hard-linked to `<name>.gz`
 * (link never replaces an existing file, unlike rename); the directory is fsynced, and only then
 * is the original, re-checked unchanged since the scan, unlinked. A kill at any instant leaves the
 * original, or the complete `.gz`, or both: the next pass finds both, sees that the `.gz` holds
 * exactly the original's bytes, and removes the original. Temporary files are never items (the
 * store's listings skip them) and are removed by the next pass that lists them (`removeLeftovers`).
 */

/** Compression is CPU work on libuv's pool (4 threads by default): a few files at a time keep it busy. */
const COMPRESS_CONCURRENCY = 4;

/**
 * The store's `compress` capability. `withDirectories` runs a call over pinned directories (closed
 * after it); `leftovers` are the temporaries the store's listings met (they skip them).
 */
export function compression(
  withDirectories: <T>(use: (directories: PinnedDirectories) => Promise<T>) => Promise<T>,
  format: CompressFormat,
  leftovers: Set<string>,
): StoreCompression {
  return {
    compress: (items, options) =>
      withDirectories((directories) =>
        // One group of files at a time, the lease checked before each (and before each original goes).
        sendGuarded(chunks(items, COMPRESS_CONCURRENCY), 1, options?.beforeRequest, async (chunk) => {
          const done = await Promise.all(
            chunk.map((item) => compressFile(directories, item, format, options?.beforeRequest)),
          );
          await directories.trim();
          return done;
        }),
      ),
    removeLeftovers: (options) =>
      withDirectories(async (directories) => {
        let removed = 0;
        for (const key of [...leftovers]) {
          options?.beforeRequest?.();
          leftovers.delete(key);
          if (await removeTemporary(directories, key)) removed += 1;
          await directories.trim();
        }
        return removed;
      }),
  };
}

/** Temporary names: hidden, unmistakable, and short whatever the original's name (NAME_MAX). */
const TEMPORARY = /^\.retention-compress-[0-9a-f]{16}\.tmp$/;

export function isCompressTemporary(name: string): boolean {
  return TEMPORARY.test(name);
}

function temporaryName(): string {
  return `.retention-compress-${randomBytes(8).toString('hex')}.tmp`;
}

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
const fsyncFd = promisify(fsync);

/** What the store asks of the engine before each destructive step (`DeleteOptions.beforeRequest`). */
type Guard = (() => void) | undefined;

async function compressFile(
  directories: PinnedDirectories,
  item: EligibleItem,
  format: CompressFormat,
  beforeRequest: Guard,
): Promise<CompressOutcome> {
  const { key } = item;
  const kept = (error: string): CompressOutcome => ({ key, status: 'kept', error });
  try {
    const file = await containedFile(directories, key);
    if (!file.ok) return file.missing ? { key, status: 'missing' } : { key, status: 'failed', error: file.reason };
    if (!unchangedSinceScan(file.stats, item)) return kept('modified since the scan; left uncompressed');
    const target = `${file.name}${COMPRESSED_SUFFIX[format]}`;
    const compressedKey = `${key}${COMPRESSED_SUFFIX[format]}`;
    const at = (name: string) => within(file.parentFd, name);
    const existing = await lstatOrUndefined(at(target));
    if (existing) {
      // A compression killed after its link: the .gz is complete; finish by removing the original.
      if (!existing.isFile() || !(await sameContent(at(file.name), at(target))))
        return kept(`${compressedKey} exists and is not its compressed copy; left as it is`);
      const removed = await removeOriginal(at(file.name), item, file.parentFd, beforeRequest);
      if (removed !== true) return kept(removed);
      const note = 'finished a compression interrupted earlier';
      return {
        key,
        status: 'compressed',
        compressedKey,
        bytesBefore: item.size ?? 0,
        bytesAfter: existing.size,
        error: note,
      };
    }
    const written = await writeCompressed(at(file.name), file.stats, at, format);
    if ('error' in written) return kept(written.error);
    const temporary = at(written.name);
    try {
      beforeRequest?.();
      await link(temporary, at(target));
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      if (isErrnoCode(error, 'EEXIST')) return kept(`${compressedKey} appeared meanwhile; left as it is`);
      throw error;
    }
    await unlinkIfPresent(temporary);
    await fsyncFd(file.parentFd);
    const removed = await removeOriginal(at(file.name), item, file.parentFd, beforeRequest);
    if (removed !== true) {
      // The original changed after the copy: the copy is stale. Remove it (only if it is still ours).
      const now = await lstatOrUndefined(at(target));
      if (now && now.ino === written.ino) await unlinkIfPresent(at(target));
      return kept(removed);
    }
    return { key, status: 'compressed', compressedKey, bytesBefore: file.stats.size, bytesAfter: written.size };
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return { key, status: 'missing' };
    return { key, status: 'failed', error: describeCause(error) };
  }
}

/** The scan's view of the file still holds: same mtime and size (a file written since is left alone). */
function unchangedSinceScan(stats: Stats, item: EligibleItem): boolean {
  return stats.mtime.getTime() === item.timestamp.getTime() && (item.size === undefined || stats.size === item.size);
}

/**
 * The compressed copy of `source` in a new temporary file beside it, durable, with the original's
 * mode, owner (when root) and times. Removed again if anything fails on the way.
 */
async function writeCompressed(
  source: string,
  scanned: Stats,
  at: (name: string) => string,
  format: CompressFormat,
): Promise<{ name: string; ino: number; size: number } | { error: string }> {
  const input = await open(source, O_RDONLY | O_NOFOLLOW);
  const name = temporaryName();
  let output: FileHandle | undefined;
  try {
    const opened = await input.stat();
    // The name now denotes another file than the one checked (replaced in between): not ours to compress.
    if (opened.ino !== scanned.ino || opened.dev !== scanned.dev)
      return { error: 'replaced since the scan; left as it is' };
    // Permission bits only (never setuid/setgid on a copy root writes); set again past the umask below.
    const mode = opened.mode & 0o777;
    output = await open(at(name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    await pipeline(
      createReadStream('', { fd: input.fd, autoClose: false, emitClose: false }),
      compressor(format),
      createWriteStream('', { fd: output.fd, autoClose: false, emitClose: false }),
    );
    if (process.getuid?.() === 0) await output.chown(opened.uid, opened.gid).catch(() => undefined);
    await output.chmod(mode);
    await output.utimes(opened.atime, opened.mtime);
    await output.sync();
    const written = await output.stat();
    return { name, ino: written.ino, size: written.size };
  } catch (error) {
    await unlink(at(name)).catch(() => undefined);
    throw error;
  } finally {
    await output?.close();
    await input.close();
  }
}

function compressor(format: CompressFormat) {
  switch (format) {
    case 'gzip':
      return createGzip();
  }
}

/**
 * Unlinks the original once the compressed copy is durable, if it is still the file the scan saw
 * (mtime and size); returns true, or why it was left. The lease is checked right before.
 */
async function removeOriginal(
  original: string,
  item: EligibleItem,
  directoryFd: number,
  beforeRequest: Guard,
): Promise<true | string> {
  const stats = await lstat(original);
  if (!stats.isFile() || !unchangedSinceScan(stats, item)) return 'modified while it was compressed; left uncompressed';
  beforeRequest?.();
  await unlink(original);
  await fsyncFd(directoryFd);
  return true;
}

async function unlinkIfPresent(target: string): Promise<void> {
  try {
    await unlink(target);
  } catch (error) {
    if (!isErrnoCode(error, 'ENOENT')) throw error;
  }
}

/** Whether `compressed` decompresses to exactly the bytes of `original` (sha256 of both streams). */
async function sameContent(original: string, compressed: string): Promise<boolean> {
  const digest = async (path: string, decompress: boolean): Promise<string | undefined> => {
    const handle = await open(path, O_RDONLY | O_NOFOLLOW);
    const hash = createHash('sha256');
    const consume = async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) hash.update(chunk);
    };
    try {
      const stream = createReadStream('', { fd: handle.fd, autoClose: false, emitClose: false });
      await (decompress ? pipeline(stream, createGunzip(), consume) : pipeline(stream, consume));
      return hash.digest('hex');
    } catch {
      // Not a valid gzip stream (truncated, another format): not the copy.
      return undefined;
    } finally {
      await handle.close();
    }
  };
  const [plain, unpacked] = await Promise.all([digest(original, false), digest(compressed, true)]);
  return plain !== undefined && plain === unpacked;
}

/** Removes the temporary file `name` in the directory of `key`, reached through pinned directories. */
async function removeTemporary(directories: PinnedDirectories, key: string): Promise<boolean> {
  const file = await containedFile(directories, key);
  if (!file.ok || !isCompressTemporary(file.name)) return false;
  try {
    await unlink(within(file.parentFd, file.name));
    return true;
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return false;
    throw error;
  }
}
