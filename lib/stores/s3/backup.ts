import { CopyObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { mapConcurrent } from '../../core/async.ts';
import type { RequestDeadline } from '../../core/deadline.ts';
import type { BackupOutcome, BackupRef, RestoreOutcome, StoreBackups } from '../../core/store.ts';
import type { EligibleItem } from '../../core/types.ts';
import { ConfigError, describeCause, StoreError } from '../../errors.ts';
import { backupSegment } from '../common.ts';
import type { DeleteTarget, TargetResult } from './objects.ts';
import { s3BackupLocation } from './schema.ts';

/**
 * Backups of an S3 store: CopyObject (server-side, no bytes through us) to
 * `s3://<bucket>/<prefix><policy>/<runId>/<key>`, restore by copying back, pruning by run folder.
 *
 * Copies get a fresh LastModified (S3 cannot set it), so a restored object counts its retention
 * from the restore; the original timestamp stays in the audit trail. CopyObject handles objects up
 * to 5 GB; a larger one fails its backup and is therefore not deleted.
 */

/** Single-object requests: overlap more of them than DeleteObjects batches. */
const COPY_CONCURRENCY = 16;

export interface S3BackupContext {
  client: S3Client;
  deadline: RequestDeadline;
  config: { bucket: string; prefix: string };
  location: string;
  shards: string[];
  deleteObjects(bucket: string, targets: DeleteTarget[]): Promise<Map<string, TargetResult>>;
}

interface BackupLocation {
  bucket: string;
  /** Ends with `/` unless empty. */
  prefix: string;
}

export function createS3Backups(context: S3BackupContext): StoreBackups {
  const { client, deadline, config, location } = context;

  function locate(to: string, policy: string): BackupLocation {
    const backup = s3BackupLocation(
      to,
      { bucket: config.bucket, prefix: config.prefix, shards: context.shards },
      policy,
    );
    if ('message' in backup)
      throw ConfigError.single('backup.to', backup.message, backup.fix, { store: location, policy });
    return backup;
  }

  function runPrefix(ref: BackupRef): { backup: BackupLocation; prefix: string } {
    for (const [field, value] of [
      ['policy', ref.policy],
      ['runId', ref.runId],
    ] as const) {
      const problem = backupSegment(value, field);
      if (problem) throw new StoreError(problem, { store: location, policy: ref.policy, runId: ref.runId });
    }
    const backup = locate(ref.to, ref.policy);
    return { backup, prefix: `${backup.prefix}${ref.policy}/${ref.runId}/` };
  }

  async function copy(from: { bucket: string; key: string }, to: { bucket: string; key: string }): Promise<void> {
    await client.send(
      new CopyObjectCommand({ Bucket: to.bucket, Key: to.key, CopySource: copySource(from.bucket, from.key) }),
      deadline.sendOptions,
    );
  }

  return {
    async backup(items: EligibleItem[], ref: BackupRef): Promise<BackupOutcome[]> {
      const { backup, prefix } = runPrefix(ref);
      return mapConcurrent(items, COPY_CONCURRENCY, async (item) => {
        try {
          await copy({ bucket: config.bucket, key: item.key }, { bucket: backup.bucket, key: `${prefix}${item.key}` });
          return { key: item.key, ok: true };
        } catch (error) {
          deadline.throwIfPassed('backing up', error);
          return {
            key: item.key,
            ok: false,
            error: `CopyObject to s3://${backup.bucket}/${prefix}${item.key}: ${describeCause(error)}`,
          };
        }
      });
    },

    async restore(ref: BackupRef, keys: string[]): Promise<RestoreOutcome[]> {
      const { backup, prefix } = runPrefix(ref);
      return mapConcurrent(keys, COPY_CONCURRENCY, async (key): Promise<RestoreOutcome> => {
        if (!context.shards.some((shard) => key.startsWith(shard)))
          return { key, status: 'failed', error: `refused: key is outside ${location}` };
        try {
          // Never overwrite: a newer object at the key wins over its backup. (A write racing between
          // this HEAD and the copy can still be overwritten; CopyObject has no If-None-Match.)
          if (await exists(client, config.bucket, key, deadline)) return { key, status: 'exists' };
          await copy({ bucket: backup.bucket, key: `${prefix}${key}` }, { bucket: config.bucket, key });
          return { key, status: 'restored' };
        } catch (error) {
          if (errorName(error) === 'NoSuchKey' || httpStatus(error) === 404) return { key, status: 'no_backup' };
          return { key, status: 'failed', error: describeCause(error) };
        }
      });
    },

    async prune(to: string, policy: string, olderThan: Date): Promise<number> {
      const problem = backupSegment(policy, 'policy');
      if (problem) throw new StoreError(problem, { store: location, policy });
      const backup = locate(to, policy);
      const failWith = (what: string, error: unknown): never => {
        throw new StoreError(
          `cannot prune backups in s3://${backup.bucket}/${backup.prefix}${policy}/: ${what}`,
          { store: location, policy },
          { cause: error },
        );
      };
      let pruned = 0;
      try {
        for (const runFolder of await listRunFolders(client, backup.bucket, `${backup.prefix}${policy}/`, deadline)) {
          const objects = await listAll(client, backup.bucket, runFolder, deadline);
          // A run's folder is as old as its newest copy: prune only when every copy is older.
          if (objects.length === 0 || objects.some((object) => object.lastModified.getTime() >= olderThan.getTime()))
            continue;
          const results = await context.deleteObjects(
            backup.bucket,
            objects.map((object) => ({ key: object.key })),
          );
          const failure = [...results.values()].find((result) => result.status === 'failed');
          if (failure) failWith(`${runFolder}: ${failure.status === 'failed' ? failure.error : ''}`, undefined);
          // Copies under Object Lock stay until their lock ends; the folder is pruned by a later run.
          if (![...results.values()].some((result) => result.status === 'held')) pruned += 1;
        }
      } catch (error) {
        deadline.throwIfPassed('pruning backups', error);
        if (error instanceof StoreError) throw error;
        failWith(describeCause(error), error);
      }
      return pruned;
    },
  };
}

/** CopySource is `bucket/key` URL-encoded per path segment: an encoded `/` (%2F) is a different key. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

async function exists(client: S3Client, bucket: string, key: string, deadline: RequestDeadline): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), deadline.sendOptions);
    return true;
  } catch (error) {
    if (httpStatus(error) === 404) return false;
    throw error;
  }
}

async function listRunFolders(
  client: S3Client,
  bucket: string,
  prefix: string,
  deadline: RequestDeadline,
): Promise<string[]> {
  const folders: string[] = [];
  let token: string | undefined;
  do {
    const response = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
      deadline.sendOptions,
    );
    for (const common of response.CommonPrefixes ?? []) if (common.Prefix) folders.push(common.Prefix);
    token = response.IsTruncated ? response.NextContinuationToken : undefined;
  } while (token);
  return folders;
}

async function listAll(
  client: S3Client,
  bucket: string,
  prefix: string,
  deadline: RequestDeadline,
): Promise<Array<{ key: string; lastModified: Date }>> {
  const objects: Array<{ key: string; lastModified: Date }> = [];
  let token: string | undefined;
  do {
    const response = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      deadline.sendOptions,
    );
    for (const object of response.Contents ?? [])
      if (object.Key) objects.push({ key: object.Key, lastModified: object.LastModified! });
    token = response.IsTruncated ? response.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}
