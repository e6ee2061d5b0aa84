import {
  BlobAccessError,
  BlobServiceRateLimited,
  BlobStoreNotFoundError,
  del,
  type ListBlobResult,
  type ListBlobResultBlob,
  list,
} from '@vercel/blob';
import type { VercelBlobStoreConfig } from './schema.ts';

export type { VercelBlobStoreConfig };

import { chunks, type RetryDeps, type RetryPolicy, withRetry } from '../../core/async.ts';
import { RequestDeadline, requestTimeoutMs } from '../../core/deadline.ts';
import type {
  Census,
  CensusQuery,
  DeleteOptions,
  DeleteOutcome,
  Page,
  RunContext,
  ScanQuery,
  Store,
} from '../../core/store.ts';
import type { EligibleItem, Item } from '../../core/types.ts';
import { ConfigError, describeCause, StoreError } from '../../errors.ts';
import {
  checkedOnce,
  compareUtf8,
  countCensus,
  type KeyLocator,
  locateByListing,
  scopeMatcher,
  sendGuarded,
} from '../common.ts';
import { type BlobCall, createVercelBlobBackups } from './backup.ts';

/** The SDK never retries a 429: we do, waiting at least its Retry-After, a bounded number of times. */
export const RATE_LIMIT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 1_000, maxDelayMs: 60_000 };
/**
 * The SDK retries 5xx VERCEL_BLOB_RETRIES times (default 10, doubling from 1 s: up to ~30 min,
 * far past any run budget). When the variable is unset we bound it to this (1 s + 2 s).
 */
export const DEFAULT_SDK_RETRIES = '2';
const LIST_LIMIT = 1000;
/**
 * Scanned pages remembered (where each started, its first and last pathname) so a delete batch is
 * re-listed from where its page started: a run's whole kept census listing (250 pages) and more.
 */
const REMEMBERED_PAGES = 1_100;

export type VercelBlobStoreDeps = RetryDeps;

/**
 * Vercel Blob (data class `blobs`): keys are pathnames, timestamps `uploadedAt`. Every list page is
 * a billed "advanced operation" and head() a billed simple one, so nothing here heads a blob
 * during scan or delete: list gives uploadedAt and size.
 *
 * Invariant 1 at delete time: a batch is re-listed from the cursor its scanned page started at
 * (one list call per page) right before del(); a blob rewritten since the scan is `kept`, one
 * already gone `missing` (del() itself cannot tell). A write in the moment between that listing
 * and del() is not caught: del's ifMatch works for a single URL only.
 */
export function createVercelBlobStore(config: VercelBlobStoreConfig, deps: VercelBlobStoreDeps = {}): Store {
  const location = `vercel-blob:${config.prefix}`;
  const matchesGlobs = scopeMatcher(config.include, config.exclude);
  const inScope = (key: string): boolean => key.startsWith(config.prefix) && matchesGlobs(key);
  const recentPages: Array<{ cursor?: string; first: string; last: string }> = [];
  const deadline = new RequestDeadline(location);

  const token = (): string => {
    const value = config.token ?? process.env.BLOB_READ_WRITE_TOKEN;
    if (!value)
      throw ConfigError.single('store.token', 'no Vercel Blob token', 'set BLOB_READ_WRITE_TOKEN (or store.token)', {
        store: location,
      });
    return value;
  };
  /**
   * Each request's credentials and bounds: one request timeout (a list page or a del of ≤1000 URLs
   * answers in well under a second), and the run's deadline across all of them.
   */
  const authorized = (): { token: string; abortSignal: AbortSignal } => {
    const timeout = AbortSignal.timeout(requestTimeoutMs());
    return { token: token(), abortSignal: deadline.signal ? AbortSignal.any([timeout, deadline.signal]) : timeout };
  };
  const call: BlobCall = (operation) => {
    process.env.VERCEL_BLOB_RETRIES ??= DEFAULT_SDK_RETRIES;
    return withRetry(
      operation,
      RATE_LIMIT_RETRY,
      (error) =>
        error instanceof BlobServiceRateLimited
          ? {
              retry: true,
              reason: 'rate_limited',
              ...(error.retryAfter > 0 ? { afterMs: error.retryAfter * 1000 } : {}),
            }
          : { retry: false },
      // A rate limit's wait is cut short by the run's deadline too.
      { ...deps, sleep: deps.sleep ?? deadline.sleep },
    );
  };
  const listPage = async (options: { prefix: string; cursor?: string; limit?: number }): Promise<ListBlobResult> => {
    try {
      return await call(() =>
        list({
          ...authorized(),
          prefix: options.prefix,
          limit: options.limit ?? LIST_LIMIT,
          ...(options.cursor ? { cursor: options.cursor } : {}),
        }),
      );
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      deadline.throwIfPassed(`listing "${options.prefix}"`, error);
      throw new StoreError(
        `cannot list Vercel Blob prefix "${options.prefix}": ${describeCause(error)}`,
        { store: location },
        { cause: error },
      );
    }
  };

  async function* allBlobs(): AsyncGenerator<Item> {
    let cursor: string | undefined;
    do {
      const page = await listPage({ prefix: config.prefix, ...(cursor ? { cursor } : {}) });
      for (const blob of page.blobs) if (inScope(blob.pathname)) yield toItem(blob);
      cursor = page.hasMore ? page.cursor : undefined;
    } while (cursor);
  }

  const locator: KeyLocator<ListBlobResultBlob> = {
    async listWindow(first) {
      const remembered = recentPages.find(
        (page) => compareUtf8(page.first, first) <= 0 && compareUtf8(first, page.last) <= 0,
      );
      if (!remembered) return undefined;
      const page = await listPage({
        prefix: config.prefix,
        ...(remembered.cursor ? { cursor: remembered.cursor } : {}),
      });
      const last = page.blobs.at(-1)?.pathname;
      return {
        entries: page.blobs.map((blob) => [blob.pathname, blob]),
        ...(last === undefined ? {} : { lastKey: last }),
      };
    },
    async listExact(key) {
      let cursor: string | undefined;
      do {
        const page = await listPage({ prefix: key, ...(cursor ? { cursor } : {}) });
        const match = page.blobs.find((blob) => blob.pathname === key);
        if (match) return match;
        cursor = page.hasMore ? page.cursor : undefined;
      } while (cursor);
      return undefined;
    },
  };

  const checkStore = checkedOnce(async () => {
    try {
      await call(() => list({ ...authorized(), prefix: config.prefix, limit: 1 }));
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      deadline.throwIfPassed('opening', error);
      if (error instanceof BlobAccessError || error instanceof BlobStoreNotFoundError) {
        throw new ConfigError(
          [
            {
              path: 'store.token',
              message: `Vercel Blob refused the token: ${describeCause(error)}`,
              fix: 'check BLOB_READ_WRITE_TOKEN',
            },
          ],
          { store: location },
          { cause: error },
        );
      }
      throw new StoreError(`cannot reach Vercel Blob: ${describeCause(error)}`, { store: location }, { cause: error });
    }
  });

  return {
    kind: 'vercel-blob',
    location,
    order: 'key',
    // del() takes 1000 URLs, one request at a time (rate limits).
    deletes: { batchItems: LIST_LIMIT, inFlight: 1 },
    censusByListing: true,

    async open(run?: RunContext) {
      deadline.bind(run);
      await checkStore();
    },

    async scan({ cursor, limit }: ScanQuery): Promise<Page> {
      const items: Item[] = [];
      let position = cursor;
      let listed = 0;
      let more = true;
      while (more && listed < limit) {
        const page = await listPage({
          prefix: config.prefix,
          limit: Math.min(LIST_LIMIT, limit - listed),
          ...(position ? { cursor: position } : {}),
        });
        rememberPage(position, page.blobs);
        listed += page.blobs.length;
        for (const blob of page.blobs) if (inScope(blob.pathname)) items.push(toItem(blob));
        more = page.hasMore && page.cursor !== undefined;
        if (more) position = page.cursor;
      }
      return { items, ...(position === undefined ? {} : { cursor: position }), done: !more };
    },

    census(query: CensusQuery): Promise<Census> {
      return countCensus(allBlobs(), query);
    },

    async delete(items: EligibleItem[], options?: DeleteOptions): Promise<DeleteOutcome[]> {
      const outcomes: DeleteOutcome[] = [];
      const inStore = items.filter((item) => {
        if (inScope(item.key)) return true;
        outcomes.push({
          key: item.key,
          status: 'failed',
          error: `refused: pathname is outside ${location} (prefix/include/exclude)`,
        });
        return false;
      });
      let current: Map<string, ListBlobResultBlob>;
      try {
        current = await locateByListing(
          inStore.map((item) => item.key),
          locator,
        );
      } catch (error) {
        deadline.throwIfPassed(`re-checking ${inStore.length} pathnames`, error);
        return [
          ...outcomes,
          ...inStore.map((item) => ({ key: item.key, status: 'failed' as const, error: describeCause(error) })),
        ];
      }
      const deletable: ListBlobResultBlob[] = [];
      for (const item of inStore) {
        const blob = current.get(item.key);
        if (!blob) outcomes.push({ key: item.key, status: 'missing' });
        // Invariant 1: re-uploaded since the scan; its current uploadedAt decides.
        else if (blob.uploadedAt.getTime() >= item.cutoff.getTime()) outcomes.push({ key: item.key, status: 'kept' });
        else deletable.push(blob);
      }
      // del() is all or nothing per request, and free: chunks of ≤1000 URLs, one at a time (rate limits).
      const sent = await sendGuarded(
        chunks(deletable, 1000),
        1,
        options?.beforeRequest,
        async (chunk): Promise<DeleteOutcome[]> => {
          try {
            await call(() =>
              del(
                chunk.map((blob) => blob.url),
                authorized(),
              ),
            );
            return chunk.map((blob) => ({ key: blob.pathname, status: 'deleted' as const, bytes: blob.size }));
          } catch (error) {
            // Cut short by the run's deadline: whether it went is unknown, so the intents stay pending.
            deadline.throwIfPassed(`del of ${chunk.length} blobs`, error);
            return chunk.map((blob) => ({
              key: blob.pathname,
              status: 'failed' as const,
              error: `del: ${describeCause(error)}`,
            }));
          }
        },
      );
      return [...outcomes, ...sent];
    },

    async present(keys: string[]): Promise<Set<string>> {
      return new Set((await locateByListing(keys, locator)).keys());
    },

    backups: createVercelBlobBackups({ config, location, call, token, authorized, deadline, listPage }),

    // Nothing to release: every request carries its own token and bound.
    async close() {},
  };

  function rememberPage(cursor: string | undefined, blobs: ListBlobResultBlob[]): void {
    const first = blobs[0]?.pathname;
    const last = blobs.at(-1)?.pathname;
    if (first === undefined || last === undefined) return;
    recentPages.unshift({ ...(cursor ? { cursor } : {}), first, last });
    recentPages.length = Math.min(recentPages.length, REMEMBERED_PAGES);
  }
}

function toItem(blob: ListBlobResultBlob): Item {
  return { key: blob.pathname, timestamp: blob.uploadedAt, size: blob.size };
}
