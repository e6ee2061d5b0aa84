import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../lib/core/store.ts';
import { type RunReport, systemClock } from '../../lib/core/types.ts';
import { runPolicy } from '../../lib/engine/run.ts';
import { Logger } from '../../lib/observe/log.ts';
import { FakeControl } from '../support/fakeControl.ts';
import { policyWith } from '../support/fakeRuns.ts';
import { useProxiedS3 } from '../support/s3.ts';
import { contractCutoffs, daysAgo, eligibleItems } from './store-contract.ts';

/**
 * Runs over s3rver at the request level (counted by the fault proxy): the census counted from the
 * listing the run deletes from (one listing of the prefix, not three), DeleteObjects filled to
 * 1000 keys whatever `batchSize`, and, with `conditionalDelete`, the re-listed ETag on every delete
 * while an object rewritten since the listing is still `kept`.
 */
const env = useProxiedS3();

async function run(store: Store, policy = policyWith({ batchSize: 500 })): Promise<RunReport> {
  const log = new Logger({ sink: { write: () => undefined }, level: 'error', clock: systemClock });
  const control = new FakeControl(systemClock);
  const options = { trigger: 'manual' as const, dryRun: false, force: false, list: false };
  return await runPolicy(policy, options, { control, store, clock: systemClock, log, actor: 'test:env.s3' });
}

/** ListObjectsV2 requests but the env.bucket check of open() (MaxKeys 1). */
const listings = () =>
  env.proxy.requests.filter(
    (request) => request.url.includes('list-type=2') && !/[?&]max-keys=1(&|$)/.test(request.url),
  );
const deletes = () => env.proxy.requests.filter((request) => request.deleteKeys);

/** 1,200 expired objects and 10 young ones, at the env.bucket root (s3rver races on emptied directories). */
async function seedExpired(): Promise<void> {
  await env.s3.seedFiles(env.bucket, [
    ...Array.from({ length: 1_200 }, (_, i) => ({ key: `old-${String(i).padStart(5, '0')}`, timestamp: daysAgo(40) })),
    ...Array.from({ length: 10 }, (_, i) => ({ key: `young-${i}`, timestamp: new Date(Date.now() - 3_600_000) })),
  ]);
}

describe('S3 runs at the request level', () => {
  it('counts the census from the listing it deletes from: the same census as a separate one', async () => {
    await seedExpired();
    const census = await env.store().census({ cutoffs: contractCutoffs, holds: [] });
    expect(census).toMatchObject({ total: 1_210, exact: true });
    // A fraction guard the census trips reports what the census counted.
    const report = await run(env.store(), policyWith({ batchSize: 500, limits: { maxDeleteFraction: 0.5 } }));
    expect(report).toMatchObject({ status: 'aborted_limit', limits: { planned: 1_200, total: census.total } });
  });

  it.each([false, true])(
    'conditionalDelete %s: 1,200 deleted with 4 listings (2 for the census, 2 re-lists) and DeleteObjects of 1000',
    async (conditionalDelete) => {
      await seedExpired();
      env.proxy.reset();
      const report = await run(env.store({ conditionalDelete }));
      expect(report).toMatchObject({ status: 'completed', deleted: 1_200, backlog: 0, bytesFreed: 1_200 });
      expect(listings()).toHaveLength(4);
      expect(
        deletes()
          .map((request) => request.deleteKeys!.length)
          .sort((a, b) => b - a),
      ).toEqual([1000, 200]);
      const sent = deletes().flatMap((request) => request.deleteKeys!);
      expect(sent.every((object) => (object.etag !== undefined) === conditionalDelete)).toBe(true);
    },
  );

  it('with prefix shards, consecutive batches come from different prefixes (one 3,500/s limit each)', async () => {
    await env.s3.seedFiles(
      env.bucket,
      ['p0-', 'p1-'].flatMap((shard) =>
        Array.from({ length: 1_100 }, (_, i) => ({
          key: `${shard}${String(i).padStart(5, '0')}`,
          timestamp: daysAgo(40),
        })),
      ),
    );
    const report = await run(env.store({ prefixes: ['p0-', 'p1-'] }));
    expect(report).toMatchObject({ status: 'completed', deleted: 2_200 });
    const shardsOf = (keys: Array<{ key: string }>) => [...new Set(keys.map((object) => object.key.slice(0, 3)))];
    // The kept listing in turns of 1000 per shard: p0's first 1000, p1's, then the rest of both
    // (in key order the second batch would be p0's last 100 and p1's first 900).
    const full = deletes().filter((request) => request.deleteKeys!.length === 1000);
    expect([...new Set(full.map((request) => shardsOf(request.deleteKeys!).join('+')))].sort()).toEqual(['p0-', 'p1-']);
  });

  it('conditionalDelete: a same-bytes rewrite (same ETag, new LastModified) is kept by the re-list; a change after it by S3', async () => {
    await env.s3.seed(
      env.bucket,
      ['a', 'b', 'c'].map((key) => ({ key, timestamp: daysAgo(40), body: `old ${key}` })),
    );
    const store = env.store({ conditionalDelete: true });
    await store.open();
    const eligible = await eligibleItems(store);
    const before = await env.client.send(new HeadObjectCommand({ Bucket: env.bucket, Key: 'b' }));
    await env.client.send(new PutObjectCommand({ Bucket: env.bucket, Key: 'b', Body: 'old b' }));
    expect(await env.client.send(new HeadObjectCommand({ Bucket: env.bucket, Key: 'b' }))).toMatchObject({
      ETag: before.ETag,
    });
    env.proxy.reset();
    // A write to c between the re-list and DeleteObjects: S3 refuses the listed ETag (s3rver
    // ignores ETags, so the proxy answers as AWS does; the key is not forwarded).
    env.proxy.failKeys(['c'], {
      code: 'PreconditionFailed',
      message: 'At least one of the pre-conditions did not hold',
    });

    const outcomes = await store.delete([...eligible.values()]);
    expect(outcomes.map((outcome) => [outcome.key, outcome.status]).sort()).toEqual([
      ['a', 'deleted'],
      ['b', 'kept'],
      ['c', 'kept'],
    ]);
    expect(listings().length).toBeGreaterThan(0);
    const sent = deletes().flatMap((request) => request.deleteKeys!);
    expect(sent.map((object) => object.key).sort()).toEqual(['a', 'c']);
    expect(sent.every((object) => object.etag !== undefined)).toBe(true);
    expect(await env.client.send(new HeadObjectCommand({ Bucket: env.bucket, Key: 'b' }))).toBeDefined();
    await store.close();
  });
});
