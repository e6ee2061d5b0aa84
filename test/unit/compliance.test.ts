import { describe, expect, it } from 'vitest';
import type { AuditCount, RunRecord } from '../../lib/core/control.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { ConfigError } from '../../lib/errors.ts';
import { assessPeriod, type PolicyPeriodData, purposeOf } from '../../lib/reports/compliance.ts';
import { chart } from '../../lib/reports/complianceHtml.ts';
import { instantsPeriod, missedRuns, monthPeriod } from '../../lib/reports/period.ts';
import { mergeSources, reconcile } from '../../lib/reports/reconcile.ts';
import { hourlyFilesPolicy, runRecord } from '../support/runs.ts';

// A day in November 2026, reported the next morning.
const PERIOD = instantsPeriod(new Date('2026-11-10T00:00:00Z'), new Date('2026-11-11T00:00:00Z'));
const NOW = new Date('2026-11-11T09:00:00Z');
const END = PERIOD.to;

/** A run that started `minutesBeforeEnd` before the period's end and took a minute. */
const run = (minutesBeforeEnd: number, status: RunRecord['status'], report: Partial<RunReport> = {}): RunRecord =>
  runRecord(END, minutesBeforeEnd, status, {
    status: status as RunReport['status'],
    deleted: 0,
    failed: 0,
    held: 0,
    unclassified: 0,
    backlog: 0,
    oldestOverdueSeconds: 0,
    ...report,
  });

const count = (
  runId: string,
  status: AuditCount['status'],
  n: number,
  extra: Partial<AuditCount> = {},
): AuditCount => ({
  runId,
  action: 'delete',
  status,
  rule: 'retention: 30d',
  day: '2026-11-10',
  count: n,
  ...extra,
});

/** Every hour of the day ran (newest first), each deleting 2 items recorded in the audit trail. */
function hourlyDay(overrides: Partial<RunReport> = {}): Pick<PolicyPeriodData, 'runs' | 'periodCounts' | 'runCounts'> {
  const runs = Array.from({ length: 24 }, (_, hour) => run(60 * (hour + 1), 'completed', { deleted: 2 }));
  if (Object.keys(overrides).length > 0) runs[0] = { ...runs[0]!, report: { ...runs[0]!.report!, ...overrides } };
  const periodCounts = runs.map((r) => count(r.runId, 'deleted', 2));
  return { runs, periodCounts, runCounts: new Map(runs.map((r) => [r.runId, [count(r.runId, 'deleted', 2)]])) };
}

const data = (parts: Pick<PolicyPeriodData, 'runs' | 'periodCounts' | 'runCounts'>): PolicyPeriodData => ({
  ...parts,
  disagreements: [],
  storeError: null,
  now: NOW,
});

describe('periods', () => {
  it('takes a month in UTC, and refuses what is not one naming --month', () => {
    expect(monthPeriod('2026-11')).toEqual({
      from: new Date('2026-11-01T00:00:00Z'),
      to: new Date('2026-12-01T00:00:00Z'),
      label: '2026-11',
    });
    expect(monthPeriod('2026-12').to).toEqual(new Date('2027-01-01T00:00:00Z'));
    for (const bad of ['2026-13', '2026-00', '2026-1', 'Nov']) {
      expect(() => monthPeriod(bad)).toThrow(ConfigError);
      expect(() => monthPeriod(bad)).toThrow(/--month/);
    }
    expect(() => instantsPeriod(END, END)).toThrow(/--to/);
  });

  it('counts the scheduled runs nobody served, a run a minute early serving its slot', () => {
    const served = [run(24 * 60 + 1, 'completed'), run(23 * 60, 'completed'), run(60, 'failed')];
    // Hourly: 24 slots; 00:00 served a minute early, 01:00, and 23:00 (a failed run still ran).
    expect(missedRuns('0 * * * *', served, PERIOD, NOW)).toEqual({
      count: 21,
      first: '2026-11-10T02:00:00.000Z',
      last: '2026-11-10T22:00:00.000Z',
    });
    // Not due yet is not missed: reported at 12:30 on the day, 02:00 to 12:00 are.
    expect(missedRuns('0 * * * *', served, PERIOD, new Date('2026-11-10T12:30:00Z')).count).toBe(11);
    // A dry run does not serve its slot.
    const dry = { ...run(30, 'completed'), dryRun: true };
    expect(missedRuns('0 23 * * *', [run(25 * 60, 'completed'), dry], PERIOD, NOW).count).toBe(1);
  });

  it("slots before the policy's first recorded run are not missed; a policy that never ran missed them all", () => {
    expect(missedRuns('0 * * * *', [run(60, 'completed')], PERIOD, NOW).count).toBe(0);
    // Known from a dry run at 21:30: 22:00 and 23:00 were due, and a dry run serves neither.
    expect(missedRuns('0 * * * *', [{ ...run(150, 'completed'), dryRun: true }], PERIOD, NOW).count).toBe(2);
    expect(missedRuns('0 * * * *', [], PERIOD, NOW).count).toBe(24);
  });
});

describe('mergeSources', () => {
  it("counts each record once: the control store's for a run and action, else the store's own trail", () => {
    const merged = mergeSources({
      control: [
        count('scan-path', 'deleted', 3),
        count('dropped', 'deleted', 2, { action: 'partition_drop', rule: 'partition of 500 rows, all past retention' }),
      ],
      store: [
        count('scan-path', 'deleted', 3),
        count('one-statement', 'deleted', 5000),
        count('dropped', 'deleted', 1000, { action: 'partition_drop', rule: 'partition entirely past the cutoffs' }),
      ],
    });
    expect(merged.disagreements).toEqual([]);
    expect(merged.counts.map((c) => [c.runId, c.count])).toEqual([
      ['scan-path', 3],
      ['dropped', 1000],
      ['one-statement', 5000],
    ]);
    const disagree = mergeSources({ control: [count('r', 'deleted', 3)], store: [count('r', 'deleted', 4)] });
    expect(disagree.disagreements).toEqual([{ runId: 'r', action: 'delete', control: 3, store: 4 }]);
  });
});

describe('reconcile', () => {
  it('compares each run whole; a crashed run is listed, not a finding; a difference or a stranger is', () => {
    const completed = run(120, 'completed', { deleted: 5 });
    const crashed = { ...run(60, 'crashed'), report: null };
    const result = reconcile({
      policy: 'files',
      runs: [crashed, completed],
      runCounts: new Map([
        [completed.runId, [count(completed.runId, 'deleted', 4), count(completed.runId, 'failed', 1)]],
        [crashed.runId, [count(crashed.runId, 'deleted', 7)]],
        ['ghost', [count('ghost', 'deleted', 2)]],
      ]),
      periodCounts: [count(completed.runId, 'deleted', 4), count(crashed.runId, 'deleted', 7)],
      disagreements: [],
      startedInPeriod: new Set([completed.runId, crashed.runId]),
    });
    expect(result).toMatchObject({ audit_deleted: 11, history_deleted: 5, runs_checked: 1 });
    expect(result.unreported).toMatchObject([{ run_id: crashed.runId, status: 'crashed', audit_deleted: 7 }]);
    expect(result.findings).toEqual([
      expect.stringMatching(/^run run-120: history says 5 deleted, the audit trail has 4 record\(s\)/),
      expect.stringMatching(/^run ghost: 2 deletion\(s\) in the audit trail, but run history has no such run/),
    ]);
  });
});

describe('assessPeriod', () => {
  it('is compliant when every run ran, reconciles and leaves nothing overdue', () => {
    const day = hourlyDay();
    // The day before is another period's: its runs are not reconciled here.
    day.runs.push(run(25 * 60, 'completed', { deleted: 9 }));
    const report = assessPeriod(hourlyFilesPolicy(), data(day), PERIOD);
    expect(report).toMatchObject({
      verdict: 'compliant',
      reasons: [],
      deleted: 48,
      failure_rate_percent: 0,
      missed_runs: { count: 0 },
      runs: { total: 24, completed: 24 },
      end: { run_id: 'run-60', held: 0, unclassified: 0, backlog: 0 },
      purposes: [{ purpose: 'retention', deleted: 48, failed: 0, kept: 0, pending: 0 }],
    });
    expect(report.days).toEqual([{ day: '2026-11-10', deleted: 48, backlog: 0, oldest_overdue_seconds: 0 }]);
  });

  it('is not compliant with items kept forever as unclassified, or overdue past the SLA at the end', () => {
    const unclassified = assessPeriod(hourlyFilesPolicy(), data(hourlyDay({ unclassified: 7 })), PERIOD);
    expect(unclassified.verdict).toBe('attention');
    expect(unclassified.reasons).toEqual([
      expect.stringMatching(/^7 item\(s\) match no retention rule and are kept forever \(unclassified, run run-60\)/),
    ]);
    const overdue = assessPeriod(
      hourlyFilesPolicy({ sla: { maxOverdue: '1d' } }),
      data(hourlyDay({ backlog: 30, oldestOverdueSeconds: 3 * 86_400, failed: 2 })),
      PERIOD,
    );
    expect(overdue.reasons).toEqual([
      expect.stringMatching(/^backlog: 30 item\(s\) overdue at the end of the period, the oldest 3d past its cutoff/),
    ]);
    expect(overdue).toMatchObject({ failed: 2, failure_rate_percent: 4 });
  });

  it('puts findings first and counts governance actions and deletions per purpose', () => {
    const day = hourlyDay();
    day.runCounts.set('run-60', [count('run-60', 'deleted', 1)]);
    day.periodCounts.push(
      count('', 'recorded', 2, { action: 'paused', rule: 'maintenance' }),
      count('run-120', 'deleted', 3, { rule: 'purpose=Legal: 7y' }),
    );
    const report = assessPeriod(hourlyFilesPolicy(), data(day), PERIOD);
    expect(report.reasons[0]).toMatch(/^reconciliation: run run-60: history says 2 deleted/);
    expect(report.governance).toEqual({ paused: 2 });
    expect(report.purposes.map((p) => [p.purpose, p.deleted])).toEqual([
      ['purpose=Legal', 3],
      ['retention', 48],
    ]);
    expect(purposeOf('partition of 5 rows, all past retention')).toBe('partitions');
  });

  it("says when the store's own trail could not be read, instead of reporting its deletions as none", () => {
    const report = assessPeriod(hourlyFilesPolicy(), { ...data(hourlyDay()), storeError: 'ECONNREFUSED' }, PERIOD);
    expect(report.verdict).toBe('attention');
    expect(report.reasons).toEqual([
      expect.stringMatching(/^reconciliation: the store's own audit trail .* could not be read \(ECONNREFUSED\)/),
    ]);
  });
});

describe('chart', () => {
  it('draws a bar per day and the overdue line, scaled to the largest values', () => {
    const svg = chart([
      { day: '2026-11-01', deleted: 10, backlog: 0, oldest_overdue_seconds: 7200 },
      { day: '2026-11-02', deleted: 0, backlog: null, oldest_overdue_seconds: null },
      { day: '2026-11-03', deleted: 5, backlog: 3, oldest_overdue_seconds: 3600 },
    ]);
    expect(svg.match(/<rect /g)).toHaveLength(3);
    expect(svg).toContain('<title>2026-11-01: 10 deleted</title>');
    expect(svg.match(/<circle /g)).toHaveLength(2);
    expect(svg).toContain('2.0 h');
  });
});
