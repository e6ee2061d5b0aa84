import {
  type _Object,
  DeleteObjectsCommand,
  type DeleteObjectsCommandOutput,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  type ObjectIdentifier,
  type S3Client,
} from '@aws-sdk/client-s3';
import { backoffMs, chunks, mapConcurrent, type RetryPolicy, sleep } from '../../core/async.ts';
import type { RequestDeadline } from '../../core/deadline.ts';
import { describeCause } from '../../errors.ts';
import { compareUtf8, type KeyLocator, mayProceed, type WindowPage } from '../common.ts';
import { objectLockOf } from './objectLock.ts';

/**
 * Object-level S3 calls shared by the store and its backup code: the current state of keys by
 * listing (ListObjectsV2, or ListObjectVersions when every version goes) and DeleteObjects with
 * ≤1000 objects per request, several in flight, per-object errors retried a bounded number of times.
 */

/** Real S3 rejects a DeleteObjects request with more; s3rver does not, so the cap is ours to keep. */
export const MAX_OBJECTS_PER_DELETE = 1000;
const MAX_LIST_KEYS = 1000;

/** One object (or one version / delete marker) to delete. */
export interface DeleteTarget {
  key: string;
  versionId?: string;
  /** With conditional deletes, S3 refuses (PreconditionFailed) if the object changed since listed. */
  etag?: string;
}

/** What a listing says about one key now. */
export interface CurrentObject {
  key: string;
  lastModified: Date;
  size: number;
  /** The current object (with versions 'all': its current version). */
  current: DeleteTarget;
  /** Versions 'all': the noncurrent versions and delete markers, deleted before the current one (see s3.ts). */
  noncurrent: DeleteTarget[];
}

export interface ObjectSource {
  client: S3Client;
  deadline: RequestDeadline;
  bucket: string;
  versions: 'current' | 'all';
  conditionalDelete: boolean;
  /** The shard prefix a key belongs to (listing is scoped to it); undefined: outside the store. */
  shardOf(key: string): string | undefined;
}

/**
 * A StartAfter/KeyMarker just below `key` in UTF-8 order, so a listing starts at `key` itself:
 * `key` minus its last code point, plus that code point's predecessor and U+10FFFF. Keys that fall
 * between this and `key` are listed too; harmless (they are just not in the batch).
 */
export function keyBefore(key: string): string {
  const codePoints = [...key];
  const last = codePoints.pop()?.codePointAt(0);
  const stem = codePoints.join('');
  if (last === undefined || last <= 0x20) return stem;
  const previous = last - 1 >= 0xd800 && last - 1 <= 0xdfff ? 0xd7ff : last - 1;
  return `${stem}${String.fromCodePoint(previous)}\u{10FFFF}`;
}

/** Listing-based lookup of keys (see locateByListing): windows positioned with StartAfter/KeyMarker. */
export function objectLocator(source: ObjectSource): KeyLocator<CurrentObject> {
  return source.versions === 'all' ? versionLocator(source) : currentLocator(source);
}

function currentLocator(source: ObjectSource): KeyLocator<CurrentObject> {
  const toCurrent = (object: _Object): CurrentObject => {
    const target: DeleteTarget = {
      key: object.Key!,
      ...(source.conditionalDelete && object.ETag ? { etag: object.ETag } : {}),
    };
    return {
      key: object.Key!,
      lastModified: object.LastModified!,
      size: object.Size ?? 0,
      current: target,
      noncurrent: [],
    };
  };
  return {
    async listWindow(first, remaining) {
      const prefix = source.shardOf(first);
      if (prefix === undefined) return undefined;
      const response = await source.client.send(
        new ListObjectsV2Command({
          Bucket: source.bucket,
          Prefix: prefix,
          StartAfter: keyBefore(first),
          MaxKeys: windowSize(remaining),
        }),
        source.deadline.sendOptions,
      );
      const objects = (response.Contents ?? []).filter((object) => object.Key !== undefined);
      return {
        entries: objects.map((object) => [object.Key!, toCurrent(object)]),
        ...lastKeyOf(objects.map((object) => object.Key!)),
      };
    },
    async listExact(key) {
      let token: string | undefined;
      do {
        const response = await source.client.send(
          new ListObjectsV2Command({
            Bucket: source.bucket,
            Prefix: key,
            MaxKeys: MAX_LIST_KEYS,
            ContinuationToken: token,
          }),
          source.deadline.sendOptions,
        );
        const match = response.Contents?.find((object) => object.Key === key);
        if (match) return toCurrent(match);
        token = response.IsTruncated ? response.NextContinuationToken : undefined;
      } while (token);
      return undefined;
    },
  };
}

interface VersionEntry {
  key: string;
  versionId: string;
  latest: boolean;
  deleteMarker: boolean;
  lastModified: Date;
  size: number;
  etag?: string;
}

function versionLocator(source: ObjectSource): KeyLocator<CurrentObject> {
  const list = async (prefix: string, keyMarker?: string, versionIdMarker?: string, maxKeys = MAX_LIST_KEYS) => {
    const response = await source.client.send(
      new ListObjectVersionsCommand({
        Bucket: source.bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        VersionIdMarker: versionIdMarker,
        MaxKeys: maxKeys,
      }),
      source.deadline.sendOptions,
    );
    const entries: VersionEntry[] = [
      ...(response.Versions ?? []).map((version) => ({
        key: version.Key!,
        versionId: version.VersionId ?? 'null',
        latest: version.IsLatest === true,
        deleteMarker: false,
        lastModified: version.LastModified!,
        size: version.Size ?? 0,
        ...(version.ETag ? { etag: version.ETag } : {}),
      })),
      ...(response.DeleteMarkers ?? []).map((marker) => ({
        key: marker.Key!,
        versionId: marker.VersionId ?? 'null',
        latest: marker.IsLatest === true,
        deleteMarker: true,
        lastModified: marker.LastModified!,
        size: 0,
      })),
    ];
    return {
      entries,
      truncated: response.IsTruncated === true,
      nextKeyMarker: response.NextKeyMarker,
      nextVersionIdMarker: response.NextVersionIdMarker,
    };
  };
  return {
    async listWindow(first, remaining) {
      const prefix = source.shardOf(first);
      if (prefix === undefined) return undefined;
      const page = await list(prefix, keyBefore(first), undefined, windowSize(remaining));
      // A truncated page may hold only some versions of its last key: leave that key to the next window.
      const complete = page.truncated ? page.entries.filter((entry) => entry.key !== page.nextKeyMarker) : page.entries;
      const groups = groupVersions(complete);
      const entries: WindowPage<CurrentObject>['entries'] = [];
      for (const [key, versions] of groups) {
        const current = fromVersions(versions, source.conditionalDelete);
        if (current) entries.push([key, current]);
      }
      return { entries, ...lastKeyOf([...groups.keys()]) };
    },
    async listExact(key) {
      const versions: VersionEntry[] = [];
      let markers: { key?: string; version?: string } = {};
      for (;;) {
        const page = await list(key, markers.key, markers.version);
        versions.push(...page.entries.filter((entry) => entry.key === key));
        if (!page.truncated) break;
        markers = {
          ...(page.nextKeyMarker ? { key: page.nextKeyMarker } : {}),
          ...(page.nextVersionIdMarker ? { version: page.nextVersionIdMarker } : {}),
        };
      }
      return fromVersions(versions, source.conditionalDelete);
    },
  };
}

function groupVersions(entries: VersionEntry[]): Map<string, VersionEntry[]> {
  const groups = new Map<string, VersionEntry[]>();
  for (const entry of [...entries].sort((a, b) => compareUtf8(a.key, b.key))) {
    const group = groups.get(entry.key) ?? [];
    group.push(entry);
    groups.set(entry.key, group);
  }
  return groups;
}

/** A key whose latest version is a delete marker is already deleted: absent (its versions stay for the next plain run). */
function fromVersions(versions: VersionEntry[], conditionalDelete: boolean): CurrentObject | undefined {
  const latest = versions.find((version) => version.latest);
  if (!latest || latest.deleteMarker) return undefined;
  const target = (version: VersionEntry): DeleteTarget => ({
    key: version.key,
    versionId: version.versionId,
    ...(conditionalDelete && version.etag ? { etag: version.etag } : {}),
  });
  return {
    key: latest.key,
    lastModified: latest.lastModified,
    size: versions.reduce((total, version) => total + version.size, 0),
    current: target(latest),
    noncurrent: versions.filter((version) => !version.latest).map(target),
  };
}

function windowSize(remaining: number): number {
  // Room for keys between batch keys (out of scope, or written since the scan) without listing 1000 for a handful.
  return Math.min(MAX_LIST_KEYS, remaining * 2 + 16);
}

function lastKeyOf(keys: string[]): { lastKey?: string } {
  const last = keys.reduce<string | undefined>(
    (max, key) => (max === undefined || compareUtf8(key, max) > 0 ? key : max),
    undefined,
  );
  return last === undefined ? {} : { lastKey: last };
}

/** `held`: S3 Object Lock keeps the object (see s3ObjectLock.ts); `error` says which lock. */
/** `unsent`: never sent, because `beforeRequest` stopped the deletion first (the run lost its lease). */
/** `missing`: a conditional delete found no object (S3 answers NoSuchKey where an unconditional delete succeeds). */
export type TargetResult =
  | { status: 'deleted' }
  | { status: 'changed' }
  | { status: 'missing' }
  | { status: 'unsent' }
  | { status: 'failed' | 'held'; error: string };

export interface DeleteOptions {
  concurrency: number;
  retry: RetryPolicy;
  /** For Object Lock retention periods: is the period over? */
  now: () => Date;
  sleep?: (ms: number) => Promise<void>;
  /** The engine's lease check before each DeleteObjects request (see the Store's DeleteOptions). */
  beforeRequest?: () => void;
  /** The run's deadline: every request carries it, and once it passes, deleteTargets throws. */
  deadline: RequestDeadline;
}

const targetId = (target: DeleteTarget): string => `${target.key}\u0000${target.versionId ?? ''}`;

/**
 * DeleteObjects over `targets`: ≤1000 per request, `concurrency` requests in flight, `Quiet: false`
 * so every object gets a Deleted or Errors entry. Objects in Errors[] (or in a request that failed
 * as a whole after the SDK's own retries) are retried up to `retry.attempts` times in total;
 * AccessDenied is not retried but explained (Object Lock or permissions, see s3ObjectLock.ts).
 * Every target gets a result; it throws only once the run's deadline passed (what a request in
 * flight did is then unknown: the caller leaves it to the write-ahead intents).
 */
export async function deleteTargets(
  client: S3Client,
  bucket: string,
  targets: DeleteTarget[],
  options: DeleteOptions,
): Promise<Map<string, TargetResult>> {
  const results = new Map<string, TargetResult>();
  const denied: Array<[DeleteTarget, string]> = [];
  let pending = targets;
  for (let attempt = 1; pending.length > 0; attempt += 1) {
    const retryable: Array<[DeleteTarget, string]> = [];
    await mapConcurrent(chunks(pending, MAX_OBJECTS_PER_DELETE), options.concurrency, async (chunk) => {
      if (!mayProceed(options.beforeRequest)) {
        for (const target of chunk) results.set(targetId(target), { status: 'unsent' });
        return;
      }
      for (const [target, result] of await deleteChunk(client, bucket, chunk, options.deadline)) {
        if (result.status === 'retry') retryable.push([target, result.error]);
        else if (result.status === 'denied') denied.push([target, result.error]);
        else results.set(targetId(target), result);
      }
    });
    if (attempt >= options.retry.attempts || retryable.length === 0) {
      for (const [target, error] of retryable)
        results.set(targetId(target), { status: 'failed', error: `${error} (after ${attempt} attempts)` });
      break;
    }
    pending = retryable.map(([target]) => target);
    await (options.sleep ?? sleep)(backoffMs(attempt, options.retry));
  }
  await mapConcurrent(denied, options.concurrency, async ([target, error]) => {
    results.set(targetId(target), await explainDenial(client, bucket, target, error, options));
  });
  return results;
}

async function explainDenial(
  client: S3Client,
  bucket: string,
  target: DeleteTarget,
  error: string,
  options: DeleteOptions,
): Promise<TargetResult> {
  const lock = await objectLockOf(client, bucket, target, options.now(), options.deadline);
  if (lock.locked) return { status: 'held', error: lock.reason };
  if (lock.unknown !== undefined) {
    return {
      status: 'failed',
      error: `${error} (not deleted; whether an Object Lock holds it is unknown: ${lock.unknown}; grant s3:GetObjectLegalHold and s3:GetObjectRetention so locked objects count as held)`,
    };
  }
  return {
    status: 'failed',
    error: `${error} (not deleted, and no Object Lock holds it: grant s3:DeleteObject${target.versionId ? ' and s3:DeleteObjectVersion' : ''})`,
  };
}

export function resultFor(results: Map<string, TargetResult>, target: DeleteTarget): TargetResult {
  return results.get(targetId(target)) ?? { status: 'failed', error: 'no result for this object' };
}

type ChunkResult = TargetResult | { status: 'retry'; error: string } | { status: 'denied'; error: string };

async function deleteChunk(
  client: S3Client,
  bucket: string,
  chunk: DeleteTarget[],
  deadline: RequestDeadline,
): Promise<Array<[DeleteTarget, ChunkResult]>> {
  const objects: ObjectIdentifier[] = chunk.map((target) => ({
    Key: target.key,
    ...(target.versionId ? { VersionId: target.versionId } : {}),
    ...(target.etag ? { ETag: target.etag } : {}),
  }));
  let response: DeleteObjectsCommandOutput;
  try {
    response = await client.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: false } }),
      deadline.sendOptions,
    );
  } catch (error) {
    deadline.throwIfPassed(`DeleteObjects of ${chunk.length} objects`, error);
    return chunk.map((target) => [target, { status: 'retry', error: `DeleteObjects failed: ${describeCause(error)}` }]);
  }
  const byId = new Map<string, ChunkResult>();
  for (const deleted of response.Deleted ?? [])
    byId.set(`${deleted.Key}\u0000${deleted.VersionId ?? ''}`, { status: 'deleted' });
  for (const failure of response.Errors ?? [])
    byId.set(`${failure.Key}\u0000${failure.VersionId ?? ''}`, classifyObjectError(failure.Code, failure.Message));
  // Some servers echo a Deleted entry without the VersionId we sent: fall back to the key alone.
  return chunk.map((target) => [
    target,
    byId.get(targetId(target)) ??
      byId.get(`${target.key}\u0000`) ?? { status: 'retry', error: 'missing from the DeleteObjects response' },
  ]);
}

function classifyObjectError(code: string | undefined, message: string | undefined): ChunkResult {
  const detail = `${code ?? 'UnknownError'}: ${message ?? 'no message'}`;
  // Retrying will not help: a lock or a missing permission stays. Which one is asked afterwards.
  if (code === 'AccessDenied') return { status: 'denied', error: detail };
  if (code === 'PreconditionFailed') return { status: 'changed' };
  if (code === 'NoSuchKey') return { status: 'missing' };
  return { status: 'retry', error: detail };
}
