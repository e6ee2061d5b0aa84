import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isPolicyRun } from '../../lib/core/control.ts';
import type { Store } from '../../lib/core/store.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { verifyAuditTrails } from '../../lib/reports/auditVerify.ts';
import { type FixtureOptions, type HandlerFixture, handlerFixture } from '../support/handlerFixture.ts';
import { type InventoryObject, runDistributedMap, writeInventory } from '../support/inventory.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { S3RVER_CREDENTIALS, startTestS3, type TestS3 } from '../support/s3.ts';

/**
 * The Distributed Map path, simulated: an S3 Inventory of a bucket of a few thousand objects on
 * s3rver, read back as ItemReader reads it and batched as ItemBatcher batches it, each shard run
 * by the real blobs handler (embedded PostgreSQL control store), four at a time, one shard twice.
 * Exactly once: every expired, unheld, in-scope object is deleted, with one `deleted` record.
 */
const DAY = 86_400_000;
const shared = usePostgresAndScratch('retention-inventory-');
let s3: TestS3;
let client: S3Client;
const fixtures: HandlerFixture[] = [];

beforeAll(async () => {
  s3 = await startTestS3();
  client = s3.client();
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
});
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});
afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((fixture) => fixture.runtime.close()));
});

const INVENTORY_PREFIX = 'inventory/source/daily/';
const keys = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}${index}.bin`);

async function deployment(policy: Record<string, unknown> = {}, options: Pick<FixtureOptions, 'wrapStore'> = {}) {
  const [bucket, destination] = await Promise.all([s3.createBucket(), s3.createBucket()]);
  const fixture = await handlerFixture(shared.server, shared.scratch, {
    policy: {
      name: 'docs',
      store: {
        kind: 's3',
        bucket,
        prefix: 'data/',
        exclude: ['**/*.keep'],
        region: 'us-east-1',
        endpoint: s3.endpoint,
        forcePathStyle: true,
        inventory: { bucket: destination, prefix: INVENTORY_PREFIX },
      },
      retention: '30d',
      budget: '10m',
      ...policy,
    },
    ...options,
  });
  fixtures.push(fixture);
  return { fixture, bucket, destination };
}

type Deployment = Awaited<ReturnType<typeof deployment>>;

/** Seeds `objects` into the deployment's bucket, then writes their inventory (CSV data `files`). */
async function inventoryOf(
  { bucket, destination }: Deployment,
  objects: InventoryObject[],
  files = 1,
): Promise<{ bucket: string; key: string }> {
  await s3.seedFiles(bucket, objects);
  return writeInventory(client, { source: bucket, destination, prefix: INVENTORY_PREFIX, objects, files });
}

/** The Distributed Map over `manifest`, each shard invoking the deployment's blobs function. */
function mapOver(
  { fixture }: Deployment,
  manifest: { bucket: string; key: string },
  shards: { batchSize: number; concurrency: number; retries?: number },
) {
  return runDistributedMap({
    client,
    manifest,
    policy: 'docs',
    ...shards,
    invoke: (payload) => fixture.handler(payload),
  });
}

async function listAll(bucket: string): Promise<Set<string>> {
  const found = new Set<string>();
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const object of page.Contents ?? []) found.add(object.Key!);
    token = page.NextContinuationToken;
  } while (token);
  return found;
}

describe('S3 Inventory shards through the blobs handler', () => {
  it('deletes every expired, unheld, in-scope object exactly once across shards, a retried shard included', async () => {
    const deployed = await deployment();
    const { fixture, bucket } = deployed;
    const old = new Date(Date.now() - 60 * DAY);
    const expired = [...keys('data/old/', 1500), 'data/old/with space.bin', 'data/old/a+b%.bin'];
    const groups = {
      expired,
      young: keys('data/young/', 300),
      rewritten: keys('data/rewritten/', 100),
      gone: keys('data/gone/', 100),
      held: keys('data/held/', 100),
      outside: keys('other/', 200),
      excluded: ['data/old/x.keep', 'data/old/y.keep'],
    };
    const youngKeys = new Set(groups.young);
    const objects: InventoryObject[] = Object.values(groups)
      .flat()
      .map((key) => ({ key, timestamp: youngKeys.has(key) ? new Date(Date.now() - DAY) : old }));
    const manifest = await inventoryOf(deployed, objects, 3);
    // After the inventory date: rewritten (young now), deleted by someone else, put under a hold.
    await Promise.all(groups.rewritten.map((key) => s3.setLastModified(bucket, key, new Date())));
    await Promise.all(groups.gone.map((key) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))));
    const { control } = await fixture.runtime.ready();
    await control.addHold({ policy: 'docs', key: 'data/held/', prefix: true, reason: 'litigation', createdBy: 'test' });

    const map = await mapOver(deployed, manifest, { batchSize: 250, concurrency: 4 });
    expect(map.shards.length).toBe(Math.ceil(objects.length / 250));
    expect(map.shards.filter((shard) => shard.error)).toEqual([]);
    // The Task retried after it succeeded (a lost response): the shard's rows are all done already.
    const retried = map.shards[2]!;
    const again = (await fixture.handler(retried.payload)) as RunReport;
    expect(again).toMatchObject({ status: 'completed', trigger: 'inventory', deleted: 0 });

    const left = await listAll(bucket);
    expect(groups.expired.filter((key) => left.has(key))).toEqual([]);
    for (const kept of [groups.young, groups.rewritten, groups.held, groups.outside, groups.excluded])
      expect(kept.filter((key) => !left.has(key))).toEqual([]);

    const records = await control.audit({ policy: 'docs', action: 'delete', limit: 100_000 });
    const deleted = records.filter((record) => record.status === 'deleted').map((record) => record.key);
    expect(deleted.length).toBe(groups.expired.length);
    expect(new Set(deleted)).toEqual(new Set(groups.expired));
    expect(records.filter((record) => record.status === 'pending')).toEqual([]);
    // Four shards appended to the policy's one hash chain at once: it still verifies (invariant 13).
    const verified = await verifyAuditTrails(control, [], { policies: ['docs'] });
    expect(verified.problems).toEqual([]);
    expect(verified.verified.records).toBeGreaterThanOrEqual(groups.expired.length);
    const reports = map.shards.map((shard) => shard.result as RunReport);
    const sum = (field: 'deleted' | 'held') => reports.reduce((total, report) => total + report[field], 0);
    expect(sum('deleted')).toBe(groups.expired.length);
    expect(sum('held')).toBe(groups.held.length);
    // Shards are the policy's turn (it has no listing schedule): health and missed slots count them.
    expect(new Set(reports.map((report) => report.trigger))).toEqual(new Set(['inventory']));
    const history = await control.listRuns({ policy: 'docs', limit: 100 });
    expect(history.filter(isPolicyRun).length).toBe(map.shards.length + 1);
  });

  it('refuses a hostile shard whole, before anything is touched', async () => {
    const { fixture, bucket, destination } = await deployment();
    const old = new Date(Date.now() - 60 * DAY);
    await s3.seedFiles(bucket, [{ key: 'data/a.bin', timestamp: old }]);
    const row = { Bucket: bucket, Key: 'data/a.bin', LastModifiedDate: old.toISOString(), Size: '1' };
    const manifest = { bucket: destination, key: `${INVENTORY_PREFIX}2026-12-07T01-00Z/manifest.json` };
    const shard = (change: Record<string, unknown>) => ({
      policy: 'docs',
      shard: { manifest, id: 'exec/shard-0', items: [row], ...change },
    });
    const cases: Array<[unknown, RegExp]> = [
      [shard({ items: [{ ...row, Bucket: 'someone-else' }] }), /payload\.shard\.items\[0\]\.Bucket/],
      [shard({ manifest: { bucket: destination, key: 'elsewhere/manifest.json' } }), /payload\.shard\.manifest/],
      [shard({ items: [{ ...row, LastModifiedDate: 'yesterday' }] }), /LastModifiedDate/],
      [{ ...shard({}), dryrun: false }, /dryrun/],
      [shard({ items: [] }), /payload\.shard\.items/],
      [shard({ items: Array.from({ length: 50 }, () => ({ ...row, Bucket: 'x' })) }), /and 30 more problems/],
    ];
    for (const [payload, message] of cases) {
      const thrown = await fixture.handler(payload).then(
        () => undefined,
        (error: Error) => error,
      );
      expect(thrown?.name).toBe('RetentionShardFailed');
      expect(thrown?.message).toMatch(message);
    }
    expect(await listAll(bucket)).toEqual(new Set(['data/a.bin']));
  });

  it('judges the safety limits per shard: a shard over maxDeleteFraction deletes nothing and fails the map', async () => {
    const deployed = await deployment({ limits: { maxDeleteFraction: 0.5 } });
    const { bucket } = deployed;
    const old = new Date(Date.now() - 60 * DAY);
    const objects = keys('data/old/', 40).map((key) => ({ key, timestamp: old }));
    const manifest = await inventoryOf(deployed, objects);
    const map = await mapOver(deployed, manifest, { batchSize: 20, concurrency: 2 });
    expect(map.shards.map((shard) => shard.error?.name)).toEqual(['RetentionShardFailed', 'RetentionShardFailed']);
    expect(map.shards[0]!.error!.message).toMatch(/aborted_limit/);
    expect((await listAll(bucket)).size).toBe(40);
  });

  it('resumes a shard that ran out of budget from its own checkpoint, each key deleted once', async () => {
    const deployed = await deployment(
      { budget: '1s', batchSize: 10 },
      { wrapStore: (store) => delayedDeletes(store, 1_200) },
    );
    const { fixture, bucket } = deployed;
    const old = new Date(Date.now() - 60 * DAY);
    const objects = keys('data/old/', 30).map((key) => ({ key, timestamp: old }));
    const manifest = await inventoryOf(deployed, objects);
    const map = await mapOver(deployed, manifest, { batchSize: 30, concurrency: 1 });
    const [shard] = map.shards;
    expect(shard!.error).toBeUndefined();
    expect(shard!.result).toMatchObject({ status: 'completed' });
    expect(shard!.retried.length).toBeGreaterThan(0);
    expect(new Set(shard!.retried.map((error) => error.name))).toEqual(new Set(['RetentionShardUnfinished']));
    // Each attempt went on where the last stopped: nothing deleted twice, nothing left.
    const resumed = fixture.lines.filter((line) => line.event === 'run_resumed');
    expect(resumed.length).toBe(shard!.retried.length);
    expect(new Set(resumed.map((line) => line.shard))).toEqual(new Set(['map-run/shard-0']));
    expect(await listAll(bucket)).toEqual(new Set());
    const { control } = await fixture.runtime.ready();
    const records = await control.audit({ policy: 'docs', action: 'delete', status: 'deleted', limit: 1000 });
    expect(records.map((record) => record.key).sort()).toEqual(objects.map((object) => object.key).sort());
  });

  it("stops every shard at the policy's pause, before its next batch", async () => {
    let pauseAfterFirstDelete: (() => Promise<void>) | undefined;
    const deployed = await deployment(
      { batchSize: 10 },
      {
        wrapStore: (store) =>
          withDelete(store, async (items, options) => {
            const outcomes = await store.delete(items, options);
            await pauseAfterFirstDelete?.();
            pauseAfterFirstDelete = undefined;
            return outcomes;
          }),
      },
    );
    const { fixture, bucket } = deployed;
    const { control } = await fixture.runtime.ready();
    pauseAfterFirstDelete = () => control.pause('docs', 'operator', 'incident');
    const old = new Date(Date.now() - 60 * DAY);
    const objects = keys('data/old/', 40).map((key) => ({ key, timestamp: old }));
    const manifest = await inventoryOf(deployed, objects);
    const map = await mapOver(deployed, manifest, { batchSize: 40, concurrency: 1 });
    expect(map.shards[0]!.error).toMatchObject({
      name: 'RetentionShardFailed',
      message: expect.stringMatching(/paused/),
    });
    expect((await listAll(bucket)).size).toBe(30);
  });
  it("waits while a listing run holds the policy's lease: the shard is retried, not run beside it", async () => {
    const deployed = await deployment();
    const { fixture, bucket } = deployed;
    const old = new Date(Date.now() - 60 * DAY);
    const objects = keys('data/old/', 5).map((key) => ({ key, timestamp: old }));
    const manifest = await inventoryOf(deployed, objects);
    const { control } = await fixture.runtime.ready();
    const listing = (await control.acquireLease('docs', 'cli:operator', 60_000))!;
    const run = (retries: number) => mapOver(deployed, manifest, { batchSize: 5, concurrency: 1, retries });
    const blocked = await run(0);
    expect(blocked.shards[0]!.error).toMatchObject({ name: 'RetentionShardUnfinished', message: /skipped_locked/ });
    expect((await listAll(bucket)).size).toBe(5);
    await control.releaseLease(listing);
    expect((await run(0)).shards[0]!.result).toMatchObject({ status: 'completed', deleted: 5 });
  });
});

function withDelete(store: Store, remove: Store['delete']): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'delete') return remove;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function delayedDeletes(store: Store, delayMs: number): Store {
  return withDelete(store, async (items, options) => {
    await sleep(delayMs);
    return store.delete(items, options);
  });
}
