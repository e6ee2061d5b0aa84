import { describe, expect, it } from 'vitest';
import { ago, DAY, FakeRuns, item, oldItems, policyWith } from '../support/fakeRuns.ts';

/**
 * The safety limits, against in-memory fakes: invariant 6 (a run that would delete more than its
 * limits deletes nothing and reports `aborted_limit`, unless forced; judged before the first
 * deletion) and 6′ (`maxDeletesPerRun` also bounds what a run actually deletes).
 */
describe('engine: safety limits', () => {
  it('invariant 6: a run planning more than maxDeletesPerRun deletes nothing, writes no intent, and reports aborted_limit', async () => {
    const runs = new FakeRuns(
      { items: oldItems(5) },
      policyWith({ limits: { maxDeletesPerRun: 3, maxDeleteFraction: 1 } }),
    );
    const report = await runs.run();
    expect(report).toMatchObject({
      status: 'aborted_limit',
      deleted: 0,
      limits: { planned: 5, total: 5, maxDeletesPerRun: 3, forced: false },
    });
    expect(report.error?.message).toContain('nothing was deleted');
    expect(runs.store.deleteCalls).toEqual([]);
    expect(runs.control.records).toEqual([]);
    expect(runs.events('limit_aborted')).toHaveLength(1);
  });

  it('invariant 6: a run that would delete more than maxDeleteFraction of the scope deletes nothing (a wrong root, "1d" for "1y")', async () => {
    const items = [...oldItems(3), item('young', ago(DAY))];
    const runs = new FakeRuns({ items }, policyWith({ limits: { maxDeletesPerRun: 1000, maxDeleteFraction: 0.5 } }));
    expect(await runs.run()).toMatchObject({ status: 'aborted_limit', deleted: 0, limits: { planned: 3, total: 4 } });
    // --limit caps what one run deletes, never what the fraction guard looks at.
    expect(await runs.run({ limit: 1 })).toMatchObject({ status: 'aborted_limit', deleted: 0 });
    expect(runs.store.keys()).toHaveLength(4);
  });

  it('invariant 6: --force proceeds past the limits, and says so', async () => {
    const runs = new FakeRuns(
      { items: oldItems(5) },
      policyWith({ limits: { maxDeletesPerRun: 3, maxDeleteFraction: 1 } }),
    );
    const report = await runs.run({ force: true });
    expect(report).toMatchObject({ status: 'completed', deleted: 5, limits: { forced: true } });
    expect(runs.events('limit_overridden')).toMatchObject([{ actor: 'test:engine' }]);
    // On the record, before the first deletion it allowed (invariant 13).
    const override = runs.control.records.findIndex((record) => record.action === 'limit_overridden');
    const firstIntent = runs.control.records.findIndex((record) => record.action === 'delete');
    expect(override).toBeGreaterThanOrEqual(0);
    expect(override).toBeLessThan(firstIntent);
    expect(runs.control.records[override]).toMatchObject({
      policy: report.policy,
      key: report.runId,
      runId: report.runId,
      actor: 'test:engine',
      rule: '--force',
      status: 'recorded',
      error: expect.stringContaining('maxDeletesPerRun'),
    });
    expect(report.policyHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a forced dry run records no override: it deleted nothing', async () => {
    const runs = new FakeRuns(
      { items: oldItems(5) },
      policyWith({ limits: { maxDeletesPerRun: 3, maxDeleteFraction: 1 } }),
    );
    expect(await runs.run({ force: true, dryRun: true })).toMatchObject({
      status: 'completed',
      limits: { forced: true },
    });
    expect(runs.control.records).toEqual([]);
  });

  it('invariant 6: maxDeletesPerRun bounds what a run deletes even when the census counted fewer (items added meanwhile)', async () => {
    const runs = new FakeRuns(
      { items: oldItems(3) },
      policyWith({ batchSize: 2, limits: { maxDeletesPerRun: 3, maxDeleteFraction: 1 } }),
    );
    // Within the limits at the census; then more due items appear before the sweep reaches them.
    const census = runs.store.census.bind(runs.store);
    let added = false;
    runs.store.census = async (query) => {
      const counted = await census(query);
      if (!added) for (const late of oldItems(3, 'late')) runs.store.items.set(late.key, late);
      added = true;
      return counted;
    };
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'partial', stopReason: 'limit', deleted: 3 });
    expect(runs.store.keys()).toHaveLength(3);
  });
});
