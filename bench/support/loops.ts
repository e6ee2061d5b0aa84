import { DeleteObjectCommand, DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { del, list } from '@vercel/blob';
import { mapConcurrent } from '../../lib/core/async.ts';

/**
 * The two baselines every run of the bench measures beside this project, written as an operator
 * would with nothing but the SDK, no audit and no safety checks:
 * - `idealLoop`: list, fill delete batches of 1,000 expired keys across pages, 5 batches in
 *   flight while the listing goes on (one lister per shard prefix, the 5 slots shared);
 * - `perKeyLoop`: list, then one single-key delete per expired key, 10 in flight (what
 *   `aws s3 rm --recursive` does).
 */
export interface ListedObject {
  key: string;
  /** What the delete call takes: the key (S3) or the URL (Vercel Blob). */
  ref: string;
  at: Date;
}

export interface ObjectApi {
  list(prefix: string, cursor: string | undefined): Promise<{ objects: ListedObject[]; cursor?: string }>;
  deleteMany(refs: string[]): Promise<void>;
  deleteOne(ref: string): Promise<void>;
}

const BATCH = 1000;

export async function idealLoop(api: ObjectApi, shards: string[], cutoff: Date, inFlight = 5): Promise<number> {
  const slots = new Slots(inFlight);
  let deleted = 0;
  const flush = async (refs: string[]) => {
    deleted += refs.length;
    await slots.start(() => api.deleteMany(refs));
  };
  await Promise.all(
    shards.map(async (shard) => {
      const batch: string[] = [];
      await eachPage(api, shard, async (objects) => {
        for (const object of objects) {
          if (object.at >= cutoff) continue;
          batch.push(object.ref);
          if (batch.length === BATCH) await flush(batch.splice(0));
        }
      });
      if (batch.length > 0) await flush(batch.splice(0));
    }),
  );
  await slots.drain();
  return deleted;
}

export async function perKeyLoop(api: ObjectApi, shards: string[], cutoff: Date, inFlight = 10): Promise<number> {
  const refs: string[] = [];
  for (const shard of shards)
    await eachPage(api, shard, async (objects) => {
      for (const object of objects) if (object.at < cutoff) refs.push(object.ref);
    });
  await mapConcurrent(refs, inFlight, (ref) => api.deleteOne(ref));
  return refs.length;
}

async function eachPage(api: ObjectApi, prefix: string, onPage: (objects: ListedObject[]) => Promise<void>) {
  let cursor: string | undefined;
  do {
    const page = await api.list(prefix, cursor);
    await onPage(page.objects);
    cursor = page.cursor;
  } while (cursor);
}

/** At most `size` tasks running; `start` waits for a free slot, not for the task. */
class Slots {
  private running = new Set<Promise<void>>();
  private failure: unknown;
  constructor(private readonly size: number) {}

  async start(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.size) await Promise.race(this.running);
    if (this.failure) throw this.failure;
    const running: Promise<void> = task()
      .catch((error: unknown) => void (this.failure ??= error))
      .finally(() => this.running.delete(running));
    this.running.add(running);
  }

  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure) throw this.failure;
  }
}

export function s3Api(client: S3Client, bucket: string): ObjectApi {
  return {
    async list(prefix, cursor) {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: cursor }),
      );
      return {
        objects: (page.Contents ?? []).map((object) => ({
          key: object.Key!,
          ref: object.Key!,
          at: object.LastModified!,
        })),
        ...(page.NextContinuationToken ? { cursor: page.NextContinuationToken } : {}),
      };
    },
    async deleteMany(keys) {
      const result = await client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
      );
      if (result.Errors?.length)
        throw new Error(`DeleteObjects: ${result.Errors.length} errors, first ${result.Errors[0]!.Code}`);
    },
    async deleteOne(key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}

/** The real @vercel/blob SDK; it reads VERCEL_BLOB_API_URL and BLOB_READ_WRITE_TOKEN at each call. */
export const vercelBlobApi: ObjectApi = {
  async list(prefix, cursor) {
    const page = await list({ prefix, limit: 1000, ...(cursor ? { cursor } : {}) });
    return {
      objects: page.blobs.map((blob) => ({ key: blob.pathname, ref: blob.url, at: blob.uploadedAt })),
      ...(page.hasMore && page.cursor ? { cursor: page.cursor } : {}),
    };
  },
  deleteMany: (urls) => del(urls),
  deleteOne: (url) => del(url),
};
