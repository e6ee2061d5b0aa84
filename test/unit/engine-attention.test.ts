import { describe, expect, it } from 'vitest';
import { FailureStreaks, MAX_TRACKED_FAILURES } from '../../lib/engine/attention.ts';
import { FakeRuns, oldItems, policyWith, T0 } from '../support/fakeRuns.ts';

/**
 * The attention queue against in-memory fakes: an item whose deletion fails in `attentionAfter`
 * consecutive live runs is open; anything that settles it (deleted, gone, a whole pass that no
 * longer fails it) ends its streak; runs that do not reach it leave the streak as it was.
 */
describe('engine: failure streaks (attention)', () => {
  const streak = async (runs: FakeRuns, key: string) =>
    (await runs.control.attentionItems('files', 1)).find((item) => item.key === key);

  it('an item that fails in 3 consecutive runs is open, with its last error and run; deleting it ends the streak', async () => {
    const runs = new FakeRuns({ items: oldItems(3) });
    runs.store.failing.add('old-01');
    const first = await runs.run();
    expect(first).toMatchObject({ deleted: 2, failed: 1, attention: { open: 0, after: 3 } });
    runs.store.items.set('old-05', oldItems(6)[5]!);
    runs.store.failing.add('old-05');
    const second = await runs.run();
    expect(second.attention).toEqual({ open: 0, after: 3 });
    const third = await runs.run();
    expect(third.attention).toEqual({ open: 1, after: 3 });
    expect(await streak(runs, 'old-01')).toMatchObject({
      failures: 3,
      lastRunId: third.runId,
      lastError: 'refused by the fake backend',
      firstFailedAt: T0,
      dismissed: null,
    });
    expect((await streak(runs, 'old-05'))?.failures).toBe(2);
    expect(runs.events('attention_open')).toMatchObject([{ open: 1, attention_after: 3 }]);
    expect(runs.events('run_completed').at(-1)).toMatchObject({ attention_open: 1 });

    runs.store.failing.clear();
    const fixed = await runs.run();
    expect(fixed).toMatchObject({ deleted: 2, attention: { open: 0 } });
    expect(await runs.control.attentionItems('files', 1)).toEqual([]);
  });

  it('attentionAfter sets the threshold; a dismissed item is not open', async () => {
    const runs = new FakeRuns({ items: oldItems(2) }, policyWith({ attentionAfter: 1 }));
    runs.store.failing.add('old-00');
    expect((await runs.run()).attention).toEqual({ open: 1, after: 1 });
    await runs.control.dismissAttention('files', 'old-00', 'test:alice', 'known');
    expect((await runs.run()).attention).toEqual({ open: 0, after: 1 });
    expect((await streak(runs, 'old-00'))?.failures).toBe(2);
  });

  it('dry runs note nothing; a limited run leaves streaks it did not reach; a whole pass ends those of items gone', async () => {
    const runs = new FakeRuns({ items: oldItems(3) });
    runs.store.failing.add('old-02');
    const dry = await runs.run({ dryRun: true });
    expect(dry.attention).toBeUndefined();
    expect(await runs.control.attentionItems('files', 1)).toEqual([]);
    await runs.run();
    expect((await streak(runs, 'old-02'))?.failures).toBe(1);
    runs.store.items.set('old-00', oldItems(1)[0]!);
    await runs.run({ limit: 1 });
    expect((await streak(runs, 'old-02'))?.failures).toBe(1);
    // Removed outside the tool: the next whole pass no longer meets it.
    runs.store.items.delete('old-02');
    expect((await runs.run()).attention).toEqual({ open: 0, after: 3 });
    expect(await runs.control.attentionItems('files', 1)).toEqual([]);
  });

  it('fromStart reaches items before the checkpoint (what attention retry asks)', async () => {
    const runs = new FakeRuns({ items: oldItems(3) }, policyWith({ batchSize: 1 }));
    runs.store.failing.add('old-00');
    await runs.run();
    const lease = await runs.control.acquireLease('files', 'test', 60_000);
    await runs.control.saveCheckpoint(lease!, 'earlier', 'old-00');
    await runs.control.releaseLease(lease!);
    const resumed = await runs.run();
    expect(resumed.failed).toBe(0);
    expect((await streak(runs, 'old-00'))?.failures).toBe(1);
    const retried = await runs.run({ fromStart: true });
    expect(retried.failed).toBe(1);
    expect((await streak(runs, 'old-00'))?.failures).toBe(2);
  });

  it('past the failures a run counts, known streaks are still extended (a whole pass must not end them)', () => {
    const known = { policy: 'files', key: 'known', failures: 2, firstFailedAt: T0, lastFailedAt: T0 };
    const streaks = new FailureStreaks([{ ...known, lastRunId: 'r0', lastError: 'e', dismissed: null }]);
    const failures = Array.from({ length: MAX_TRACKED_FAILURES + 5 }, (_, index) => `k${index}`);
    streaks.note(failures.map((key) => ({ key, status: 'failed' as const, error: 'EPERM' })));
    streaks.note([{ key: 'known', status: 'failed', error: 'EPERM' }]);
    streaks.wholePass = true;
    const update = streaks.update('files', 'r1');
    expect(update.failed).toHaveLength(MAX_TRACKED_FAILURES + 1);
    expect(update.failed.at(-1)).toEqual({ key: 'known', error: 'EPERM' });
  });

  it("a run over another store in the policy's name (checkpoint: false, as reconcile's) leaves its streaks alone", async () => {
    const runs = new FakeRuns({ items: oldItems(2) });
    runs.store.failing.add('old-00');
    await runs.run();
    runs.store.items.delete('old-00');
    const other = await runs.run({ checkpoint: false });
    expect(other.status).toBe('completed');
    expect(other.attention).toBeUndefined();
    expect((await streak(runs, 'old-00'))?.failures).toBe(1);
  });
});
