import { describe, expect, it } from 'vitest';
import type { CompressOutcome, DeleteOptions, StoreCompression } from '../../lib/core/store.ts';
import type { EligibleItem, Item } from '../../lib/core/types.ts';
import { mayProceed } from '../../lib/stores/common.ts';
import { ago, DAY, FakeRuns, item, listed, policyWith } from '../support/fakeRuns.ts';
import { FakeStore } from '../support/fakeStore.ts';

const MINUTE = 60_000;

/**
 * The compress tier against in-memory fakes: the engine's guarantees (lease, budget, dry run,
 * holds, limits, write-ahead audit and its recovery) hold for compressions as for deletions.
 */
class CompressingStore extends FakeStore {
  /** Keys of each compress call, in call order. */
  readonly compressCalls: string[][] = [];
  beforeCompress?: (keys: string[]) => unknown;

  readonly compress: StoreCompression = {
    compress: async (items: EligibleItem[], options: DeleteOptions = {}): Promise<CompressOutcome[]> => {
      if (!mayProceed(options.beforeRequest)) return [];
      await this.beforeCompress?.(items.map((entry) => entry.key));
      this.compressCalls.push(items.map((entry) => entry.key));
      return items.map((entry) => this.compressOne(entry));
    },
    removeLeftovers: async () => 0,
  };

  private compressOne(entry: EligibleItem): CompressOutcome {
    const current = this.items.get(entry.key);
    if (!current) return { key: entry.key, status: 'missing' };
    if (current.timestamp.getTime() !== entry.timestamp.getTime())
      return { key: entry.key, status: 'kept', error: 'modified' };
    const size = current.size ?? 0;
    this.items.delete(entry.key);
    this.items.set(`${entry.key}.gz`, { ...current, key: `${entry.key}.gz`, size: size / 4 });
    return {
      key: entry.key,
      status: 'compressed',
      compressedKey: `${entry.key}.gz`,
      bytesBefore: size,
      bytesAfter: size / 4,
    };
  }
}

const mid = (count: number, prefix = 'mid'): Item[] =>
  Array.from({ length: count }, (_, index) =>
    item(`${prefix}-${String(index).padStart(2, '0')}`, ago(10 * DAY), { size: 100 }),
  );

function setup(items: Item[], overrides: Record<string, unknown> = {}) {
  const runs = new FakeRuns({}, policyWith({ compress: { after: '7d' }, ...overrides }));
  const store = new CompressingStore({ items });
  return { runs, store, run: (options = {}) => runs.run(options, { store }) };
}

describe('engine: compress, then delete', () => {
  it('deletes what is due, then compresses what is past after; held and young items stay as they are; each compression is audited', async () => {
    const { runs, store, run } = setup([
      item('a-old', ago(40 * DAY)),
      ...mid(2),
      item('held', ago(10 * DAY)),
      item('young', ago(DAY)),
    ]);
    await runs.control.addHold({ policy: null, key: 'held', prefix: false, reason: 'case', createdBy: 'test' });
    const report = await run();
    expect(report).toMatchObject({ status: 'completed', deleted: 1 });
    expect(report.compressed).toEqual({ count: 2, bytesBefore: 200, bytesAfter: 50, kept: 0, failed: 0 });
    expect(store.keys()).toEqual(['held', 'mid-00.gz', 'mid-01.gz', 'young']);
    expect(listed(report, 'compressed')).toEqual(['mid-00', 'mid-01']);
    expect(runs.control.statuses(report.runId, 'compress')).toEqual({ 'mid-00': 'compressed', 'mid-01': 'compressed' });
    const record = runs.control.records.find((entry) => entry.action === 'compress');
    expect(record).toMatchObject({
      rule: 'compress after 7d (gzip)',
      size: 100,
      error: 'gzip: 100 → 25 bytes (saved 75) as mid-00.gz',
    });
  });

  it('a dry run lists would_compress and changes nothing', async () => {
    const { runs, store, run } = setup(mid(3));
    const report = await run({ dryRun: true });
    expect(report.compressed).toMatchObject({ count: 0, wouldCompress: 3, bytesToCompress: 300 });
    expect(listed(report, 'would_compress')).toEqual(['mid-00', 'mid-01', 'mid-02']);
    expect(store.compressCalls).toEqual([]);
    expect(runs.control.records).toEqual([]);
  });

  it('a lease taken over mid-pass stops it before the next batch: partial, the rest untouched', async () => {
    const { runs, store, run } = setup(mid(6), { batchSize: 2 });
    store.beforeCompress = async () => {
      if (store.compressCalls.length > 0) return;
      await runs.control.breakLease('files');
      await runs.control.acquireLease('files', 'takeover', MINUTE);
    };
    const report = await run();
    expect(report).toMatchObject({ status: 'partial', stopReason: 'lease_lost' });
    expect(store.compressCalls).toHaveLength(1);
    expect(store.keys().filter((key) => key.endsWith('.gz'))).toHaveLength(2);
  });

  it('out of budget between batches: partial (budget), the next run goes on', async () => {
    const { runs, store, run } = setup(mid(6), { batchSize: 2 });
    // Each batch takes two minutes on the run's clock.
    store.beforeCompress = () => runs.clock.advance(2 * MINUTE);
    const first = await run({ budgetMs: 3 * MINUTE });
    expect(first).toMatchObject({ status: 'partial', stopReason: 'budget' });
    expect(first.compressed).toMatchObject({ count: 2, unfinished: 'budget' });
    const second = await run({ budgetMs: 60 * MINUTE });
    expect(second).toMatchObject({ status: 'completed' });
    expect(second.compressed).toMatchObject({ count: 4 });
    expect(store.keys().every((key) => key.endsWith('.gz'))).toBe(true);
  });

  it('deletion first: a sweep that left no room for another batch leaves compressing to the next run', async () => {
    const { runs, store, run } = setup([item('a-old', ago(40 * DAY)), item('b-old', ago(40 * DAY)), ...mid(2)]);
    // The sweep's one batch takes two minutes of a three-minute budget: no room for a compress batch.
    store.beforeDelete = () => runs.clock.advance(2 * MINUTE);
    const report = await run({ budgetMs: 3 * MINUTE });
    expect(report).toMatchObject({ status: 'partial', stopReason: 'budget', deleted: 2 });
    expect(report.compressed).toMatchObject({ count: 0, unfinished: 'budget' });
    expect(store.compressCalls).toEqual([]);
  });

  it('at most maxDeletesPerRun compressions per run, without failing it', async () => {
    const { run } = setup(mid(5), { batchSize: 2, limits: { maxDeletesPerRun: 3, maxDeleteFraction: 1 } });
    const report = await run();
    expect(report).toMatchObject({ status: 'completed' });
    expect(report.compressed).toMatchObject({ count: 3, unfinished: 'limit' });
  });

  it("a crashed run's pending compress intents are resolved by presence: compressed when the original is gone", async () => {
    const { runs, store, run } = setup(mid(2));
    // A run killed after compressing mid-00 (original gone, copy there) and before touching mid-01.
    await runs.control.startRun({ runId: 'dead', policy: 'files', dryRun: false, startedAt: ago(MINUTE) });
    const intent = (key: string) => ({
      runId: 'dead',
      policy: 'files',
      store: store.location,
      key,
      itemTimestamp: ago(10 * DAY),
      rule: 'compress after 7d (gzip)',
      cutoff: ago(7 * DAY),
      actor: 'test',
      trigger: 'manual' as const,
      action: 'compress' as const,
    });
    await runs.control.recordIntents([intent('mid-00'), intent('mid-01')]);
    store.items.delete('mid-00');
    store.items.set('mid-00.gz', item('mid-00.gz', ago(10 * DAY), { size: 25 }));
    const next = await run();
    expect(runs.control.statuses('dead', 'compress')).toEqual({ 'mid-00': 'compressed', 'mid-01': 'abandoned' });
    expect(next.compressed).toMatchObject({ count: 1 });
    expect(store.keys()).toEqual(['mid-00.gz', 'mid-01.gz']);
  });
});
