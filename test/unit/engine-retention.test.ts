import { describe, expect, it } from 'vitest';
import { ago, CUTOFF, DAY, FakeRuns, item, listed, oldItems, policyWith, T0 } from '../support/fakeRuns.ts';

/**
 * What a run deletes, against in-memory fakes with a fixed clock: invariants 1 (nothing early),
 * 5 (dry run = the same plan), 9 (holds) and 12 (a reason for everything not deleted).
 */
describe('engine: what a run deletes', () => {
  it('invariant 1: no item younger than its retention is deleted, whatever the store lists (an item exactly at the cutoff is kept)', async () => {
    const byMs = (ms: number) => new Date(CUTOFF.getTime() + ms);
    const runs = new FakeRuns({
      items: [
        item('older-by-1ms', byMs(-1)),
        item('at-cutoff', CUTOFF),
        item('younger-by-1ms', byMs(1)),
        item('young', ago(DAY)),
      ],
    });
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'completed', scanned: 4, eligible: 1, deleted: 1 });
    expect(runs.store.keys()).toEqual(['at-cutoff', 'young', 'younger-by-1ms']);
    expect(report.cutoffs).toEqual([{ rule: 'retention: 30d', cutoff: CUTOFF.toISOString() }]);
  });

  it('invariant 1: cutoffs are fixed at run start: a clock jumping ahead mid-run deletes nothing that was young at the start', async () => {
    const almost = [
      item('almost-a', new Date(CUTOFF.getTime() + 3_600_000)),
      item('almost-b', new Date(CUTOFF.getTime() + 7_200_000)),
    ];
    const runs = new FakeRuns({ items: [...oldItems(6), ...almost] }, policyWith({ batchSize: 2 }));
    // Each batch moves the clock a day: by the second batch the `almost` items would be past `now - 30d`.
    runs.store.beforeDelete = () => runs.clock.advance(DAY);
    const report = await runs.run({ budgetMs: 30 * DAY });
    expect(report).toMatchObject({ status: 'completed', deleted: 6 });
    expect(runs.store.deleteCalls).toHaveLength(3);
    expect(runs.store.keys()).toEqual(['almost-a', 'almost-b']);
  });

  it('invariant 1: an item rewritten between the scan and its deletion is kept, with the cause', async () => {
    const runs = new FakeRuns({ items: oldItems(3) });
    runs.store.beforeDelete = () => runs.store.items.set('old-01', item('old-01', T0));
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'completed', deleted: 2, kept: 1, failed: 0 });
    expect(runs.store.keys()).toEqual(['old-01']);
    expect(report.notDeleted).toEqual([
      { outcome: 'kept', cause: 'no longer eligible when deleted (modified since the scan)', count: 1 },
    ]);
    expect(runs.control.statuses(report.runId)).toEqual({ 'old-00': 'deleted', 'old-01': 'kept', 'old-02': 'deleted' });
  });

  it('invariant 1: --before can only make the cutoff earlier, never later', async () => {
    const runs = new FakeRuns({
      items: [item('40-days', ago(40 * DAY)), item('20-days', ago(20 * DAY)), item('10-days', ago(10 * DAY))],
    });
    const later = await runs.run({ dryRun: true, before: T0 });
    expect(listed(later, 'would_delete')).toEqual(['40-days']);
    const earlier = await runs.run({ before: ago(50 * DAY) });
    expect(earlier).toMatchObject({ status: 'completed', eligible: 0, deleted: 0 });
    expect(runs.store.keys()).toEqual(['10-days', '20-days', '40-days']);
  });

  it('invariant 5: a dry run deletes nothing, records no audit, needs no lease, and lists exactly what the live run then deletes', async () => {
    const runs = new FakeRuns(
      { items: [...oldItems(5), item('young', ago(DAY)), item('held', ago(60 * DAY))] },
      policyWith({ batchSize: 2 }),
    );
    await runs.control.addHold({
      policy: 'files',
      key: 'held',
      prefix: false,
      reason: 'litigation',
      createdBy: 'legal',
    });
    // A scheduled run holds the lease: planning works meanwhile.
    const scheduled = await runs.control.acquireLease('files', 'scheduled-run', 60_000);
    const plan = await runs.run({ dryRun: true });
    expect(plan).toMatchObject({ status: 'completed', dryRun: true, eligible: 6, held: 1, deleted: 0 });
    expect(runs.store.deleteCalls).toEqual([]);
    expect(runs.store.keys()).toHaveLength(7);
    expect(runs.control.records).toEqual([]);
    expect(runs.control.checkpoints.size).toBe(0);

    await runs.control.releaseLease(scheduled!);
    const live = await runs.run();
    expect(live).toMatchObject({ status: 'completed', eligible: 6, held: 1, deleted: 5 });
    expect(listed(live, 'deleted')).toEqual(listed(plan, 'would_delete'));
    expect(listed(live, 'held')).toEqual(listed(plan, 'held'));
    expect(runs.store.keys()).toEqual(['held', 'young']);
  });

  it("invariant 9: a hold holds the item's key, its linked file's key, and every key under a held prefix", async () => {
    const old = ago(40 * DAY);
    const runs = new FakeRuns({
      items: [
        item('doc-1', old, { linkedKey: 'files/doc-1.pdf' }),
        item('doc-2', old, { linkedKey: 'files/doc-2.pdf' }),
        item('case-7/a', old),
        item('case-7/b', old),
        item('doc-3', old),
      ],
    });
    await runs.control.addHold({ policy: 'files', key: 'doc-1', prefix: false, reason: 'key', createdBy: 'legal' });
    await runs.control.addHold({
      policy: null,
      key: 'files/doc-2.pdf',
      prefix: false,
      reason: 'file',
      createdBy: 'legal',
    });
    await runs.control.addHold({ policy: 'files', key: 'case-7/', prefix: true, reason: 'case 7', createdBy: 'legal' });
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'completed', eligible: 5, held: 4, deleted: 1 });
    expect(runs.store.keys()).toEqual(['case-7/a', 'case-7/b', 'doc-1', 'doc-2']);
    // One `hold` audit record per hold that kept something, with the count.
    expect(
      runs.control.records
        .filter((record) => record.action === 'hold')
        .map((record) => [record.key, record.error])
        .sort(),
    ).toEqual([
      ['case-7/', '2 eligible items kept by hold #3'],
      ['doc-1', '1 eligible item kept by hold #1'],
      ['files/doc-2.pdf', '1 eligible item kept by hold #2'],
    ]);
  });

  it('invariant 12: every eligible item not deleted has a reason: held with its hold, kept with its cause, failed with its error', async () => {
    const runs = new FakeRuns({ items: [...oldItems(4), item('held', ago(40 * DAY))] });
    await runs.control.addHold({
      policy: 'files',
      key: 'held',
      prefix: false,
      reason: 'audit 2024',
      createdBy: 'legal',
    });
    runs.store.failing.add('old-00');
    runs.store.beforeDelete = () => runs.store.items.set('old-01', item('old-01', T0));
    const report = await runs.run();
    expect(report).toMatchObject({ eligible: 5, deleted: 2, held: 1, kept: 1, failed: 1 });
    expect(report.notDeleted.map(({ outcome, cause, count }) => [outcome, cause, count]).sort()).toEqual([
      ['failed', 'refused by the fake backend', 1],
      ['held', 'hold #1 (audit 2024)', 1],
      ['kept', 'no longer eligible when deleted (modified since the scan)', 1],
    ]);
    expect(report.notDeleted.reduce((sum, entry) => sum + entry.count, 0)).toBe(report.eligible - report.deleted);
    expect(
      Object.fromEntries((report.items ?? []).map((entry) => [entry.key, entry.error ?? entry.outcome])),
    ).toMatchObject({
      'old-00': 'refused by the fake backend',
      held: 'hold #1 (audit 2024)',
    });
  });
});
