import { describe, expect, it } from 'vitest';
import { readAuditTrail } from '../../lib/reports/auditTrail.ts';
import { ago, CUTOFF, DAY, FakeRuns, oldItems, policyWith } from '../support/fakeRuns.ts';

/**
 * The record of what was deleted, against in-memory fakes: invariants 2 (every deletion has an
 * audit record: a write-ahead intent resolved after, or the store's own record in the deleting
 * statement; a crash's intents resolved by the next run) and 7 (idempotent retries).
 */
describe('engine: the audit record', () => {
  it('invariant 2: every deletion has a write-ahead intent, recorded before the store deletes and resolved after', async () => {
    const runs = new FakeRuns({ items: oldItems(5) }, policyWith({ batchSize: 2 }));
    const pendingAtDelete: string[][] = [];
    runs.store.beforeDelete = (keys) => {
      pendingAtDelete.push(
        keys.filter((key) => runs.control.records.some((record) => record.key === key && record.status === 'pending')),
      );
    };
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'completed', deleted: 5 });
    expect(pendingAtDelete).toEqual(runs.store.deleteCalls);
    expect(runs.control.statuses(report.runId)).toEqual(
      Object.fromEntries(oldItems(5).map(({ key }) => [key, 'deleted'])),
    );
    expect(runs.control.records).toHaveLength(5);
    expect(runs.control.records[0]).toMatchObject({
      runId: report.runId,
      policy: 'files',
      store: 'fake://items',
      rule: 'retention: 30d',
      cutoff: CUTOFF,
      actor: 'test:engine',
      trigger: 'manual',
    });
    // The run reached the store with every call that deleted.
    expect(runs.store.deletingRuns.map((run) => run?.runId)).toEqual([report.runId, report.runId, report.runId]);
  });

  it('invariant 2: a crash leaves pending intents that the next run resolves by asking the store', async () => {
    const runs = new FakeRuns({ items: oldItems(3) });
    const intent = {
      runId: 'crashed-run',
      policy: 'files',
      store: 'fake://items',
      itemTimestamp: ago(40 * DAY),
      rule: 'retention: 30d',
      cutoff: CUTOFF,
      actor: 'test:crashed',
      trigger: 'scheduled' as const,
      action: 'delete' as const,
    };
    await runs.control.startRun({ runId: 'crashed-run', policy: 'files', dryRun: false, startedAt: ago(DAY) });
    await runs.control.recordIntents([
      { ...intent, key: 'old-00' },
      { ...intent, key: 'old-01' },
    ]);
    // The crashed run deleted old-00 before it died; old-01 was never reached.
    runs.store.items.delete('old-00');

    const report = await runs.run();
    expect(runs.control.statuses('crashed-run')).toEqual({ 'old-00': 'deleted', 'old-01': 'abandoned' });
    expect((await runs.control.getRun('crashed-run'))?.status).toBe('crashed');
    expect(runs.events('intents_recovered')).toMatchObject([{ deleted: 1, abandoned: 1 }]);
    expect(report).toMatchObject({ status: 'completed', deleted: 2 });
    expect(runs.control.statuses(report.runId)).toEqual({ 'old-01': 'deleted', 'old-02': 'deleted' });
    expect(await runs.control.pendingIntents('files')).toEqual([]);
  });

  it('invariant 2: a delete that throws midway is settled by presence: what went is recorded deleted, the rest abandoned', async () => {
    const runs = new FakeRuns({ items: oldItems(4) });
    runs.store.breakNextDelete = { after: 2, error: new Error('connection reset') };
    const failed = await runs.run();
    expect(failed).toMatchObject({
      status: 'failed',
      deleted: 2,
      error: { code: 'unexpected', message: 'connection reset' },
    });
    expect(runs.control.statuses(failed.runId)).toEqual({
      'old-00': 'deleted',
      'old-01': 'deleted',
      'old-02': 'abandoned',
      'old-03': 'abandoned',
    });
    expect(await runs.control.pendingIntents('files')).toEqual([]);

    const retried = await runs.run();
    expect(retried).toMatchObject({ status: 'completed', deleted: 2 });
    expect(runs.store.keys()).toEqual([]);
    const deletedRecords = runs.control.records
      .filter((record) => record.status === 'deleted')
      .map((record) => record.key)
      .sort();
    expect(deletedRecords).toEqual(['old-00', 'old-01', 'old-02', 'old-03']);
  });

  it('invariant 2: a one-statement batch is recorded by the store in the deleting statement, with the run, and needs no intent', async () => {
    const runs = new FakeRuns(
      { items: [...oldItems(5), { key: 'young', timestamp: ago(DAY) }], sweep: { audited: true } },
      policyWith({ batchSize: 2 }),
    );
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'completed', deleted: 5 });
    expect(runs.store.keys()).toEqual(['young']);
    expect(runs.store.deleteCalls).toHaveLength(3);
    expect(runs.control.records.filter((record) => record.action === 'delete')).toEqual([]);
    const trail = await readAuditTrail(runs.control, [runs.store], { runId: report.runId, limit: 100 });
    expect(trail.map((record) => [record.key, record.status, record.actor]).sort()).toEqual(
      oldItems(5).map(({ key }) => [key, 'deleted', 'test:engine']),
    );
  });

  it('invariant 2: a one-statement batch deleted without its audit record fails the run', async () => {
    const runs = new FakeRuns({ items: oldItems(3), sweep: { audited: false } });
    const report = await runs.run();
    expect(report.status).toBe('failed');
    expect(report.error?.message).toContain('deleted in one statement without their audit record');
  });

  it('invariant 2: a backup copy or --limit keeps the write-ahead path even where the store sweeps in one statement', async () => {
    const limited = new FakeRuns({ items: oldItems(4), sweep: { audited: true } });
    const report = await limited.run({ limit: 3 });
    expect(report).toMatchObject({ status: 'completed', deleted: 3 });
    expect(limited.store.ownRecords).toEqual([]);
    expect(Object.keys(limited.control.statuses(report.runId))).toHaveLength(3);

    const backedUp = new FakeRuns(
      { items: oldItems(4), sweep: { audited: true } },
      policyWith({ backup: { to: '/srv/backups', keepFor: '7d' } }),
    );
    const withBackup = await backedUp.run();
    expect(withBackup).toMatchObject({ status: 'completed', deleted: 4 });
    expect(backedUp.store.ownRecords).toEqual([]);
    expect(Object.values(backedUp.control.statuses(withBackup.runId))).toEqual([
      'deleted',
      'deleted',
      'deleted',
      'deleted',
    ]);
  });

  it('invariant 7: an item already gone when deleted counts as missing: done, never failed, not counted as deleted', async () => {
    const runs = new FakeRuns({ items: oldItems(4) });
    // Another process deletes old-02 between the scan and the deletion.
    runs.store.beforeDelete = () => runs.store.items.delete('old-02');
    const report = await runs.run();
    expect(report).toMatchObject({ status: 'completed', deleted: 3, missing: 1, failed: 0, backlog: 0 });
    expect(report.sla.status).toBe('ok');
    expect(runs.control.statuses(report.runId)['old-02']).toBe('missing');
    // The next run finds nothing due: what is gone stays done.
    expect(await runs.run()).toMatchObject({ status: 'completed', eligible: 0, deleted: 0, missing: 0, failed: 0 });
  });

  it('invariant 7: summed over a failed run and its retry, deletions count each item once', async () => {
    const runs = new FakeRuns({ items: oldItems(6) }, policyWith({ batchSize: 3 }));
    runs.store.breakNextDelete = { after: 1, error: new Error('timeout') };
    const first = await runs.run();
    const second = await runs.run();
    expect([first.status, second.status]).toEqual(['failed', 'completed']);
    expect(first.deleted + second.deleted).toBe(6);
    expect(first.failed + second.failed).toBe(0);
  });
});
