import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditIntent, ControlStore } from '../../lib/core/control.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { verifyAuditTrails } from '../../lib/reports/auditVerify.ts';

/**
 * What someone with write access to the control store's backend can do behind the tool's back
 * (on PostgreSQL: as the owner, triggers disabled for the statement).
 */
export interface Tamper {
  editRecord(id: number, key: string): Promise<void>;
  deleteRecord(id: number): Promise<void>;
  /** Exchanges the positions of two entries of a chain. */
  swapEntries(chain: string, a: number, b: number): Promise<void>;
  deleteEntry(chain: string, seq: number): Promise<void>;
}

/**
 * Invariant 13 for a ControlStore backend: every audit write is chained, an intact trail
 * verifies, and `retention audit verify` (verifyAuditTrails) names the first record or link that
 * was changed, removed or reordered. `setup` returns a migrated store on a real local backend.
 */
export function auditChainContract(
  name: string,
  setup: () => Promise<{ store: ControlStore; tamper: Tamper; teardown(): Promise<void> }>,
): void {
  describe(`audit chains: ${name}`, () => {
    let store: ControlStore;
    let tamper: Tamper;
    let teardown: () => Promise<void>;
    const policyName = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
    const verify = (policy: string, since?: Date) =>
      verifyAuditTrails(store, [], { policies: [policy], ...(since ? { since } : {}) });

    beforeAll(async () => {
      ({ store, tamper, teardown } = await setup());
    });
    afterAll(async () => teardown?.());

    /** A run's life in the trail: intents, its resolutions, a recovery of a stalled run, a restore. */
    async function trail(policy: string): Promise<{ runId: string; ids: Map<string, number> }> {
      const runId = randomUUID();
      const stalled = randomUUID();
      await store.recordIntents(['a', 'b', 'c', 'd'].map((key) => intent(policy, runId, key)));
      await store.recordIntents([intent(policy, stalled, 'late')]);
      await store.resolveIntents(runId, [
        { key: 'a', status: 'deleted' },
        { key: 'b', status: 'failed', error: 'EACCES' },
      ]);
      const [late] = await store.pendingIntents(policy, runId);
      await store.resolveStaleIntents([{ id: late!.id, status: 'abandoned' }]);
      await store.resolveIntents(stalled, [{ key: 'late', status: 'deleted' }]);
      await store.resolveIntents(runId, [
        { key: 'c', status: 'deleted' },
        { key: 'd', status: 'missing' },
      ]);
      await store.recordEvents([{ ...intent(policy, runId, 'a'), action: 'restore', status: 'restored' }]);
      const records = await store.audit({ policy, limit: 100 });
      return { runId, ids: new Map(records.filter((r) => r.action === 'delete').map((r) => [r.key, r.id])) };
    }

    it('chains every write, resolutions and recoveries included: the trail verifies intact', async () => {
      const policy = policyName('intact');
      await trail(policy);
      await store.recordEvents([{ ...intent(policyName('other'), 'r', 'x'), status: 'deleted' }]);
      const entries = await store.chains.entries(policy, 1, 100);
      expect(entries.map((entry) => entry.kind)).toEqual([
        'record',
        'record',
        'resolve',
        'resolve',
        'resolve',
        'resolve',
        'record',
      ]);
      expect(entries.map((entry) => entry.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(await store.chains.head(policy)).toMatchObject({ seq: 7, hash: entries[6]!.hash });
      const report = await verify(policy);
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ intact: true, verified: { records: 6, entries: 7 } });
    });

    it('concurrent writers of one chain take turns: no seq lost, none twice', async () => {
      const policy = policyName('concurrent');
      const runs = Array.from({ length: 6 }, () => randomUUID());
      await Promise.all(runs.map((runId, i) => store.recordIntents([intent(policy, runId, `k${i}`)])));
      await Promise.all([
        ...runs.map((runId, i) => store.resolveIntents(runId, [{ key: `k${i}`, status: 'deleted' }])),
        store.recordEvents([{ ...intent(policy, runs[0]!, 'k0'), action: 'restore', status: 'restored' }]),
      ]);
      const entries = await store.chains.entries(policy, 1, 100);
      expect(entries.map((entry) => entry.seq)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
      expect((await verify(policy)).intact).toBe(true);
    });

    it('names a record changed behind its back', async () => {
      const policy = policyName('changed');
      const { ids } = await trail(policy);
      await tamper.editRecord(ids.get('b')!, 'someone-else');
      const report = await verify(policy);
      expect(report.intact).toBe(false);
      expect(report.problems[0]).toMatchObject({ kind: 'changed', chain: policy, recordId: ids.get('b') });
      expect(report.problems[0]!.message).toContain('key "someone-else"');
    });

    it('names a record removed', async () => {
      const policy = policyName('removed');
      const { ids } = await trail(policy);
      await tamper.deleteRecord(ids.get('c')!);
      const report = await verify(policy);
      expect(report.problems).toEqual([expect.objectContaining({ kind: 'removed', recordId: ids.get('c') })]);
    });

    it('names entries reordered, and an entry removed', async () => {
      const reordered = policyName('reordered');
      await trail(reordered);
      await tamper.swapEntries(reordered, 3, 4);
      expect((await verify(reordered)).problems[0]).toMatchObject({ kind: 'reordered', seq: 3 });

      const gap = policyName('gap');
      await trail(gap);
      await tamper.deleteEntry(gap, 2);
      expect((await verify(gap)).problems[0]).toMatchObject({ kind: 'removed', seq: 3 });
    });

    it('catches a chain cut short by the head a run recorded at its finish (and a rewritten one)', async () => {
      const policy = policyName('anchored');
      const { runId } = await trail(policy);
      const head = await store.chains.head(policy);
      await store.finishRun(finished(runId, policy, { control: head }));
      expect((await verify(policy)).intact).toBe(true);
      await tamper.deleteEntry(policy, head.seq);
      const report = await verify(policy);
      expect(report.problems).toContainEqual(
        expect.objectContaining({ kind: 'removed', seq: head.seq, message: expect.stringContaining(`run ${runId}`) }),
      );
    });

    it('with --since, verifies what was written since (a change before it is out of scope)', async () => {
      const policy = policyName('since');
      const { ids } = await trail(policy);
      const since = new Date(Date.now() + 1);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const later = randomUUID();
      await store.recordIntents([intent(policy, later, 'new')]);
      await store.resolveIntents(later, [{ key: 'new', status: 'deleted' }]);
      await tamper.editRecord(ids.get('a')!, 'old-change');
      const report = await verify(policy, since);
      expect(report).toMatchObject({ intact: true, verified: { entries: 2, records: 1 } });
      const [fresh] = await store.audit({ runId: later, limit: 1 });
      await tamper.editRecord(fresh!.id, 'new-change');
      expect((await verify(policy, since)).problems[0]).toMatchObject({ kind: 'changed', recordId: fresh!.id });
    });
  });
}

function intent(policy: string, runId: string, key: string): AuditIntent {
  return {
    runId,
    policy,
    store: 'fs:/srv/uploads',
    key,
    itemTimestamp: new Date('2024-03-01T12:34:56.789Z'),
    size: 42,
    rule: 'retention: 30d',
    cutoff: new Date('2024-04-01T00:00:00.000Z'),
    actor: 'cli:test@host',
    trigger: 'manual',
    action: 'delete',
  };
}

function finished(runId: string, policy: string, auditChain: RunReport['auditChain']): RunReport {
  return {
    runId,
    policy,
    dataClass: 'blobs',
    store: 'fs:/srv/uploads',
    trigger: 'manual',
    dryRun: false,
    status: 'completed',
    scanned: 4,
    eligible: 4,
    deleted: 2,
    missing: 1,
    failed: 1,
    held: 0,
    kept: 0,
    notDeleted: [],
    unclassified: 0,
    startedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    durationSeconds: 1,
    bytesFreed: 0,
    backlog: 0,
    oldestOverdueSeconds: 0,
    budgetSeconds: 600,
    budgetUsedPercent: 1,
    sla: { status: 'ok', reasons: [] },
    cutoffs: [],
    ...(auditChain ? { auditChain } : {}),
  };
}
