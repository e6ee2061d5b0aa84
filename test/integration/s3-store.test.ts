import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../lib/core/store.ts';
import { ConfigError, StoreError } from '../../lib/errors.ts';
import { compareUtf8 } from '../../lib/stores/common.ts';
import { copySource } from '../../lib/stores/s3/backup.ts';
import { MAX_OBJECTS_PER_DELETE } from '../../lib/stores/s3/objects.ts';
import { S3StoreSchema } from '../../lib/stores/s3/schema.ts';
import { createS3Store, type S3StoreConfig, s3ClientFor } from '../../lib/stores/s3/store.ts';
import { escapeXml, type FaultProxy, parseDeleteObjects, startFaultProxy } from '../support/faultProxy.ts';
import { S3RVER_CREDENTIALS, startTestS3, type TestS3 } from '../support/s3.ts';
import {
  CONTRACT_NOW,
  contractCutoffs,
  daysAgo,
  eligibleItems,
  type StoreFixture,
  scanAll,
  storeContract,
} from './store-contract.ts';

let s3: TestS3;
let client: S3Client;
let proxy: FaultProxy;

beforeAll(async () => {
  s3 = await startTestS3();
  client = s3.client();
  proxy = await startFaultProxy(s3.endpoint);
});

afterAll(async () => {
  client?.destroy();
  await proxy?.stop();
  await s3?.stop();
});

function configFor(bucket: string, options: Partial<S3StoreConfig> = {}): S3StoreConfig {
  return S3StoreSchema.parse({
    kind: 's3',
    bucket,
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    ...options,
  });
}

/** A store whose own client (adaptive retries, maxAttempts) talks to s3rver through the fault proxy. */
function proxiedStore(config: S3StoreConfig): Store {
  return createS3Store(config, {
    client: s3ClientFor(config, { endpoint: proxy.endpoint, credentials: S3RVER_CREDENTIALS }),
    sleep: async () => undefined,
  });
}

async function exists(bucket: string, key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

async function read(bucket: string, key: string): Promise<string> {
  return await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
}

// CopyObject gives copies a fresh LastModified, so the contract's "restores with the original
// timestamp" cannot hold on S3: backup and restore are tested below instead.
storeContract(
  's3 (s3rver)',
  async (): Promise<StoreFixture> => {
    const bucket = await s3.createBucket();
    return {
      createStore: () => createS3Store(configFor(bucket), { client }),
      seed: (items) => s3.seed(bucket, items),
      exists: (key) => exists(bucket, key),
      async touch(key, timestamp) {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'rewritten' }));
        await s3.setLastModified(bucket, key, timestamp);
      },
      teardown: async () => undefined,
    };
  },
  { backup: 'fresh-timestamps' },
);

describe('s3 store', () => {
  let bucket: string;

  beforeEach(async () => {
    bucket = await s3.createBucket();
    proxy.reset();
  });

  it('validates the policy store of the issue with its defaults', () => {
    expect(
      S3StoreSchema.parse({
        kind: 's3',
        bucket: 'docs',
        prefix: 'pdfs/',
        region: 'us-east-1',
        endpoint: 'http://127.0.0.1:4569',
        forcePathStyle: true,
      }),
    ).toEqual({
      kind: 's3',
      bucket: 'docs',
      prefix: 'pdfs/',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:4569',
      forcePathStyle: true,
      deleteConcurrency: 4,
      versions: 'current',
      maxAttempts: 5,
      conditionalDelete: false,
    });
    const overlapping = S3StoreSchema.safeParse({
      kind: 's3',
      bucket: 'docs',
      region: 'us-east-1',
      prefix: 'a/',
      prefixes: ['a/1', 'a/10', 'b/'],
    });
    expect(overlapping.error?.issues.map((issue) => [issue.path.join('.'), issue.message])).toEqual([
      ['prefixes.1', '"a/10" overlaps prefixes[0]'],
      ['prefixes.2', '"b/" does not start with prefix "a/"'],
    ]);
  });

  it('refuses a missing bucket with a ConfigError on store.bucket', async () => {
    const error = await createS3Store(configFor('no-such-bucket'), { client })
      .open()
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]).toMatchObject({
      path: 'store.bucket',
      message: 'bucket no-such-bucket does not exist',
    });
  });

  it('pages a listing of more than 3 pages and deletes 2,001 keys in DeleteObjects of at most 1000, without HEAD', async () => {
    // At the bucket root: s3rver removes emptied directories racily under concurrent deletes (500s).
    const keys = Array.from({ length: 2001 }, (_, index) => `pdfs-${String(index).padStart(5, '0')}.pdf`);
    await s3.seedFiles(
      bucket,
      keys.map((key) => ({ key, timestamp: daysAgo(40) })),
    );
    const store = proxiedStore(configFor(bucket, { prefix: 'pdfs-' }));

    const { items, pages } = await scanAll(store, 500);
    expect(pages).toBe(5);
    expect(items.map((item) => item.key)).toEqual(keys);
    expect(proxy.requests.filter((request) => request.url.includes('continuation-token=')).length).toBe(4);

    proxy.reset();
    const outcomes = await store.delete([...(await eligibleItems(store)).values()]);
    expect(outcomes.filter((outcome) => outcome.status !== 'deleted')).toEqual([]);
    expect(outcomes).toHaveLength(2001);
    const deletes = proxy.requests.filter((request) => request.deleteKeys);
    expect(deletes.map((request) => request.deleteKeys!.length).sort((a, b) => b - a)).toEqual([1000, 1000, 1]);
    expect(Math.max(...deletes.map((request) => request.deleteKeys!.length))).toBeLessThanOrEqual(
      MAX_OBJECTS_PER_DELETE,
    );
    expect(proxy.requests.filter((request) => request.method === 'HEAD')).toEqual([]);
    expect(await exists(bucket, keys[0]!)).toBe(false);
  });

  it('absorbs a SlowDown burst with the SDK adaptive retries, and gives up after maxAttempts', async () => {
    await s3.seed(bucket, [
      { key: 'a.pdf', timestamp: daysAgo(40) },
      { key: 'b.pdf', timestamp: daysAgo(40) },
    ]);
    const store = proxiedStore(configFor(bucket, { maxAttempts: 3 }));

    const items = [...(await eligibleItems(store)).values()];
    proxy.slowDown(2);
    expect((await store.delete(items)).map((outcome) => outcome.status)).toEqual(['deleted', 'deleted']);
    expect(proxy.requests.filter((request) => request.status === 503)).toHaveLength(2);

    // A fresh client: the adaptive rate limiter of the first one is still slowed down.
    proxy.slowDown(2);
    await expect(
      proxiedStore(configFor(bucket, { maxAttempts: 2 })).scan({ cutoffs: contractCutoffs, limit: 10 }),
    ).rejects.toBeInstanceOf(StoreError);
    expect(proxy.requests.filter((request) => request.status === 503)).toHaveLength(4);
  });

  it('retries per-key Errors[] of a 200 DeleteObjects response a bounded number of times, then reports failed', async () => {
    await s3.seed(
      bucket,
      ['flaky.pdf', 'broken.pdf', 'fine.pdf'].map((key) => ({ key, timestamp: daysAgo(40) })),
    );
    const store = proxiedStore(configFor(bucket));
    const items = [...(await eligibleItems(store)).values()];
    proxy.failKeys(['flaky.pdf'], { code: 'InternalError', times: 1 });
    proxy.failKeys(['broken.pdf'], { code: 'InternalError', message: 'We encountered an internal error.' });

    const status = Object.fromEntries(
      (await store.delete(items)).map((outcome) => [outcome.key, [outcome.status, outcome.error]]),
    );

    expect(status).toEqual({
      'flaky.pdf': ['deleted', undefined],
      'fine.pdf': ['deleted', undefined],
      'broken.pdf': ['failed', 'InternalError: We encountered an internal error. (after 3 attempts)'],
    });
    expect(
      proxy.requests.filter((request) => request.deleteKeys?.some((object) => object.key === 'broken.pdf')),
    ).toHaveLength(3);
    expect(await exists(bucket, 'broken.pdf')).toBe(true);
  });

  it('lists disjoint shard prefixes concurrently: every key once, resumable from the cursor', async () => {
    const keys = ['logs/a/1', 'logs/a/2', 'logs/a/3', 'logs/b/1', 'logs/b/2', 'logs/c/1', 'other/x'];
    await s3.seed(
      bucket,
      keys.map((key) => ({ key, timestamp: daysAgo(40) })),
    );
    const store = createS3Store(configFor(bucket, { prefix: 'logs/', prefixes: ['logs/a/', 'logs/b/', 'logs/c/'] }), {
      client,
    });

    const first = await store.scan({ cutoffs: contractCutoffs, limit: 3 });
    expect(first.items.map((item) => item.key)).toEqual(['logs/a/1', 'logs/b/1', 'logs/c/1']);
    const rest = await scanAll(
      createS3Store(configFor(bucket, { prefix: 'logs/', prefixes: ['logs/a/', 'logs/b/', 'logs/c/'] }), { client }),
      2,
      first.cursor,
    );
    expect([...first.items, ...rest.items].map((item) => item.key).sort(compareUtf8)).toEqual(
      keys.filter((key) => key.startsWith('logs/')),
    );
    expect(await store.census({ cutoffs: contractCutoffs, holds: [] })).toMatchObject({
      total: 6,
      eligible: 6,
      exact: true,
    });
  });

  it('scopes with include/exclude and refuses to delete a key outside the store', async () => {
    await s3.seed(
      bucket,
      ['docs/a.pdf', 'docs/b.txt', 'docs/tmp/c.pdf', 'elsewhere/d.pdf'].map((key) => ({ key, timestamp: daysAgo(40) })),
    );
    const store = createS3Store(
      configFor(bucket, { prefix: 'docs/', include: ['**/*.pdf'], exclude: ['docs/tmp/**'] }),
      { client },
    );

    expect((await scanAll(store)).items.map((item) => item.key)).toEqual(['docs/a.pdf']);
    const forged = { key: 'elsewhere/d.pdf', timestamp: daysAgo(40), cutoff: CONTRACT_NOW, rule: 'retention: 30d' };
    expect(await store.delete([forged, { ...forged, key: 'docs/b.txt' }])).toEqual([
      {
        key: 'elsewhere/d.pdf',
        status: 'failed',
        error: `refused: key is outside s3://${bucket}/docs/ (prefixes/include/exclude)`,
      },
      {
        key: 'docs/b.txt',
        status: 'failed',
        error: `refused: key is outside s3://${bucket}/docs/ (prefixes/include/exclude)`,
      },
    ]);
    expect(await exists(bucket, 'elsewhere/d.pdf')).toBe(true);
  });

  it('backs up to another bucket, restores (never overwriting), and prunes old run backups', async () => {
    const backupBucket = await s3.createBucket();
    // Not `+ # ?`: s3rver decodes x-amz-copy-source with decodeURI, which leaves %2B %23 %3F encoded
    // (real S3 decodes them; the per-segment encoding is checked below).
    const keys = ['docs/a b.pdf', 'docs/ü 100%2F.pdf', 'c.pdf'];
    await s3.seed(
      bucket,
      keys.map((key, index) => ({ key, timestamp: daysAgo(90), body: `body-${index}` })),
    );
    const store = createS3Store(configFor(bucket), { client });
    const items = [...(await eligibleItems(store)).values()];
    const ref = { to: `s3://${backupBucket}/retention`, policy: 'pdfs', runId: 'run-1' };

    expect(await store.backups!.backup(items, ref)).toEqual(
      keys.map((key) => ({ key, ok: true })).sort((a, b) => compareUtf8(a.key, b.key)),
    );
    expect(await read(backupBucket, 'retention/pdfs/run-1/docs/ü 100%2F.pdf')).toBe('body-1');
    await store.delete(items);

    const restored = await store.backups!.restore(ref, [...keys, 'never-backed-up']);
    expect(restored.map(({ key, status }) => [key, status])).toEqual([
      ...keys.map((key) => [key, 'restored']),
      ['never-backed-up', 'no_backup'],
    ]);
    expect(await read(bucket, 'docs/ü 100%2F.pdf')).toBe('body-1');
    expect(copySource('b', 'a+b/ü c?#%2F.pdf')).toBe('b/a%2Bb/%C3%BC%20c%3F%23%252F.pdf');

    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'c.pdf', Body: 'newer' }));
    expect(await store.backups!.restore(ref, ['c.pdf'])).toEqual([{ key: 'c.pdf', status: 'exists' }]);
    expect(await read(bucket, 'c.pdf')).toBe('newer');

    await store.backups!.backup(items.slice(0, 1), { ...ref, runId: 'run-old' });
    await s3.setLastModified(backupBucket, 'retention/pdfs/run-old/c.pdf', daysAgo(10));
    await s3.setLastModified(backupBucket, 'retention/pdfs/run-1/c.pdf', daysAgo(10));
    expect(await store.backups!.prune(ref.to, 'pdfs', new Date(Date.now() - 86_400_000))).toBe(1);
    expect(await exists(backupBucket, 'retention/pdfs/run-old/c.pdf')).toBe(false);
    expect(await exists(backupBucket, 'retention/pdfs/run-1/c.pdf')).toBe(true);

    await expect(store.backups!.backup(items, { ...ref, to: `s3://${bucket}/backups/` })).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it('with versions "all", deletes noncurrent versions and delete markers first, then the current version', async () => {
    await s3.seed(bucket, [{ key: 'v/old.pdf', timestamp: daysAgo(40) }]);
    const versions = [
      { key: 'v/old.pdf', id: 'v3', latest: true, marker: false, at: daysAgo(40) },
      { key: 'v/old.pdf', id: 'm2', latest: false, marker: true, at: daysAgo(50) },
      { key: 'v/old.pdf', id: 'v1', latest: false, marker: false, at: daysAgo(60) },
      { key: 'v/other.pdf', id: 'o1', latest: true, marker: false, at: daysAgo(1) },
    ];
    proxy.route(({ method, url, body }) => {
      // s3rver has no versions: answer DeleteObjects as a versioned bucket does, echoing VersionIds.
      if (method === 'POST' && url.searchParams.has('delete')) {
        const deleted = parseDeleteObjects(body).map(
          (object) =>
            `<Deleted><Key>${escapeXml(object.key)}</Key><VersionId>${object.versionId}</VersionId></Deleted>`,
        );
        return {
          status: 200,
          headers: { 'content-type': 'application/xml' },
          body: `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${deleted.join('')}</DeleteResult>`,
        };
      }
      if (method !== 'GET' || !url.searchParams.has('versions')) return undefined;
      const prefix = url.searchParams.get('prefix') ?? '';
      const marker = url.searchParams.get('key-marker') ?? '';
      const listed = versions.filter(
        (version) => version.key.startsWith(prefix) && compareUtf8(version.key, marker) > 0,
      );
      const entries = listed.map((version) =>
        version.marker
          ? `<DeleteMarker><Key>${escapeXml(version.key)}</Key><VersionId>${version.id}</VersionId><IsLatest>${version.latest}</IsLatest><LastModified>${version.at.toISOString()}</LastModified></DeleteMarker>`
          : `<Version><Key>${escapeXml(version.key)}</Key><VersionId>${version.id}</VersionId><IsLatest>${version.latest}</IsLatest><LastModified>${version.at.toISOString()}</LastModified><ETag>"e"</ETag><Size>4</Size></Version>`,
      );
      return {
        status: 200,
        headers: { 'content-type': 'application/xml' },
        body: `<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket}</Name><Prefix>${escapeXml(prefix)}</Prefix><IsTruncated>false</IsTruncated>${entries.join('')}</ListVersionsResult>`,
      };
    });
    const store = proxiedStore(configFor(bucket, { versions: 'all' }));

    const outcomes = await store.delete([...(await eligibleItems(store)).values()]);

    expect(outcomes).toEqual([{ key: 'v/old.pdf', status: 'deleted', bytes: 8 }]);
    const byVersion = (a: { versionId?: string }, b: { versionId?: string }) =>
      (a.versionId ?? '').localeCompare(b.versionId ?? '');
    expect(
      proxy.requests.filter((request) => request.deleteKeys).map((request) => request.deleteKeys!.sort(byVersion)),
    ).toEqual([
      [
        { key: 'v/old.pdf', versionId: 'm2' },
        { key: 'v/old.pdf', versionId: 'v1' },
      ],
      [{ key: 'v/old.pdf', versionId: 'v3' }],
    ]);
  });
});
