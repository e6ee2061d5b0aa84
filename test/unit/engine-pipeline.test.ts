import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../lib/core/control.ts';
import type { DeleteShape } from '../../lib/core/store.ts';
import { ago, DAY, FakeRuns, item, oldItems, policyWith } from '../support/fakeRuns.ts';

/**
 * Several delete batches in flight (stores that declare a delete shape, as S3 does), against the
 * in-memory fakes: checkpoints in step order, stops that wait for the batches in flight, the
 * deletion allowance reserved at launch, a failing batch among others; and the census counted
 * from a listing the run keeps (object stores) instead of a listing of its own.
 */
const THREE_IN_FLIGHT: DeleteShape = { batchItems: 2, inFlight: 3 };

/** Batch i (in launch order) takes longer than batch i+1 of its group of three: they settle out of order. */
function slowFirst(runs: FakeRuns): { launched: string[]; settled: string[]; mostInFlight: () => number } {
  const launched: string[] = [];
  const settled: string[] = [];
  let active = 0;
  let most = 0;
  runs.store.beforeDelete = async (keys) => {
    launched.push(keys[0]!);
    active += 1;
    most = Math.max(most, active);
    await sleep(5 * (3 - ((launched.length - 1) % 3)));
    active -= 1;
    settled.push(keys[0]!);
  };
  return { launched, settled, mostInFlight: () => most };
}

/** Checkpoints as saved; each checked when saved: nothing at or before it is still present. */
function checkpointsChecked(runs: FakeRuns): string[] {
  const saved: string[] = [];
  const save = runs.control.saveCheckpoint.bind(runs.control);
  runs.control.saveCheckpoint = async (lease, runId, cursor) => {
    expect(runs.store.keys().filter((key) => key <= cursor)).toEqual([]);
    saved.push(cursor);
    await save(lease, runId, cursor);
  };
  return saved;
}

/** Every intent resolved, and each key recorded deleted at most once, only if it is gone. */
function expectTruthfulRecords(runs: FakeRuns): AuditRecord[] {
  const records = runs.control.records.filter((record) => record.action === 'delete');
  expect(records.filter((record) => record.status === 'pending')).toEqual([]);
  const deleted = records.filter((record) => record.status === 'deleted').map((record) => record.key);
  expect(new Set(deleted).size).toBe(deleted.length);
  for (const key of deleted) expect(runs.store.items.has(key)).toBe(false);
  return records;
}

describe('engine: delete batches in flight', () => {
  it('keeps up to three batches in flight and writes their checkpoints in step order, each after every earlier batch', async () => {
    const runs = new FakeRuns({ items: oldItems(12), deletes: THREE_IN_FLIGHT }, policyWith({ batchSize: 2 }));
    const order = slowFirst(runs);
    const saved = checkpointsChecked(runs);
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'completed', deleted: 12, backlog: 0 });
    expect(order.mostInFlight()).toBe(3);
    // Later batches finished first, yet the checkpoints went in step order.
    expect(order.settled).not.toEqual(order.launched);
    expect(saved).toEqual(['old-01', 'old-03', 'old-05', 'old-07', 'old-09']);
    expect(runs.control.checkpoints.size).toBe(0);
    expect(expectTruthfulRecords(runs).filter((record) => record.status === 'deleted')).toHaveLength(12);
  });

  it.each([
    ['signal', (_runs: FakeRuns, stop: AbortController) => () => stop.abort('SIGTERM')],
    ['budget', (runs: FakeRuns, _stop: AbortController) => () => runs.clock.advance(40_000)],
  ] as const)(
    'a %s stop mid-pipeline launches nothing more, settles the batches in flight, and the next run resumes without skipping or double counting',
    async (reason, stopper) => {
      const runs = new FakeRuns(
        { items: oldItems(12), deletes: THREE_IN_FLIGHT },
        policyWith({ batchSize: 2, budget: '1m' }),
      );
      const controller = new AbortController();
      const order = slowFirst(runs);
      const delay = runs.store.beforeDelete!;
      const stop = stopper(runs, controller);
      runs.store.beforeDelete = async (keys) => {
        if (order.launched.length === 1) stop();
        await delay(keys);
      };
      checkpointsChecked(runs);
      const first = await runs.run({ signal: controller.signal });
      expect(first).toMatchObject({ status: 'partial', stopReason: reason });
      expect(first.deleted).toBe(12 - runs.store.keys().length);
      expect(first.deleted).toBeGreaterThan(0);
      expect(first.deleted).toBeLessThan(12);
      expectTruthfulRecords(runs);

      runs.store.beforeDelete = undefined;
      const second = await runs.run();
      expect(second).toMatchObject({ status: 'completed', missing: 0 });
      expect(first.deleted + second.deleted).toBe(12);
      expect(runs.store.keys()).toEqual([]);
      expect(expectTruthfulRecords(runs).filter((record) => record.status === 'deleted')).toHaveLength(12);
    },
  );

  it('a signal while launched batches wait for their turn: none of them deletes, their intents are abandoned', async () => {
    const runs = new FakeRuns({ items: oldItems(12), deletes: THREE_IN_FLIGHT }, policyWith({ batchSize: 2 }));
    const controller = new AbortController();
    let opened!: () => void;
    let launched!: () => void;
    const gate = new Promise<void>((resolve) => (opened = resolve));
    const allLaunched = new Promise<void>((resolve) => (launched = resolve));
    const record = runs.control.recordIntents.bind(runs.control);
    let batches = 0;
    // Batches 2 and 3 are launched and wait on their intents; batch 1 deletes once both are waiting.
    runs.control.recordIntents = async (intents) => {
      batches += 1;
      if (batches === 3) launched();
      if (batches > 1) await gate;
      await record(intents);
    };
    runs.store.beforeDelete = async () => {
      await allLaunched;
      controller.abort('SIGTERM');
      opened();
    };
    const report = await runs.run({ signal: controller.signal });
    expect(report).toMatchObject({ status: 'partial', stopReason: 'signal', deleted: 2 });
    expect(runs.store.keys()).toHaveLength(10);
    const records = expectTruthfulRecords(runs);
    expect(records.filter((record) => record.status === 'abandoned')).toHaveLength(4);
    expect((await runs.run()).deleted).toBe(10);
  });

  it('a budget spent before the first batch: that batch runs, no second one is launched beside it', async () => {
    const runs = new FakeRuns(
      { items: oldItems(12), deletes: THREE_IN_FLIGHT },
      policyWith({ batchSize: 2, budget: '1m' }),
    );
    const listHolds = runs.control.listHolds.bind(runs.control);
    runs.control.listHolds = async (policy) => {
      runs.clock.advance(2 * 60_000);
      return listHolds(policy);
    };
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'partial', stopReason: 'budget', deleted: 2 });
    expectTruthfulRecords(runs);
  });

  it('maxDeletesPerRun is never exceeded with batches in flight: the allowance is reserved when a batch launches', async () => {
    const runs = new FakeRuns(
      { items: oldItems(4), deletes: THREE_IN_FLIGHT },
      policyWith({ batchSize: 2, limits: { maxDeletesPerRun: 5, maxDeleteFraction: 1 } }),
    );
    // Within the limits at the census; more due items appear before the sweep reaches them.
    const census = runs.store.census.bind(runs.store);
    runs.store.census = async (query) => {
      const counted = await census(query);
      runs.store.census = census;
      for (const extra of oldItems(8, 'later')) runs.store.items.set(extra.key, extra);
      return counted;
    };
    slowFirst(runs);
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'partial', stopReason: 'limit', deleted: 5 });
    expect(runs.store.deleteCalls.flat()).toHaveLength(5);
    expect(runs.store.keys()).toHaveLength(7);
    expectTruthfulRecords(runs);
  });

  it('one batch failing while others are in flight: theirs are recorded as they went, the failed one by presence', async () => {
    const runs = new FakeRuns({ items: oldItems(12), deletes: THREE_IN_FLIGHT }, policyWith({ batchSize: 2 }));
    const order = slowFirst(runs);
    const delay = runs.store.beforeDelete!;
    runs.store.beforeDelete = async (keys) => {
      if (order.launched.length === 1) runs.store.breakNextDelete = { after: 1, error: new Error('connection reset') };
      await delay(keys);
    };
    const saved = checkpointsChecked(runs);
    const report = await runs.run();
    expect(report.status).toBe('failed');
    expect(report.error?.message).toContain('connection reset');
    expect(report.deleted).toBe(12 - runs.store.keys().length);
    const records = expectTruthfulRecords(runs);
    // The broken batch: one item went, one stayed (abandoned); nothing past it was checkpointed.
    expect(records.filter((record) => record.status === 'abandoned')).toHaveLength(1);
    const stayed = records.find((record) => record.status === 'abandoned')!.key;
    for (const cursor of saved) expect(cursor < stayed).toBe(true);

    runs.store.beforeDelete = undefined;
    expect(await runs.run()).toMatchObject({ status: 'completed' });
    expect(runs.store.keys()).toEqual([]);
  });
});

describe('engine: the census listing kept for deletion (stores whose census is a listing)', () => {
  const items = [
    ...oldItems(25),
    item('held-1', ago(40 * DAY)),
    item('young-1', ago(DAY)),
    item('young-2', ago(2 * DAY)),
  ];
  const holds = async (runs: FakeRuns) =>
    runs.control.addHold({ policy: 'files', key: 'held-1', prefix: false, reason: 'case 7', createdBy: 'legal' });

  it('counts the census from one listing and deletes from it: the same census as a listing of its own, nothing listed twice', async () => {
    // A fraction guard the census trips shows what it counted (`limits`).
    const strict = policyWith({ batchSize: 4, limits: { maxDeleteFraction: 0.5 } });
    const [separate, kept] = [new FakeRuns({ items }, strict), new FakeRuns({ items, censusByListing: true }, strict)];
    for (const runs of [separate, kept]) await holds(runs);
    const [counted, fromListing] = [await separate.run(), await kept.run()];
    expect(fromListing).toMatchObject({ status: 'aborted_limit', limits: { planned: 25, total: 28 } });
    expect(fromListing.limits).toEqual(counted.limits);
    expect(separate.store.censuses).toBe(1);
    expect([kept.store.censuses, kept.store.scans]).toEqual([0, 1]);

    const runs = new FakeRuns({ items, censusByListing: true }, policyWith({ batchSize: 4 }));
    await holds(runs);
    expect(await runs.run()).toMatchObject({ status: 'completed', deleted: 25, held: 1, scanned: 28, backlog: 0 });
    expect([runs.store.censuses, runs.store.scans]).toEqual([0, 1]);
    expect(runs.store.keys()).toEqual(['held-1', 'young-1', 'young-2']);
  });

  it('--limit deletes the oldest from the kept listing; past its bound, a run scans page by page as before', async () => {
    const limited = new FakeRuns({ items, censusByListing: true }, policyWith({ batchSize: 4 }));
    expect(await limited.run({ limit: 3 })).toMatchObject({ status: 'completed', deleted: 3 });
    expect(limited.store.scans).toBe(1);
    // Oldest first (then by key): held-1 and old-00 are 40 days old, old-01 a minute younger.
    const gone = items.map((entry) => entry.key).filter((key) => !limited.store.items.has(key));
    expect(gone).toEqual(['old-00', 'old-01', 'held-1']);

    const bounded = new FakeRuns({ items, censusByListing: true }, policyWith({ batchSize: 4 }));
    expect(await bounded.run({}, { retainedItems: 10 })).toMatchObject({ status: 'completed', deleted: 26 });
    expect(bounded.store.scans).toBeGreaterThan(2);
  });

  it('a run stopped midway saves no checkpoint into its kept listing: the next run lists again and misses nothing', async () => {
    const runs = new FakeRuns({ items, censusByListing: true, deletes: THREE_IN_FLIGHT }, policyWith({ batchSize: 2 }));
    const controller = new AbortController();
    runs.store.beforeDelete = () => controller.abort('SIGTERM');
    const first = await runs.run({ signal: controller.signal });
    expect(first).toMatchObject({ status: 'partial', stopReason: 'signal' });
    expect(runs.control.checkpoints.size).toBe(0);
    runs.store.beforeDelete = undefined;
    const second = await runs.run();
    expect(second).toMatchObject({ status: 'completed', missing: 0 });
    expect(first.deleted + second.deleted).toBe(26);
    expectTruthfulRecords(runs);
  });
});
