import { describe, expect, it } from 'vitest';
import type { AuditIntent, RunRecord } from '../../lib/core/control.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { buildComplianceReport } from '../../lib/reports/complianceRead.ts';
import { monthPeriod } from '../../lib/reports/period.ts';
import { FakeControl } from '../support/fakeControl.ts';
import { FakeStore } from '../support/fakeStore.ts';
import { hourlyFilesPolicy } from '../support/runs.ts';

/**
 * The read side against the in-memory control store, with a settable clock: a run that crosses
 * midnight between two months has records in both, and each month's report compares it whole
 * (its history figure is the whole run's), so neither month reports a false finding.
 */
let now = new Date('2026-10-31T23:58:00Z');
const clock = { now: () => now };

function intent(runId: string, key: string): AuditIntent {
  return {
    runId,
    policy: 'files',
    store: 'fs:/data',
    key,
    itemTimestamp: new Date('2026-01-01T00:00:00Z'),
    rule: 'retention: 30d',
    cutoff: new Date('2026-10-01T00:00:00Z'),
    actor: 'test',
    trigger: 'scheduled',
    action: 'delete',
  };
}

async function deleteAt(control: FakeControl, at: string, runId: string, keys: string[]): Promise<void> {
  now = new Date(at);
  await control.recordIntents(keys.map((key) => intent(runId, key)));
  await control.resolveIntents(
    runId,
    keys.map((key) => ({ key, status: 'deleted' as const })),
  );
}

function finished(runId: string, startedAt: string, finishedAt: string, deleted: number): RunRecord {
  const report = { deleted, failed: 0, held: 0, unclassified: 0, backlog: 0, oldestOverdueSeconds: 0 };
  return {
    runId,
    policy: 'files',
    status: 'completed',
    dryRun: false,
    startedAt: new Date(startedAt),
    finishedAt: new Date(finishedAt),
    report: { ...report, status: 'completed', sla: { status: 'ok', reasons: [] } } as unknown as RunReport,
  };
}

describe('buildComplianceReport', () => {
  it('compares a run that crosses the edge of the period with all of its records', async () => {
    const control = new FakeControl(clock);
    await deleteAt(control, '2026-10-31T23:58:30Z', 'edge', ['a', 'b']);
    await deleteAt(control, '2026-11-01T00:01:00Z', 'edge', ['c', 'd', 'e']);
    await deleteAt(control, '2026-11-15T02:00:30Z', 'inside', ['f', 'g', 'h', 'i']);
    control.runs.set('edge', finished('edge', '2026-10-31T23:58:00Z', '2026-11-01T00:01:30Z', 5));
    control.runs.set('inside', finished('inside', '2026-11-15T02:00:00Z', '2026-11-15T02:01:00Z', 3));
    const sources = [{ policy: hourlyFilesPolicy(), store: new FakeStore() }];
    const at = new Date('2026-12-07T00:00:00Z');

    const november = await buildComplianceReport(control, sources, monthPeriod('2026-11'), at);
    const [files] = november.policies;
    expect(files).toMatchObject({ deleted: 3 + 4, reconciliation: { audit_deleted: 7, history_deleted: 3 } });
    // The edge run reconciles (5 = 2 in October + 3 in November); the inside one says 3 for 4 records.
    expect(files!.reconciliation.findings).toEqual([
      expect.stringMatching(/^run inside: history says 3 deleted, the audit trail has 4 record\(s\)/),
    ]);
    expect(files!.reconciliation.runs_checked).toBe(2);
    expect(files!.days.find((day) => day.day === '2026-11-01')!.deleted).toBe(3);

    const october = await buildComplianceReport(control, sources, monthPeriod('2026-10'), at);
    expect(october.policies[0]).toMatchObject({ deleted: 2, reconciliation: { findings: [], runs_checked: 1 } });
  });
});
