import { BlobNotFoundError, copy, del, head, type ListBlobResult, type ListBlobResultBlob } from '@vercel/blob';
import { chunks, mapConcurrent } from '../../core/async.ts';
import type { RequestDeadline } from '../../core/deadline.ts';
import type { BackupOutcome, BackupRef, RestoreOutcome, StoreBackups } from '../../core/store.ts';
import type { EligibleItem } from '../../core/types.ts';
import { ConfigError, describeCause, StoreError } from '../../errors.ts';
import { backupSegment } from '../common.ts';
import type { VercelBlobStoreConfig } from './schema.ts';

/** One SDK call with our rate-limit retries; every other error propagates. */
export type BlobCall = <T>(call: () => Promise<T>) => Promise<T>;

/**
 * Backups of a Vercel Blob store inside the same store: copy() (server-side) to the pathname
 * `<to><policy>/<runId>/<key>`, restore by copying back, pruning by run folder. A copy gets a
 * fresh uploadedAt (Vercel cannot set it): a restored blob counts its retention from the restore.
 */
const COPY_CONCURRENCY = 8;

export interface VercelBlobBackupContext {
  config: VercelBlobStoreConfig;
  location: string;
  call: BlobCall;
  token(): string;
  /** The token and the request's bounds (one request timeout, the run's deadline). */
  authorized(): { token: string; abortSignal: AbortSignal };
  deadline: RequestDeadline;
  listPage(options: { prefix: string; cursor?: string }): Promise<ListBlobResult>;
}

export function createVercelBlobBackups(context: VercelBlobBackupContext): StoreBackups {
  const { config, location, call, token, authorized, deadline } = context;

  /** `<to><policy>/`, refused when it overlaps the store (copies would be swept as policy items). */
  function policyPrefix(to: string, policy: string): string {
    const problem = backupSegment(policy, 'policy');
    if (problem) throw new StoreError(problem, { store: location, policy });
    const base = to === '' || to.endsWith('/') ? to : `${to}/`;
    const prefix = `${base}${policy}/`;
    if (prefix.startsWith(config.prefix) || config.prefix.startsWith(prefix)) {
      throw ConfigError.single(
        'backup.to',
        `backup prefix ${prefix} overlaps the store prefix "${config.prefix}"`,
        'give the store a prefix (e.g. "pdfs/") and back up outside it',
        { store: location, policy },
      );
    }
    return prefix;
  }

  function runPrefix(ref: BackupRef): string {
    const problem = backupSegment(ref.runId, 'runId');
    if (problem) throw new StoreError(problem, { store: location, policy: ref.policy, runId: ref.runId });
    return `${policyPrefix(ref.to, ref.policy)}${ref.runId}/`;
  }

  // A server-side copy of a large blob may take longer than one request timeout: only the run's deadline bounds it.
  const copyBlob = (from: string, to: string, allowOverwrite: boolean) =>
    call(() =>
      copy(from, to, {
        access: config.access,
        token: token(),
        ...deadline.sendOptions,
        addRandomSuffix: false,
        allowOverwrite,
      }),
    );

  return {
    async backup(items: EligibleItem[], ref: BackupRef): Promise<BackupOutcome[]> {
      const prefix = runPrefix(ref);
      return mapConcurrent(items, COPY_CONCURRENCY, async (item) => {
        try {
          // A retried batch of the same run may copy again: overwriting its own backup is fine.
          await copyBlob(item.key, `${prefix}${item.key}`, true);
          return { key: item.key, ok: true };
        } catch (error) {
          deadline.throwIfPassed('backing up', error);
          return { key: item.key, ok: false, error: `copy to ${prefix}${item.key}: ${describeCause(error)}` };
        }
      });
    },

    async restore(ref: BackupRef, keys: string[]): Promise<RestoreOutcome[]> {
      const prefix = runPrefix(ref);
      return mapConcurrent(keys, COPY_CONCURRENCY, async (key): Promise<RestoreOutcome> => {
        if (!key.startsWith(config.prefix))
          return { key, status: 'failed', error: `refused: pathname is outside ${location}` };
        try {
          // head() here is fine: restore is rare and per key by nature (never in scan or delete).
          if (await exists(key)) return { key, status: 'exists' };
          // allowOverwrite false: a blob uploaded since the check is never overwritten.
          await copyBlob(`${prefix}${key}`, key, false);
          return { key, status: 'restored' };
        } catch (error) {
          if (error instanceof BlobNotFoundError) return { key, status: 'no_backup' };
          return { key, status: 'failed', error: describeCause(error) };
        }
      });
    },

    async prune(to: string, policy: string, olderThan: Date): Promise<number> {
      const prefix = policyPrefix(to, policy);
      try {
        const runs = new Map<string, ListBlobResultBlob[]>();
        let cursor: string | undefined;
        do {
          const page = await context.listPage({ prefix, ...(cursor ? { cursor } : {}) });
          for (const blob of page.blobs) {
            const runId = blob.pathname.slice(prefix.length).split('/')[0]!;
            runs.set(runId, [...(runs.get(runId) ?? []), blob]);
          }
          cursor = page.hasMore ? page.cursor : undefined;
        } while (cursor);
        let pruned = 0;
        for (const blobs of runs.values()) {
          // A run's folder is as old as its newest copy: prune only when every copy is older.
          if (blobs.some((blob) => blob.uploadedAt.getTime() >= olderThan.getTime())) continue;
          for (const chunk of chunks(blobs, 1000))
            await call(() =>
              del(
                chunk.map((blob) => blob.url),
                authorized(),
              ),
            );
          pruned += 1;
        }
        return pruned;
      } catch (error) {
        deadline.throwIfPassed('pruning backups', error);
        if (error instanceof StoreError || error instanceof ConfigError) throw error;
        throw new StoreError(
          `cannot prune backups under ${prefix}: ${describeCause(error)}`,
          { store: location, policy },
          { cause: error },
        );
      }
    },
  };

  async function exists(pathname: string): Promise<boolean> {
    try {
      await call(() => head(pathname, authorized()));
      return true;
    } catch (error) {
      if (error instanceof BlobNotFoundError) return false;
      throw error;
    }
  }
}
