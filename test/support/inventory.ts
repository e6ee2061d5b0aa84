import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mapConcurrent } from '../../lib/core/async.ts';
import { InventoryManifest, type InventoryRow, inventoryRows } from '../../lib/stores/s3/inventory.ts';

/**
 * S3 Inventory and Step Functions' Distributed Map, locally. `writeInventory` publishes a CSV
 * inventory as S3 does (gzip CSV data files, every field quoted, keys URL-encoded form style, and
 * a manifest.json naming them with the fileSchema); `runDistributedMap` reads it back as ItemReader
 * does (`InputType: MANIFEST`: the manifest, then each data file's rows named by the fileSchema),
 * batches rows as ItemBatcher does, and invokes the function once per batch with bounded
 * concurrency, retrying `RetentionShardUnfinished` as the planned Task's Retry does.
 */
export const FILE_SCHEMA = 'Bucket, Key, Size, LastModifiedDate, ETag, StorageClass';

export interface InventoryObject {
  key: string;
  timestamp: Date;
  size?: number;
}

/** Form-style URL encoding, as a CSV inventory writes keys (`a b+c` → `a+b%2Bc`). */
export function encodeInventoryKey(key: string): string {
  return encodeURIComponent(key).replaceAll('%20', '+');
}

const quoted = (value: string) => `"${value.replaceAll('"', '""')}"`;

export async function writeInventory(
  client: S3Client,
  input: { source: string; destination: string; prefix: string; objects: InventoryObject[]; files: number },
): Promise<{ bucket: string; key: string }> {
  const date = '2026-12-07T01-00Z';
  const perFile = Math.ceil(input.objects.length / input.files);
  const files = await mapConcurrent(
    Array.from({ length: input.files }, (_, index) => index),
    4,
    async (index) => {
      const rows = input.objects.slice(index * perFile, (index + 1) * perFile).map((object) => {
        const size = String(object.size ?? 1);
        const etag = createHash('md5').update(object.key).digest('hex');
        return [input.source, encodeInventoryKey(object.key), size, object.timestamp.toISOString(), etag, 'STANDARD']
          .map(quoted)
          .join(',');
      });
      const body = gzipSync(`${rows.join('\n')}\n`);
      const key = `${input.prefix}data/${index.toString().padStart(4, '0')}.csv.gz`;
      await client.send(new PutObjectCommand({ Bucket: input.destination, Key: key, Body: body }));
      return { key, size: body.length, MD5checksum: createHash('md5').update(body).digest('hex') };
    },
  );
  const manifest = {
    sourceBucket: input.source,
    destinationBucket: `arn:aws:s3:::${input.destination}`,
    version: '2016-11-30',
    creationTimestamp: String(Date.now()),
    fileFormat: 'CSV',
    fileSchema: FILE_SCHEMA,
    files,
  };
  const key = `${input.prefix}${date}/manifest.json`;
  await client.send(new PutObjectCommand({ Bucket: input.destination, Key: key, Body: JSON.stringify(manifest) }));
  return { bucket: input.destination, key };
}

async function readObject(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

/** Every row of the inventory, in manifest order, as ItemReader yields them. */
export async function readInventory(client: S3Client, manifest: { bucket: string; key: string }) {
  const parsed = InventoryManifest.parse(
    JSON.parse((await readObject(client, manifest.bucket, manifest.key)).toString()),
  );
  const rows: InventoryRow[] = [];
  for (const file of parsed.files) {
    const csv = gunzipSync(await readObject(client, manifest.bucket, file.key)).toString('utf8');
    rows.push(...inventoryRows(csv, parsed.fileSchema));
  }
  return rows;
}

export interface MapRun {
  /** One entry per shard: its result, the errors of the attempts before, and the error it ended with. */
  shards: Array<{ id: string; payload: unknown; result?: unknown; retried: Error[]; error?: Error }>;
}

export async function runDistributedMap(input: {
  client: S3Client;
  manifest: { bucket: string; key: string };
  policy: string;
  batchSize: number;
  concurrency: number;
  invoke: (payload: unknown) => Promise<unknown>;
  /** Retries of `RetentionShardUnfinished` per shard (the Task's Retry MaxAttempts). */
  retries?: number;
}): Promise<MapRun> {
  const rows = await readInventory(input.client, input.manifest);
  const batches: InventoryRow[][] = [];
  for (let start = 0; start < rows.length; start += input.batchSize)
    batches.push(rows.slice(start, start + input.batchSize));
  const shards = await mapConcurrent(batches, input.concurrency, async (items, index) => {
    const id = `map-run/shard-${index}`;
    const payload = { policy: input.policy, shard: { manifest: input.manifest, id, items } };
    const shard: MapRun['shards'][number] = { id, payload, retried: [] };
    for (let attempt = 0; ; attempt += 1) {
      try {
        shard.result = await input.invoke(payload);
        return shard;
      } catch (error) {
        if ((error as Error).name !== 'RetentionShardUnfinished' || attempt === (input.retries ?? 3)) {
          shard.error = error as Error;
          return shard;
        }
        shard.retried.push(error as Error);
      }
    }
  });
  return { shards };
}
