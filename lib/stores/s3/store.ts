import { ListObjectsV2Command, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { S3StoreConfig } from './schema.ts';

export type { S3StoreConfig };

import type { RetryPolicy } from '../../core/async.ts';
import { CONNECT_TIMEOUT_MS, RequestDeadline, requestTimeoutMs } from '../../core/deadline.ts';
import type {
  Census,
  CensusQuery,
  DeleteOutcome,
  Page,
  RunContext,
  ScanQuery,
  Store,
  DeleteOptions as StoreDeleteOptions,
} from '../../core/store.ts';
import { type Clock, type EligibleItem, type Item, systemClock } from '../../core/types.ts';
import { ConfigError, describeCause, StoreError } from '../../errors.ts';
import { CensusTally, checkedOnce, locateByListing, scopeMatcher } from '../common.ts';
import { createS3Backups } from './backup.ts';
import { lifecyclePlan } from './lifecycle.ts';
import {
  type CurrentObject,
  deleteTargets,
  MAX_OBJECTS_PER_DELETE,
  type ObjectSource,
  objectLocator,
  resultFor,
} from './objects.ts';

/** Per-object retries of DeleteObjects Errors[] (the SDK already retried whole requests). */
const OBJECT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 200, maxDelayMs: 5_000 };

export interface S3StoreDeps {
  /** Injected client (tests, custom credentials); default: built from the config by s3ClientFor. */
  client?: S3Client;
  sleep?: (ms: number) => Promise<void>;
  /** Tells whether an Object Lock retention period is over; default: the system clock. */
  clock?: Clock;
}

/** The client the store builds for itself; tests add endpoint credentials on top. */
export function s3ClientFor(config: S3StoreConfig, overrides: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.forcePathStyle !== undefined ? { forcePathStyle: config.forcePathStyle } : {}),
    retryMode: 'adaptive',
    maxAttempts: config.maxAttempts,
    // A frozen endpoint costs one bounded wait per attempt (see core/deadline.ts); the run's deadline bounds them all.
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: requestTimeoutMs() },
    // Default checksums on every request add CPU and break on S3-compatible servers; DeleteObjects,
    // which requires one, still gets it.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...overrides,
  });
}

/** Scan position: one continuation token per shard; a finished shard is `null`. */
type ShardCursor = Record<string, string | null>;

/**
 * An S3 bucket (data class `blobs`). Keys are object keys, timestamps LastModified.
 *
 * Invariant 1 at delete time: S3 has no atomic "delete if older than" and a HEAD per object is
 * too costly, so each batch is re-listed right before DeleteObjects (one ListObjectsV2 per ≤1000
 * contiguous keys): an object rewritten since the scan is `kept`, one already gone is `missing`.
 * A write landing in the milliseconds between that listing and DeleteObjects is caught only with
 * `conditionalDelete` (the re-listed ETag in DeleteObjects). The re-list stays with it: an object
 * re-uploaded with the same bytes keeps its ETag but restarts its LastModified, and only the
 * listing sees that (the scan's listing can be a whole run old when the run kept it).
 *
 * Deletions go in batches of 1000 keys (one DeleteObjects each), `deleteConcurrency` of them in
 * flight; the census is a listing, so a run counts it from a scan it keeps (`censusByListing`).
 */
export function createS3Store(config: S3StoreConfig, deps: S3StoreDeps = {}): Store {
  const client = deps.client ?? s3ClientFor(config);
  const shards = config.prefixes ?? [config.prefix];
  const location = `s3://${config.bucket}/${config.prefix}`;
  const inScope = scopeMatcher(config.include, config.exclude);
  const deadline = new RequestDeadline(location);
  const source: ObjectSource = {
    client,
    deadline,
    bucket: config.bucket,
    versions: config.versions,
    conditionalDelete: config.conditionalDelete,
    shardOf: (key) => shards.find((shard) => key.startsWith(shard)),
  };
  const context = (extra: Record<string, unknown> = {}) => ({ store: location, ...extra });

  /** Lists one shard from `token`, at most `quota` keys in as few requests as possible. */
  async function listShard(
    shard: string,
    token: string | undefined,
    quota: number,
  ): Promise<{ items: Item[]; token: string | null }> {
    const items: Item[] = [];
    let listed = 0;
    let next: string | undefined = token;
    do {
      const response = await client
        .send(
          new ListObjectsV2Command({
            Bucket: config.bucket,
            Prefix: shard,
            MaxKeys: Math.min(1000, quota - listed),
            ContinuationToken: next,
          }),
          deadline.sendOptions,
        )
        .catch((error: unknown) => {
          deadline.throwIfPassed(`listing ${shard}`, error);
          throw new StoreError(
            `cannot list s3://${config.bucket}/${shard}: ${describeCause(error)}`,
            context({ prefix: shard }),
            { cause: error },
          );
        });
      for (const object of response.Contents ?? []) {
        listed += 1;
        if (object.Key !== undefined && inScope(object.Key))
          items.push({ key: object.Key, timestamp: object.LastModified!, size: object.Size ?? 0 });
      }
      next = response.IsTruncated ? response.NextContinuationToken : undefined;
    } while (next !== undefined && listed < quota);
    return { items, token: next ?? null };
  }

  async function* shardItems(shard: string): AsyncGenerator<Item> {
    let token: string | undefined;
    do {
      const page = await listShard(shard, token, 1000);
      yield* page.items;
      token = page.token ?? undefined;
    } while (token !== undefined);
  }

  async function locate(keys: string[]): Promise<Map<string, CurrentObject>> {
    try {
      return await locateByListing(keys, objectLocator(source));
    } catch (error) {
      deadline.throwIfPassed(`re-checking ${keys.length} keys`, error);
      throw new StoreError(
        `cannot list s3://${config.bucket} to re-check ${keys.length} keys: ${describeCause(error)}`,
        context({ key: keys[0] }),
        { cause: error },
      );
    }
  }

  const checkBucket = checkedOnce(async () => {
    try {
      // A listing under the store's prefix, not HeadBucket: IAM authorizes HeadBucket as a
      // ListBucket without s3:prefix, which a prefix-conditioned grant (the deployment plan) denies.
      await client.send(
        new ListObjectsV2Command({ Bucket: config.bucket, Prefix: shards[0], MaxKeys: 1 }),
        deadline.sendOptions,
      );
    } catch (error) {
      deadline.throwIfPassed('opening', error);
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404)
        throw ConfigError.single(
          'store.bucket',
          `bucket ${config.bucket} does not exist`,
          'create it or fix the name',
          context(),
        );
      if (status === 403)
        throw new ConfigError(
          [
            {
              path: 'store.bucket',
              message: `access to bucket ${config.bucket} denied`,
              fix: 'grant s3:ListBucket, s3:DeleteObject (and s3:GetObject/PutObject for backups)',
            },
          ],
          context(),
          { cause: error },
        );
      throw new StoreError(
        `cannot reach bucket ${config.bucket}${config.endpoint ? ` at ${config.endpoint}` : ''}: ${describeCause(error)}`,
        context(),
        { cause: error },
      );
    }
  });

  return {
    kind: 's3',
    location,
    order: 'key',
    deletes: { batchItems: MAX_OBJECTS_PER_DELETE, inFlight: config.deleteConcurrency },
    censusByListing: true,

    async open(run?: RunContext) {
      deadline.bind(run);
      await checkBucket();
    },

    async scan({ cursor, limit }: ScanQuery): Promise<Page> {
      const positions = parseCursor(cursor, shards);
      const active = shards.filter((shard) => positions[shard] !== null);
      // Shards are listed concurrently, each with an equal share of the page.
      const listed = await Promise.all(
        active.map((shard, index) => {
          const quota = Math.floor(limit / active.length) + (index < limit % active.length ? 1 : 0);
          return quota > 0 ? listShard(shard, positions[shard] ?? undefined, quota) : undefined;
        }),
      );
      listed.forEach((result, index) => {
        if (result) positions[active[index]!] = result.token;
      });
      const items = byTurns(listed.map((result) => result?.items ?? []));
      return { items, cursor: JSON.stringify(positions), done: shards.every((shard) => positions[shard] === null) };
    },

    async census(query: CensusQuery): Promise<Census> {
      const tally = new CensusTally(query);
      await Promise.all(
        shards.map(async (shard) => {
          for await (const item of shardItems(shard)) if (!tally.add(item)) return;
        }),
      );
      return tally.census;
    },

    async delete(items: EligibleItem[], options?: StoreDeleteOptions): Promise<DeleteOutcome[]> {
      const outcomes: DeleteOutcome[] = [];
      const inStore = items.filter((item) => {
        if (source.shardOf(item.key) !== undefined && inScope(item.key)) return true;
        outcomes.push({
          key: item.key,
          status: 'failed',
          error: `refused: key is outside ${location} (prefixes/include/exclude)`,
        });
        return false;
      });
      let current: Map<string, CurrentObject>;
      try {
        current = await locate(inStore.map((item) => item.key));
      } catch (error) {
        deadline.throwIfPassed(`re-checking ${inStore.length} keys`, error);
        return [
          ...outcomes,
          ...inStore.map((item) => ({ key: item.key, status: 'failed' as const, error: describeCause(error) })),
        ];
      }
      const deletable: Array<{ item: EligibleItem; object: CurrentObject }> = [];
      for (const item of inStore) {
        const object = current.get(item.key);
        if (!object) outcomes.push({ key: item.key, status: 'missing' });
        // Invariant 1: rewritten since the scan; its current LastModified decides.
        else if (object.lastModified.getTime() >= item.cutoff.getTime())
          outcomes.push({ key: item.key, status: 'kept' });
        else deletable.push({ item, object });
      }
      outcomes.push(
        ...(await deleteObjects(
          deletable.map((entry) => entry.object),
          options?.beforeRequest,
        )),
      );
      return outcomes;
    },

    async present(keys: string[]): Promise<Set<string>> {
      // Listing, not HeadObject per key: one request per ≤1000 contiguous keys, and HEAD on a
      // missing key answers 403 instead of 404 without s3:ListBucket, which we need anyway.
      return new Set((await locate(keys)).keys());
    },

    backups: createS3Backups({
      client,
      deadline,
      config,
      location,
      shards,
      deleteObjects: (bucket, targets) => deleteTargets(client, bucket, targets, deleteOptions()),
    }),

    nativeExpiry: { plan: async (input) => lifecyclePlan(config, input) },

    async close() {
      if (!deps.client) client.destroy();
    },
  };

  function deleteOptions() {
    const clock = deps.clock ?? systemClock;
    return {
      concurrency: config.deleteConcurrency,
      retry: OBJECT_RETRY,
      now: () => clock.now(),
      deadline,
      sleep: deps.sleep ?? deadline.sleep,
    };
  }

  /**
   * Versions `all` deletes in two phases: noncurrent versions and markers first, the current
   * version only once they are all gone. A key that failed midway keeps its current version, so
   * the next scan still sees it and retries; the other order would orphan invisible versions.
   */
  async function deleteObjects(objects: CurrentObject[], beforeRequest?: () => void): Promise<DeleteOutcome[]> {
    const guarded = { ...deleteOptions(), ...(beforeRequest ? { beforeRequest } : {}) };
    const noncurrent = await deleteTargets(
      client,
      config.bucket,
      objects.flatMap((object) => object.noncurrent),
      guarded,
    );
    const ready: CurrentObject[] = [];
    const outcomes: DeleteOutcome[] = [];
    for (const object of objects) {
      // A failure is retried next run; a locked noncurrent version holds its whole key (its current version stays too).
      const results = object.noncurrent.map((target) => resultFor(noncurrent, target));
      const stuck =
        results.find((result) => result.status === 'failed') ?? results.find((result) => result.status === 'held');
      // Not attempted (the run stopped): no outcome, the engine records the item as not attempted.
      if (results.some((result) => result.status === 'unsent')) continue;
      if (stuck?.status === 'failed')
        outcomes.push({ key: object.key, status: 'failed', error: `noncurrent version: ${stuck.error}` });
      else if (stuck?.status === 'held')
        outcomes.push({ key: object.key, status: 'held', error: `${stuck.error} (a noncurrent version)` });
      else ready.push(object);
    }
    const current = await deleteTargets(
      client,
      config.bucket,
      ready.map((object) => object.current),
      guarded,
    );
    for (const object of ready) {
      const result = resultFor(current, object.current);
      if (result.status === 'unsent') continue;
      if (result.status === 'failed' || result.status === 'held')
        outcomes.push({ key: object.key, status: result.status, error: result.error });
      // Conditional delete refused: the object changed after the pre-delete listing.
      else if (result.status === 'changed') outcomes.push({ key: object.key, status: 'kept' });
      else if (result.status === 'missing') outcomes.push({ key: object.key, status: 'missing' });
      else outcomes.push({ key: object.key, status: 'deleted', bytes: object.size });
    }
    return outcomes;
  }
}

/**
 * Shards' items in turns of 1000 (each shard's in key order): consecutive delete batches then come
 * from different prefixes, so the batches in flight share the load across their per-prefix limits.
 */
function byTurns(shardItems: Item[][]): Item[] {
  const items: Item[] = [];
  const longest = Math.max(0, ...shardItems.map((list) => list.length));
  for (let start = 0; start < longest; start += MAX_OBJECTS_PER_DELETE)
    for (const list of shardItems) items.push(...list.slice(start, start + MAX_OBJECTS_PER_DELETE));
  return items;
}

/**
 * A cursor from a checkpoint. Shards absent from it (the config gained one) start from the
 * beginning; an unreadable cursor restarts the whole scan, which only costs a rescan.
 */
function parseCursor(cursor: string | undefined, shards: string[]): ShardCursor {
  let saved: unknown;
  try {
    saved = cursor === undefined ? {} : JSON.parse(cursor);
  } catch {
    saved = {};
  }
  const positions: ShardCursor = {};
  for (const shard of shards) {
    const value = typeof saved === 'object' && saved !== null ? (saved as Record<string, unknown>)[shard] : undefined;
    if (value === null || typeof value === 'string') positions[shard] = value;
  }
  return positions;
}
