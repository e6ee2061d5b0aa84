import { describe, expect, it } from 'vitest';
import { FakeRuns, oldItems, policyWith } from '../support/fakeRuns.ts';

const MINUTE = 60_000;

/**
 * Who may delete, and for how long, against in-memory fakes with a settable clock: invariants 3
 * (one run at a time: lease and fencing token), 4 (budget: at most one batch over, `partial` with
 * a checkpoint) and 8 (a pause or a signal stops the run before its next destructive call).
 */
describe('engine: lease, budget and stops', () => {
  it('invariant 3: a run while another holds the lease deletes nothing and reports skipped_locked, until the lease expires', async () => {
    const runs = new FakeRuns({ items: oldItems(3) });
    await runs.control.acquireLease('files', 'other-run', MINUTE);
    const locked = await runs.run();
    expect(locked).toMatchObject({ status: 'skipped_locked', deleted: 0 });
    expect(runs.store.deleteCalls).toEqual([]);
    expect(runs.control.records).toEqual([]);
    expect(runs.events('run_skipped')).toMatchObject([{ reason: 'locked', lease_owner: 'other-run' }]);

    // A holder that died stops blocking once its lease runs out (by the control store's clock).
    runs.clock.advance(MINUTE + 1);
    expect(await runs.run()).toMatchObject({ status: 'completed', deleted: 3 });
  });

  it('invariant 3: of two runs started together, exactly one deletes', async () => {
    const runs = new FakeRuns({ items: oldItems(4) });
    const reports = await Promise.all([runs.run(), runs.run()]);
    expect(reports.map((report) => report.status).sort()).toEqual(['completed', 'skipped_locked']);
    expect(reports.reduce((sum, report) => sum + report.deleted, 0)).toBe(4);
    expect(runs.store.deleteCalls).toHaveLength(1);
  });

  it('invariant 3: a run whose lease is taken over stops before its next batch (fencing token), partial, nothing more deleted', async () => {
    const runs = new FakeRuns({ items: oldItems(6) }, policyWith({ batchSize: 2 }));
    runs.store.beforeDelete = async () => {
      if (runs.store.deleteCalls.length > 0) return;
      // An operator breaks the lease and another run takes it while the first batch is deleting.
      await runs.control.breakLease('files');
      await runs.control.acquireLease('files', 'takeover', MINUTE);
    };
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'partial', stopReason: 'lease_lost', deleted: 2 });
    expect(runs.store.deleteCalls).toHaveLength(1);
    expect(runs.store.keys()).toHaveLength(4);
    // The batch it did delete is on record; the new holder keeps the lease.
    expect(Object.values(runs.control.statuses(report.runId))).toEqual(['deleted', 'deleted']);
    expect(runs.control.leases.get('files')).toMatchObject({ owner: 'takeover', token: 3 });
  });

  it('invariant 4: a run stops after the batch that uses up its budget: partial (no error), checkpoint saved, resumed by the next run', async () => {
    const runs = new FakeRuns({ items: oldItems(10) }, policyWith({ batchSize: 2 }));
    // Each batch takes two minutes on the run's clock.
    runs.store.beforeDelete = () => runs.clock.advance(2 * MINUTE);
    const first = await runs.run({ budgetMs: 5 * MINUTE });
    // After 2 batches (4 min), a third would end at 6 min > 5: the run stops, within one batch of its budget.
    expect(first).toMatchObject({ status: 'partial', stopReason: 'budget', deleted: 4, durationSeconds: 240 });
    expect(first.error).toBeUndefined();
    expect(first.durationSeconds).toBeLessThanOrEqual(5 * 60 + 2 * 60);
    expect(runs.events('budget_exhausted')).toHaveLength(1);
    expect(runs.control.checkpoints.get('files')).toMatchObject({ cursor: 'old-03', runId: first.runId });

    const second = await runs.run({ budgetMs: 60 * MINUTE });
    expect(runs.events('run_resumed')).toMatchObject([{ cursor: 'old-03', from_run: first.runId }]);
    expect(second).toMatchObject({ status: 'completed', scanned: 6, deleted: 6, backlog: 0 });
    expect(runs.store.keys()).toEqual([]);
    expect(runs.control.checkpoints.size).toBe(0);
  });

  it('invariant 4: a budget smaller than one batch still deletes one batch, so repeated runs finish a backlog', async () => {
    const runs = new FakeRuns({ items: oldItems(5) }, policyWith({ batchSize: 2 }));
    runs.store.beforeDelete = () => runs.clock.advance(MINUTE);
    const reports = [];
    for (let attempt = 0; attempt < 3; attempt += 1) reports.push(await runs.run({ budgetMs: 1 }));
    expect(reports.map((report) => [report.status, report.deleted])).toEqual([
      ['partial', 2],
      ['partial', 2],
      ['completed', 1],
    ]);
    expect(runs.store.keys()).toEqual([]);
  });

  it('invariant 8: a pause mid-run takes effect before the next destructive call: partial, paused, what was deleted recorded', async () => {
    const runs = new FakeRuns({ items: oldItems(6) }, policyWith({ batchSize: 2 }));
    runs.store.beforeDelete = () => runs.control.pause('*', 'oncall', 'incident 42');
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'partial', stopReason: 'paused', deleted: 2 });
    expect(report.error?.message).toContain('paused by oncall (incident 42)');
    expect(runs.store.deleteCalls).toHaveLength(1);
    // While paused, the next run does not start at all.
    expect(await runs.run()).toMatchObject({ status: 'skipped_paused', deleted: 0 });
    expect(runs.store.deleteCalls).toHaveLength(1);
  });

  it('invariant 8: a signal stops the run after the current batch, partial, checkpoint kept', async () => {
    const runs = new FakeRuns({ items: oldItems(6) }, policyWith({ batchSize: 2 }));
    const stop = new AbortController();
    runs.store.beforeDelete = () => stop.abort('SIGTERM');
    const report = await runs.run({ signal: stop.signal });
    expect(report).toMatchObject({ status: 'partial', stopReason: 'signal', deleted: 2 });
    expect(runs.store.deleteCalls).toHaveLength(1);
    expect(runs.control.checkpoints.get('files')?.cursor).toBe('old-01');
  });

  it('invariant 8: a stopped run starts no upkeep after its sweep (a VACUUM could take the rest of the budget)', async () => {
    const runs = new FakeRuns({ items: oldItems(6) }, policyWith({ batchSize: 2 }));
    const upkeep: number[] = [];
    runs.store.maintenance = {
      afterRun: async ({ deleted }) => {
        upkeep.push(deleted);
        return undefined;
      },
    };
    const stop = new AbortController();
    runs.store.beforeDelete = () => stop.abort('SIGTERM');
    expect(await runs.run({ signal: stop.signal })).toMatchObject({ status: 'partial', stopReason: 'signal' });
    expect(upkeep).toEqual([]);
    // The next run completes the pass, and only then is the upkeep asked for.
    runs.store.beforeDelete = undefined;
    expect(await runs.run()).toMatchObject({ status: 'completed', deleted: 4 });
    expect(upkeep).toEqual([4]);
  });
});
