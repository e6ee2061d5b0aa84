import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditIntent, ControlStore } from '../../lib/core/control.ts';
import { governanceView, recordGovernance } from '../../lib/core/governance.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { LeaseLostError } from '../../lib/errors.ts';
import { attentionContract } from './attention-contract.ts';

/**
 * The behaviour every ControlStore backend must have (PostgreSQL now, DynamoDB later), run
 * against a real local backend. `setup` returns a store on an empty backend, not yet migrated.
 * Tests share that store, so each works on its own policy names.
 */
export function controlStoreContract(
  name: string,
  setup: () => Promise<{ store: ControlStore; teardown(): Promise<void> }>,
): void {
  describe(`ControlStore contract: ${name}`, () => {
    let store: ControlStore;
    let teardown: () => Promise<void>;
    const policyName = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

    beforeAll(async () => {
      ({ store, teardown } = await setup());
      // The first migration of an empty backend, by two callers at once.
      await Promise.all([store.migrate(), store.migrate()]);
    });
    afterAll(async () => teardown?.());

    it('migrates again without losing data', async () => {
      const hold = await store.addHold({
        policy: policyName('migrate'),
        key: 'k',
        prefix: false,
        reason: 'r',
        createdBy: 'test',
      });
      await store.migrate();
      expect((await store.listHolds()).map((h) => h.id)).toContain(hold.id);
    });

    attentionContract(() => store, policyName);

    describe('leases', () => {
      it('gives a held lease to nobody else', async () => {
        const policy = policyName('lease');
        const lease = await store.acquireLease(policy, 'run-a', 60_000);
        expect(lease).toMatchObject({ policy, owner: 'run-a' });
        expect(lease!.expiresAt.getTime()).toBeGreaterThan(Date.now() + 50_000);
        expect(await store.acquireLease(policy, 'run-b', 60_000)).toBeNull();
        // The holder itself cannot take it twice either: one lease, one run.
        expect(await store.acquireLease(policy, 'run-a', 60_000)).toBeNull();
        expect(await store.getLease(policy)).toEqual(lease);
        expect(await store.getLease(policyName('none'))).toBeNull();
      });

      it('hands an expired lease over with a higher token and fences the stale holder', async () => {
        const policy = policyName('expiry');
        const stale = (await store.acquireLease(policy, 'run-a', 50))!;
        await sleep(120);
        const fresh = await store.acquireLease(policy, 'run-b', 60_000);
        expect(fresh).toMatchObject({ owner: 'run-b' });
        expect(fresh!.token).toBeGreaterThan(stale.token);

        expect(await store.renewLease(stale, 60_000)).toBeNull();
        await expect(store.saveCheckpoint(stale, 'run-a', 'cursor-a')).rejects.toBeInstanceOf(LeaseLostError);
        await expect(store.clearCheckpoint(stale)).rejects.toBeInstanceOf(LeaseLostError);
        await store.releaseLease(stale);
        expect(await store.getLease(policy)).toEqual(fresh);
        expect(await store.getCheckpoint(policy)).toBeNull();
      });

      it('renews a held lease', async () => {
        const policy = policyName('renew');
        const lease = (await store.acquireLease(policy, 'run-a', 1_000))!;
        const renewed = await store.renewLease(lease, 60_000);
        expect(renewed).toMatchObject({ policy, owner: 'run-a', token: lease.token });
        expect(renewed!.expiresAt.getTime()).toBeGreaterThan(lease.expiresAt.getTime());
      });

      it('has exactly one winner among 20 concurrent acquirers', async () => {
        const policy = policyName('race');
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.acquireLease(policy, `run-${i}`, 60_000)),
        );
        const winners = results.filter((lease) => lease !== null);
        expect(winners).toHaveLength(1);
        expect(await store.getLease(policy)).toEqual(winners[0]);
      });

      it('can be taken again after release', async () => {
        const policy = policyName('release');
        const first = (await store.acquireLease(policy, 'run-a', 60_000))!;
        await store.releaseLease(first);
        expect((await store.getLease(policy))!.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
        const second = await store.acquireLease(policy, 'run-b', 60_000);
        expect(second!.token).toBeGreaterThan(first.token);
      });

      it('breakLease fences off the holder', async () => {
        const policy = policyName('break');
        const zombie = (await store.acquireLease(policy, 'run-a', 60_000))!;
        expect(await store.breakLease(policy)).toBe(true);
        expect(await store.renewLease(zombie, 60_000)).toBeNull();
        await expect(store.saveCheckpoint(zombie, 'run-a', 'c')).rejects.toBeInstanceOf(LeaseLostError);
        const next = await store.acquireLease(policy, 'run-b', 60_000);
        expect(next!.token).toBeGreaterThan(zombie.token);
        expect(await store.breakLease(policyName('nothing'))).toBe(false);
      });
    });

    it('a pause (of the policy, or global) refuses the holder its renewals and fenced writes until resumed', async () => {
      const policy = policyName('paused-holder');
      const lease = (await store.acquireLease(policy, 'run-a', 60_000))!;
      for (const scope of [policy, '*']) {
        await store.pause(scope, 'alice', 'incident');
        try {
          expect(await store.renewLease(lease, 60_000)).toBeNull();
          await expect(store.saveCheckpoint(lease, 'run-a', 'c')).rejects.toBeInstanceOf(LeaseLostError);
          await expect(store.clearCheckpoint(lease)).rejects.toBeInstanceOf(LeaseLostError);
        } finally {
          await store.resume(scope);
        }
        // Nobody else took it: after the resume the same holder may go on.
        expect(await store.renewLease(lease, 60_000)).toMatchObject({ token: lease.token });
      }
      await store.saveCheckpoint(lease, 'run-a', 'c');
      await store.releaseLease(lease);
    });

    it('saves, overwrites and clears checkpoints under the lease', async () => {
      const policy = policyName('checkpoint');
      const lease = (await store.acquireLease(policy, 'run-a', 60_000))!;
      expect(await store.getCheckpoint(policy)).toBeNull();
      await store.saveCheckpoint(lease, 'run-a', 'cursor-1');
      await store.saveCheckpoint(lease, 'run-a', 'cursor-2');
      const checkpoint = await store.getCheckpoint(policy);
      expect(checkpoint).toMatchObject({ policy, cursor: 'cursor-2', runId: 'run-a' });
      expect(checkpoint!.updatedAt).toBeInstanceOf(Date);
      await store.clearCheckpoint(lease);
      expect(await store.getCheckpoint(policy)).toBeNull();
      await store.clearCheckpoint(lease);
    });

    it('pauses and resumes a policy and every policy', async () => {
      const policy = policyName('pause');
      expect(await store.pausedBy(policy)).toBeNull();
      await store.pause(policy, 'alice', 'incident 42');
      expect(await store.pausedBy(policy)).toMatchObject({
        scope: policy,
        by: 'alice',
        reason: 'incident 42',
        at: expect.any(Date),
      });
      expect(await store.pausedBy(policyName('other'))).toBeNull();
      await store.pause('*', 'bob', 'migration');
      try {
        // The global pause is reported first: resuming the policy alone would not unpause it.
        expect(await store.pausedBy(policy)).toMatchObject({ scope: '*', by: 'bob' });
        expect(await store.pausedBy(policyName('other'))).toMatchObject({ scope: '*' });
        expect((await store.listPauses()).map((p) => p.scope)).toEqual(expect.arrayContaining([policy, '*']));
      } finally {
        expect(await store.resume('*')).toBe(true);
      }
      expect(await store.pausedBy(policy)).toMatchObject({ scope: policy });
      expect(await store.resume(policy)).toBe(true);
      expect(await store.resume(policy)).toBe(false);
      expect(await store.pausedBy(policy)).toBeNull();
    });

    it('adds, lists and removes holds', async () => {
      const policy = policyName('holds');
      const own = await store.addHold({
        policy,
        key: 'invoices/',
        prefix: true,
        reason: 'litigation',
        createdBy: 'alice',
      });
      const global = await store.addHold({
        policy: null,
        key: 'ceo.pdf',
        prefix: false,
        reason: 'audit',
        createdBy: 'bob',
      });
      const other = await store.addHold({
        policy: policyName('elsewhere'),
        key: 'x',
        prefix: false,
        reason: 'r',
        createdBy: 'c',
      });
      expect(own).toMatchObject({
        policy,
        key: 'invoices/',
        prefix: true,
        reason: 'litigation',
        createdBy: 'alice',
        createdAt: expect.any(Date),
      });
      try {
        const forPolicy = await store.listHolds(policy);
        expect(forPolicy).toEqual(expect.arrayContaining([own, global]));
        expect(forPolicy.map((h) => h.id)).not.toContain(other.id);
        expect((await store.listHolds()).map((h) => h.id)).toEqual(
          expect.arrayContaining([own.id, global.id, other.id]),
        );
      } finally {
        expect(await store.removeHold(global.id)).toBe(true);
      }
      expect(await store.removeHold(global.id)).toBe(false);
      expect((await store.listHolds(policy)).map((h) => h.id)).not.toContain(global.id);
    });

    it('adds many holds at once, in order, with ids apart from those added one by one', async () => {
      const policy = policyName('bulk-holds');
      expect(await store.addHolds([])).toEqual([]);
      const before = await store.addHold({
        policy,
        key: 'before',
        prefix: false,
        reason: 'single',
        createdBy: 'alice',
      });
      // 60: more than one DynamoDB BatchWriteItem call (25); a few global, a few prefixes.
      const wanted = Array.from({ length: 60 }, (_, i) => ({
        policy: i % 20 === 7 ? null : policy,
        key: `bulk/${i}`,
        prefix: i % 3 === 0,
        reason: `reason ${i}`,
        createdBy: 'bob',
      }));
      const added = await store.addHolds(wanted);
      const after = await store.addHold({ policy, key: 'after', prefix: true, reason: 'single', createdBy: 'alice' });
      const all = [before, ...added, after];
      try {
        expect(added.map(({ id: _id, createdAt: _at, ...hold }) => hold)).toEqual(wanted);
        expect(added.every((hold) => hold.createdAt instanceof Date)).toBe(true);
        const ids = all.map((hold) => hold.id);
        expect(new Set(ids).size).toBe(all.length);
        // Ids increase in write order, within the batch too.
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
        expect(await store.listHolds(policy)).toEqual(expect.arrayContaining(all));
      } finally {
        await Promise.all(all.map((hold) => store.removeHold(hold.id)));
      }
    });

    it('records runs and their reports, newest first', async () => {
      const policy = policyName('runs');
      const older = { runId: randomUUID(), policy, dryRun: false, startedAt: new Date('2025-01-01T00:00:00Z') };
      const newer = { runId: randomUUID(), policy, dryRun: true, startedAt: new Date('2025-01-02T00:00:00Z') };
      await store.startRun(older);
      await store.startRun(newer);
      expect(await store.getRun(older.runId)).toEqual({ ...older, status: 'running', finishedAt: null, report: null });

      const report = runReport({ runId: older.runId, policy, startedAt: older.startedAt.toISOString() });
      await store.finishRun(report);
      expect(await store.getRun(older.runId)).toEqual({
        ...older,
        status: 'completed',
        finishedAt: new Date(report.finishedAt),
        report,
      });

      const runs = await store.listRuns({ policy, limit: 10 });
      expect(runs.map((run) => run.runId)).toEqual([newer.runId, older.runId]);
      expect(await store.listRuns({ policy, limit: 1 })).toHaveLength(1);
      expect(await store.getRun(randomUUID())).toBeNull();
    });

    describe('audit', () => {
      it('records intents as pending and resolves them', async () => {
        const policy = policyName('intents');
        const runId = randomUUID();
        await store.recordIntents([
          intent(policy, runId, 'a', 10),
          intent(policy, runId, 'b'),
          intent(policy, runId, 'c'),
        ]);
        const pending = await store.audit({ runId, limit: 10 });
        expect(pending).toHaveLength(3);
        const a = pending.find((record) => record.key === 'a')!;
        expect(a).toMatchObject({
          ...intent(policy, runId, 'a', 10),
          status: 'pending',
          resolvedAt: null,
          error: null,
        });
        expect(a.id).toEqual(expect.any(Number));
        expect(a.createdAt).toBeInstanceOf(Date);
        expect(pending.find((record) => record.key === 'b')!.size).toBeUndefined();

        await store.resolveIntents(runId, [
          { key: 'a', status: 'deleted' },
          { key: 'b', status: 'failed', error: 'EACCES' },
        ]);
        const byKey = new Map((await store.audit({ runId, limit: 10 })).map((record) => [record.key, record]));
        expect(byKey.get('a')).toMatchObject({ status: 'deleted', resolvedAt: expect.any(Date), error: null });
        expect(byKey.get('b')).toMatchObject({ status: 'failed', error: 'EACCES' });
        expect(byKey.get('c')).toMatchObject({ status: 'pending', resolvedAt: null });
      });

      it('lists pending intents of other runs and resolves them by id', async () => {
        const policy = policyName('stale');
        const crashed = randomUUID();
        const current = randomUUID();
        await store.recordIntents([
          intent(policy, crashed, 'x'),
          intent(policy, crashed, 'y'),
          intent(policy, current, 'z'),
        ]);
        await store.resolveIntents(crashed, [{ key: 'y', status: 'deleted' }]);

        expect((await store.pendingIntents(policy)).map((r) => r.key).sort()).toEqual(['x', 'z']);
        const stale = await store.pendingIntents(policy, current);
        expect(stale.map((record) => record.key)).toEqual(['x']);
        expect(await store.pendingIntents(policyName('unrelated'))).toEqual([]);

        await store.resolveStaleIntents([{ id: stale[0]!.id, status: 'abandoned' }]);
        expect(await store.pendingIntents(policy, current)).toEqual([]);
        expect((await store.audit({ runId: crashed, key: 'x', limit: 1 }))[0]).toMatchObject({
          status: 'abandoned',
          resolvedAt: expect.any(Date),
        });
      });

      it("a run's own resolution overwrites a recovery's abandoned, never any other resolution", async () => {
        const policy = policyName('overwrite');
        const stalled = randomUUID();
        await store.recordIntents([intent(policy, stalled, 'gone-later'), intent(policy, stalled, 'kept')]);
        // A run that took over found both present.
        const stale = await store.pendingIntents(policy);
        await store.resolveStaleIntents(stale.map((record) => ({ id: record.id, status: 'abandoned' as const })));
        await store.resolveIntents(stalled, [{ key: 'gone-later', status: 'deleted' }]);
        expect((await store.audit({ runId: stalled, key: 'gone-later', limit: 1 }))[0]).toMatchObject({
          status: 'deleted',
        });
        await store.resolveIntents(stalled, [{ key: 'gone-later', status: 'failed', error: 'late' }]);
        expect((await store.audit({ runId: stalled, key: 'gone-later', limit: 1 }))[0]).toMatchObject({
          status: 'deleted',
        });
        expect((await store.audit({ runId: stalled, key: 'kept', limit: 1 }))[0]).toMatchObject({
          status: 'abandoned',
        });
        // A recovery never overwrites a resolution.
        await store.resolveStaleIntents(stale.map((record) => ({ id: record.id, status: 'deleted' as const })));
        expect((await store.audit({ runId: stalled, key: 'kept', limit: 1 }))[0]).toMatchObject({
          status: 'abandoned',
        });
      });

      it('records already-resolved events', async () => {
        const policy = policyName('events');
        const runId = randomUUID();
        await store.recordEvents([{ ...intent(policy, runId, 'r'), action: 'restore', status: 'restored' }]);
        const [event] = await store.audit({ runId, limit: 10 });
        expect(event).toMatchObject({ key: 'r', action: 'restore', status: 'restored', resolvedAt: expect.any(Date) });
        expect(await store.pendingIntents(policy)).toEqual([]);
      });

      it('filters by run, policy and key, newest first, up to the limit', async () => {
        const policy = policyName('query');
        const [run1, run2] = [randomUUID(), randomUUID()];
        await store.recordIntents([intent(policy, run1, 'k1'), intent(policy, run1, 'k2')]);
        await store.recordIntents([intent(policy, run2, 'k1'), intent(policyName('noise'), run2, 'k1')]);

        expect((await store.audit({ policy, limit: 10 })).map((r) => [r.runId, r.key])).toEqual([
          [run2, 'k1'],
          [run1, 'k2'],
          [run1, 'k1'],
        ]);
        expect((await store.audit({ policy, key: 'k1', limit: 10 })).map((r) => r.runId)).toEqual([run2, run1]);
        expect(await store.audit({ runId: run2, limit: 10 })).toHaveLength(2);
        expect(await store.audit({ runId: run1, policy, key: 'k2', limit: 10 })).toHaveLength(1);
        expect(await store.audit({ policy, limit: 2 })).toHaveLength(2);
      });

      it('records governance actions with actor, reason, scope and subject, found by action', async () => {
        const policy = policyName('governance');
        const at = new Date('2025-02-03T04:05:06.789Z');
        const actions = [
          { action: 'hold_added', scope: policy, subject: 'legal/', detail: 'hold #7 on prefix "legal/"' },
          { action: 'hold_removed', scope: policy, subject: 'legal/', detail: 'hold #7 removed' },
          { action: 'paused', scope: policy, subject: policy, detail: `paused policy ${policy}` },
          { action: 'resumed', scope: policy, subject: policy, detail: `resumed policy ${policy}` },
          { action: 'lease_broken', scope: policy, subject: policy, detail: 'lease of run-1 broken', runId: 'run-1' },
          { action: 'limit_overridden', scope: policy, subject: 'run-2', detail: 'too many', runId: 'run-2' },
          {
            action: 'restored',
            scope: policy,
            subject: 'run-2',
            detail: '1 of 2 back',
            runId: 'run-2',
            status: 'failed',
          },
        ] as const;
        for (const event of actions)
          await recordGovernance(store, { ...event, actor: 'cli:alice@host', reason: `why ${event.action}`, at });

        const views = (await store.audit({ policy, limit: 100 })).map((record) => governanceView(record));
        expect(views.map((view) => view?.action)).toEqual(actions.map((event) => event.action).reverse());
        for (const event of actions) {
          const [record] = await store.audit({ policy, action: event.action, limit: 10 });
          expect(governanceView(record!)).toEqual({
            id: record!.id,
            action: event.action,
            status: 'status' in event ? event.status : 'recorded',
            actor: 'cli:alice@host',
            at: expect.any(Date),
            policy,
            scope: policy,
            subject: event.subject,
            reason: `why ${event.action}`,
            detail: event.detail,
            ...('runId' in event ? { runId: event.runId } : {}),
          });
        }
        // Over every policy: the scope `*`.
        await recordGovernance(store, {
          action: 'paused',
          actor: 'cli:bob@host',
          reason: 'incident 12',
          scope: '*',
          subject: '*',
          detail: 'paused every policy',
          at,
        });
        const global = await store.audit({ policy: '*', action: 'paused', limit: 1 });
        expect(governanceView(global[0]!)).toMatchObject({ scope: '*', actor: 'cli:bob@host', reason: 'incident 12' });
        expect(await store.pendingIntents(policy)).toEqual([]);
      });

      it('filters by action, outcome and the time a record was last written', async () => {
        const policy = policyName('filters');
        const runId = randomUUID();
        await store.recordIntents([intent(policy, runId, 'a'), intent(policy, runId, 'b'), intent(policy, runId, 'c')]);
        const before = await serverTime(store, policy, runId);
        await sleep(20);
        await store.resolveIntents(runId, [
          { key: 'a', status: 'deleted' },
          { key: 'b', status: 'failed', error: 'EACCES: permission denied' },
        ]);
        const failed = await store.audit({ policy, status: 'failed', limit: 10 });
        expect(failed.map((record) => [record.key, record.error])).toEqual([['b', 'EACCES: permission denied']]);
        expect((await store.audit({ policy, status: 'pending', limit: 10 })).map((record) => record.key)).toEqual([
          'c',
        ]);
        expect(await store.audit({ policy, action: 'restore', limit: 10 })).toEqual([]);
        expect(await store.audit({ policy, action: 'delete', limit: 10 })).toHaveLength(3);
        // Resolved after `before`: a and b; c was last written (created) before it.
        const since = new Date(before.getTime() + 1);
        expect((await store.audit({ policy, since, limit: 10 })).map((record) => record.key).sort()).toEqual([
          'a',
          'b',
        ]);
        expect((await store.audit({ policy, until: since, limit: 10 })).map((record) => record.key)).toEqual(['c']);
        expect(await store.audit({ policy, since, until: since, limit: 10 })).toEqual([]);
      });

      it('counts a period of one policy by run, action, status, rule and day of creation', async () => {
        const policy = policyName('counts');
        const [earlier, run, other] = [randomUUID(), randomUUID(), randomUUID()];
        await store.recordIntents([intent(policy, earlier, 'before-the-period')]);
        await store.resolveIntents(earlier, [{ key: 'before-the-period', status: 'deleted' }]);
        const from = new Date((await serverTime(store, policy, earlier)).getTime() + 1);
        await sleep(20);
        const legal = { rule: 'purpose=Legal: 7y' };
        await store.recordIntents([
          ...['a', 'b', 'c'].map((key) => intent(policy, run, key)),
          { ...intent(policy, run, 'd'), ...legal },
          { ...intent(policy, run, 'e'), ...legal },
          intent(policyName('noise'), other, 'a'),
        ]);
        await store.resolveIntents(run, [
          { key: 'a', status: 'deleted' },
          { key: 'b', status: 'deleted' },
          { key: 'c', status: 'failed', error: 'EACCES' },
          { key: 'd', status: 'deleted' },
        ]);
        await recordGovernance(store, {
          action: 'paused',
          scope: policy,
          subject: policy,
          actor: 'cli:ops',
          reason: 'month end',
          detail: 'paused',
          at: new Date(),
        });
        const to = new Date(Date.now() + 60_000);
        const counts = await store.auditCounts({ policy, from, to });
        const governance = counts.find((count) => count.action === 'paused');
        expect(governance).toMatchObject({ status: 'recorded', count: 1 });
        const deletions = counts
          .filter((count) => count.action === 'delete')
          .map(({ runId, status, rule, count }) => [runId === run ? 'run' : runId, status, rule, count])
          .sort();
        expect(deletions).toEqual([
          ['run', 'deleted', 'purpose=Legal: 7y', 1],
          ['run', 'deleted', 'retention: 30d', 2],
          ['run', 'failed', 'retention: 30d', 1],
          ['run', 'pending', 'purpose=Legal: 7y', 1],
        ]);
        const written = await store.audit({ policy, since: from, limit: 100 });
        const days = (dates: string[]) => [...new Set(dates)].sort();
        expect(days(counts.map((count) => count.day))).toEqual(
          days(written.map((record) => record.createdAt.toISOString().slice(0, 10))),
        );
        expect(await store.auditCounts({ policy, from: to, to: new Date(to.getTime() + 60_000) })).toEqual([]);
        // Counted by when each record was written: the earlier run's, resolved before `from`, is not in it.
        expect(counts.some((count) => count.runId === earlier)).toBe(false);
        const whole = await store.auditCounts({ policy, from: new Date(from.getTime() - 3_600_000), to });
        expect(whole.filter((count) => count.runId === earlier)).toMatchObject([{ status: 'deleted', count: 1 }]);
      });

      it('records and resolves a batch of 5,000 intents in one call each', async () => {
        const policy = policyName('batch');
        const runId = randomUUID();
        const keys = Array.from({ length: 5_000 }, (_, i) => `blob/${String(i).padStart(5, '0')}`);
        await store.recordIntents(keys.map((key, i) => intent(policy, runId, key, i)));
        expect(await store.pendingIntents(policy)).toHaveLength(5_000);
        await store.resolveIntents(
          runId,
          keys.map((key) => ({ key, status: 'deleted' as const })),
        );
        expect(await store.pendingIntents(policy)).toEqual([]);
        const records = await store.audit({ runId, limit: 10_000 });
        expect(records).toHaveLength(5_000);
        expect(records.every((record) => record.status === 'deleted')).toBe(true);
      });
    });
  });
}

/** When the (pending) records of a run were written, by the store's own clock. */
async function serverTime(store: ControlStore, policy: string, runId: string): Promise<Date> {
  const records = await store.audit({ policy, runId, limit: 100 });
  return new Date(Math.max(...records.map((record) => (record.resolvedAt ?? record.createdAt).getTime())));
}

function intent(policy: string, runId: string, key: string, size?: number): AuditIntent {
  return {
    runId,
    policy,
    store: 'fs:/srv/uploads',
    key,
    itemTimestamp: new Date('2024-03-01T12:34:56.789Z'),
    ...(size === undefined ? {} : { size }),
    rule: 'retention: 30d',
    cutoff: new Date('2024-04-01T00:00:00.000Z'),
    actor: 'cli:test@host',
    trigger: 'manual',
    action: 'delete',
  };
}

function runReport(overrides: Pick<RunReport, 'runId' | 'policy' | 'startedAt'>): RunReport {
  return {
    dataClass: 'blobs',
    store: 'fs:/srv/uploads',
    trigger: 'scheduled',
    dryRun: false,
    status: 'completed',
    scanned: 10,
    eligible: 4,
    deleted: 3,
    missing: 0,
    failed: 0,
    held: 1,
    kept: 0,
    notDeleted: [{ outcome: 'held', cause: 'hold #1', count: 1 }],
    unclassified: 0,
    finishedAt: '2025-01-01T00:00:07.250Z',
    durationSeconds: 7.25,
    bytesFreed: 1_234,
    backlog: 0,
    oldestOverdueSeconds: 0,
    budgetSeconds: 600,
    budgetUsedPercent: 1.2,
    sla: { status: 'ok', reasons: [] },
    cutoffs: [{ rule: 'retention: 30d', cutoff: '2024-12-02T00:00:00.000Z' }],
    items: [{ key: 'a', timestamp: '2024-01-01T00:00:00.000Z', outcome: 'deleted', rule: 'retention: 30d' }],
    ...overrides,
  };
}
