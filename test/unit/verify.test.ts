import { describe, expect, it } from 'vitest';
import type { AuditRecord, RunRecord } from '../../lib/core/control.ts';
import type { Hold, Item } from '../../lib/core/types.ts';
import { computeCutoffs } from '../../lib/policy/plan.ts';
import { type VerifyEvidence, verifyKey } from '../../lib/reports/verify.ts';

const NOW = new Date('2024-06-01T00:00:00.000Z');
const DAY = 86_400_000;
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);

const policy = { name: 'docs' };
const flat = computeCutoffs('30d', NOW);
const byPurpose = computeCutoffs({ by: 'purpose', rules: { Legal: '7y', General: '30d' } }, NOW);

function item(key: string, days: number, extra: Partial<Item> = {}): Item {
  return { key, timestamp: ago(days), ...extra };
}

function hold(id: number, key: string, prefix = false): Hold {
  return { id, policy: 'docs', key, prefix, reason: `case ${id}`, createdBy: 'cli:alice@host', createdAt: ago(1) };
}

function record(
  key: string,
  status: AuditRecord['status'],
  days: number,
  extra: Partial<AuditRecord> = {},
): AuditRecord {
  return {
    id: 1,
    runId: 'run-1',
    policy: 'docs',
    store: 'fs:/srv/docs',
    key,
    itemTimestamp: ago(60),
    rule: 'retention: 30d',
    cutoff: ago(days + 30),
    actor: 'lambda:retention-blobs',
    trigger: 'scheduled',
    action: 'delete',
    status,
    createdAt: ago(days),
    resolvedAt: status === 'pending' ? null : ago(days),
    error: null,
    ...extra,
  };
}

function evidence(overrides: Partial<VerifyEvidence>): VerifyEvidence {
  return {
    policy,
    key: 'a.pdf',
    cutoffs: flat,
    holds: [],
    items: [],
    records: [],
    currentPolicyHash: 'h1',
    ...overrides,
  };
}

const deletingRun = (hash: string): RunRecord => ({
  runId: 'run-1',
  policy: 'docs',
  status: 'completed',
  dryRun: false,
  startedAt: ago(2),
  finishedAt: ago(2),
  report: { policyHash: hash } as RunRecord['report'],
});

describe('verifyKey', () => {
  it.each<{ name: string; given: Partial<VerifyEvidence>; expected: Record<string, unknown> }>([
    {
      name: 'younger than its retention: retained, eligible 30 days after its timestamp',
      given: { items: [item('a.pdf', 10)] },
      expected: { state: 'retained', rule: 'retention: 30d', eligibleAt: ago(-20).toISOString() },
    },
    {
      name: 'exactly at the cutoff: still retained (eligible means strictly older)',
      given: { items: [item('a.pdf', 30)] },
      expected: { state: 'retained', eligibleAt: NOW.toISOString() },
    },
    {
      name: 'past its cutoff: overdue since it became eligible, with the last failed attempt',
      given: {
        items: [item('a.pdf', 45)],
        records: [record('a.pdf', 'failed', 1, { error: 'EACCES: permission denied' })],
      },
      expected: {
        state: 'overdue',
        overdueSince: ago(15).toISOString(),
        overdueSeconds: 15 * 86_400,
        lastAttempt: { runId: 'run-1', status: 'failed', error: 'EACCES: permission denied', at: ago(1).toISOString() },
      },
    },
    {
      name: 'held by an exact hold, even when overdue',
      given: { items: [item('a.pdf', 45)], holds: [hold(3, 'a.pdf'), hold(4, 'b.pdf')] },
      expected: {
        state: 'held',
        holds: [{ id: 3, key: 'a.pdf', prefix: false, reason: 'case 3', by: 'cli:alice@host' }],
      },
    },
    {
      name: 'a row held by a prefix hold on its linked file',
      given: {
        key: '7',
        items: [item('7', 45, { linkedKey: 'legal/7.pdf' })],
        holds: [hold(5, 'legal/', true)],
      },
      expected: { state: 'held', item: { key: '7', linkedKey: 'legal/7.pdf', timestamp: ago(45).toISOString() } },
    },
    {
      name: 'no rule for its purpose and no default: unclassified',
      given: { cutoffs: byPurpose, items: [item('a.pdf', 400, { attributes: { purpose: 'Medical' } })] },
      expected: { state: 'unclassified', attribute: { name: 'purpose', value: 'Medical' } },
    },
    {
      name: 'per-purpose rule: Legal rows are retained for 7 years',
      given: { cutoffs: byPurpose, items: [item('a.pdf', 400, { attributes: { purpose: 'Legal' } })] },
      expected: { state: 'retained', rule: 'purpose=Legal: 7y' },
    },
    {
      name: 'found by its linked file: the row is the item, other rows of that file listed',
      given: {
        key: 'docs/1.pdf',
        items: [item('1', 10, { linkedKey: 'docs/1.pdf' }), item('2', 10, { linkedKey: 'docs/1.pdf' })],
      },
      expected: { state: 'retained', item: { key: '1', linkedKey: 'docs/1.pdf' }, otherItems: ['2'] },
    },
    {
      name: 'gone, never deleted by the tool: absent',
      given: { records: [] },
      expected: { state: 'absent' },
    },
    {
      name: 'gone before a run could delete it: absent, and the run that found it gone is named',
      given: { records: [record('a.pdf', 'missing', 3)] },
      expected: { state: 'absent', summary: expect.stringContaining('run run-1 found it already gone') },
    },
  ])('$name', ({ given, expected }) => {
    expect(verifyKey(evidence(given))).toMatchObject(expected);
  });

  it('deleted: when, run, rule, cutoff, actor, the backup while kept, the policy hash it ran with', () => {
    const answer = verifyKey(
      evidence({
        policy: { name: 'docs', backup: { to: '/srv/backups', keepFor: '7d' } },
        records: [record('a.pdf', 'deleted', 2)],
        deletingRun: deletingRun('h0'),
      }),
    );
    expect(answer).toEqual({
      policy: 'docs',
      key: 'a.pdf',
      state: 'deleted',
      summary: `deleted at ${ago(2).toISOString()} by run run-1 (lambda:retention-blobs) under retention: 30d, cutoff ${ago(32).toISOString()}`,
      item: { key: 'a.pdf', timestamp: ago(60).toISOString() },
      rule: 'retention: 30d',
      cutoff: ago(32).toISOString(),
      deletedAt: ago(2).toISOString(),
      runId: 'run-1',
      actor: 'lambda:retention-blobs',
      backup: { location: '/srv/backups (run run-1)', restore: 'retention restore --run run-1 --key a.pdf' },
      policyHash: 'h0',
      configChanged: true,
    });
  });

  it('deleted: no backup once pruned, a later restore named, an unconfirmed intent said so', () => {
    const pruned = verifyKey(
      evidence({
        policy: { name: 'docs', backup: { to: '/srv/backups', keepFor: '7d' } },
        records: [record('a.pdf', 'deleted', 9)],
        deletingRun: deletingRun('h1'),
      }),
    );
    expect(pruned).toMatchObject({ state: 'deleted', configChanged: false });
    expect(pruned.backup).toBeUndefined();

    const restoredThenGone = verifyKey(
      evidence({
        records: [
          record('a.pdf', 'restored', 1, { action: 'restore', createdAt: ago(1) }),
          record('a.pdf', 'deleted', 2),
        ],
      }),
    );
    expect(restoredThenGone).toMatchObject({ state: 'deleted', restoredAt: ago(1).toISOString() });

    const pending = verifyKey(evidence({ records: [record('a.pdf', 'pending', 0)] }));
    expect(pending).toMatchObject({ state: 'deleted', summary: expect.stringContaining('intent still pending') });
  });

  it('present again after a deletion: what is there now decides', () => {
    const answer = verifyKey(evidence({ items: [item('a.pdf', 1)], records: [record('a.pdf', 'deleted', 2)] }));
    expect(answer.state).toBe('retained');
  });
});
