import type { PolicyConfig } from '../config/schema.ts';
import {
  type AuditCount,
  GOVERNANCE_ACTIONS,
  type GovernanceAction,
  isPolicyRun,
  type RunRecord,
} from '../core/control.ts';
import { durationMs, formatDuration } from '../core/durations.ts';
import type { DataClass } from '../core/types.ts';
import { latestOutcome } from './health.ts';
import { type MissedRuns, missedRuns, type Period, periodDays } from './period.ts';
import { type Reconciliation, reconcile, type SourceDisagreement } from './reconcile.ts';

/**
 * The compliance report for a period (pure): per policy and per purpose, what was deleted (the
 * audit trail's count), what failed, what is still held, unclassified and overdue at the end of
 * the period, SLA breaches, missed runs and governance actions, and the reconciliation of run
 * history with the audit trail. A policy is `compliant` only with nothing to explain: every
 * difference, missed run, breach, unclassified item or overdue backlog is a reason, with its fix.
 */
export type Verdict = 'compliant' | 'attention' | 'disabled';

/** What the read side gathered about one policy (complianceRead.ts). */
export interface PolicyPeriodData {
  /** Newest first: every run started before the period's end, back to the first one before its start. */
  runs: RunRecord[];
  /** The period's records, control store and store trail merged (one count per record). */
  periodCounts: AuditCount[];
  /** Each run's own records, whole, for the runs started in the period or with records in it. */
  runCounts: Map<string, AuditCount[]>;
  disagreements: SourceDisagreement[];
  /** The store's own trail could not be read: its counts are missing (a finding, not a gap). */
  storeError: string | null;
  /** When the report was made: scheduled runs not yet due are not missed. */
  now: Date;
}

export interface PurposeFigures {
  /** The rule's subject: `purpose=Legal`, `default`, `retention` (one rule), `partitions`. */
  purpose: string;
  deleted: number;
  failed: number;
  kept: number;
  pending: number;
}

export interface DayFigures {
  day: string;
  deleted: number;
  /** After the last live run that finished that day and measured them; null on days without one. */
  backlog: number | null;
  oldest_overdue_seconds: number | null;
}

export interface PolicyPeriodReport {
  policy: string;
  data_class: DataClass;
  enabled: boolean;
  schedule: string;
  max_overdue: string;
  verdict: Verdict;
  /** Why the verdict is `attention`, each with its fix; reconciliation findings first. */
  reasons: string[];
  /** Items deleted in the period: the audit trail's records with outcome `deleted` (rows for partition drops). */
  deleted: number;
  /** Items that failed, per the reports of the runs started in the period. */
  failed: number;
  /** failed / (deleted + failed) of those runs, in percent, two decimals. */
  failure_rate_percent: number;
  /** At the end of the period: the last live run before it ended that measured them (null: none did). */
  end: {
    run_id: string | null;
    held: number | null;
    unclassified: number | null;
    backlog: number | null;
    oldest_overdue_seconds: number | null;
  };
  runs: Record<RunRecord['status'], number> & { total: number };
  sla_breaches: number;
  missed_runs: MissedRuns;
  governance: Partial<Record<GovernanceAction, number>>;
  /** Records still `pending` (an interrupted run's; the next run resolves them). */
  pending: number;
  purposes: PurposeFigures[];
  days: DayFigures[];
  reconciliation: Reconciliation;
}

/** A run due this long ago and not started is missed (as the health check allows). */
const MISSED_AFTER_MS = 15 * 60_000;

export function assessPeriod(policy: PolicyConfig, data: PolicyPeriodData, period: Period): PolicyPeriodReport {
  // The policy's own runs: a reconcile run's orphans are not its backlog (its deletions still count, from the trail).
  const live = data.runs.filter(isPolicyRun);
  const inPeriod = live.filter((run) => run.startedAt >= period.from && run.startedAt < period.to);
  const atEnd = latestOutcome(live.filter((run) => run.startedAt < period.to && run.finishedAt !== null));
  const reconciliation = reconcile({
    policy: policy.name,
    runs: data.runs,
    runCounts: data.runCounts,
    periodCounts: data.periodCounts,
    disagreements: data.disagreements,
    startedInPeriod: new Set(inPeriod.map((run) => run.runId)),
  });
  const runs: PolicyPeriodReport['runs'] = {
    total: inPeriod.length,
    completed: 0,
    partial: 0,
    failed: 0,
    skipped_paused: 0,
    skipped_locked: 0,
    aborted_limit: 0,
    running: 0,
    crashed: 0,
  };
  let failed = 0;
  let slaBreaches = 0;
  for (const run of inPeriod) {
    runs[run.status] += 1;
    failed += run.report?.failed ?? 0;
    if (run.report?.sla.status === 'breach') slaBreaches += 1;
  }
  const attempted = reconciliation.history_deleted + failed;
  const report: PolicyPeriodReport = {
    policy: policy.name,
    data_class: policy.class,
    enabled: policy.enabled,
    schedule: policy.schedule,
    max_overdue: policy.sla.maxOverdue,
    verdict: 'compliant',
    reasons: [],
    deleted: reconciliation.audit_deleted,
    failed,
    failure_rate_percent: attempted === 0 ? 0 : Math.round((failed / attempted) * 10_000) / 100,
    end: {
      run_id: atEnd?.runId ?? null,
      held: atEnd?.report?.held ?? null,
      unclassified: atEnd?.report?.unclassified ?? null,
      backlog: atEnd?.report?.backlog ?? null,
      oldest_overdue_seconds: atEnd?.report?.oldestOverdueSeconds ?? null,
    },
    runs,
    sla_breaches: slaBreaches,
    missed_runs: policy.enabled
      ? missedRuns(policy.schedule, data.runs, period, new Date(data.now.getTime() - MISSED_AFTER_MS))
      : { count: 0, first: null, last: null },
    governance: governanceCounts(data.periodCounts),
    pending: data.periodCounts.filter((c) => c.status === 'pending').reduce((sum, c) => sum + c.count, 0),
    purposes: purposeFigures(data.periodCounts),
    days: dayFigures(data.periodCounts, live, period),
    reconciliation,
  };
  report.reasons = policy.enabled ? attentionReasons(policy, report, data.storeError) : [];
  report.verdict = !policy.enabled ? 'disabled' : report.reasons.length > 0 ? 'attention' : 'compliant';
  return report;
}

export function governanceCounts(counts: AuditCount[]): Partial<Record<GovernanceAction, number>> {
  const actions: Partial<Record<GovernanceAction, number>> = {};
  for (const count of counts) {
    if (!(GOVERNANCE_ACTIONS as readonly string[]).includes(count.action)) continue;
    const action = count.action as GovernanceAction;
    actions[action] = (actions[action] ?? 0) + count.count;
  }
  return actions;
}

/** `purpose=Legal: 7y` → `purpose=Legal`; a partition drop's rule → `partitions`. */
export function purposeOf(rule: string): string {
  if (rule.startsWith('partition')) return 'partitions';
  const colon = rule.lastIndexOf(': ');
  return colon < 0 ? rule : rule.slice(0, colon);
}

function purposeFigures(counts: AuditCount[]): PurposeFigures[] {
  const purposes = new Map<string, PurposeFigures>();
  for (const count of counts) {
    if (count.action !== 'delete' && count.action !== 'partition_drop') continue;
    const purpose = purposeOf(count.rule);
    const figures = purposes.get(purpose) ?? { purpose, deleted: 0, failed: 0, kept: 0, pending: 0 };
    if (
      count.status === 'deleted' ||
      count.status === 'failed' ||
      count.status === 'kept' ||
      count.status === 'pending'
    )
      figures[count.status] += count.count;
    purposes.set(purpose, figures);
  }
  return [...purposes.values()].sort((a, b) => a.purpose.localeCompare(b.purpose));
}

function dayFigures(counts: AuditCount[], live: RunRecord[], period: Period): DayFigures[] {
  const days = new Map(
    periodDays(period).map((day) => [
      day,
      { day, deleted: 0, backlog: null, oldest_overdue_seconds: null } as DayFigures,
    ]),
  );
  for (const count of counts) {
    const figures = days.get(count.day);
    if (figures && count.status === 'deleted' && (count.action === 'delete' || count.action === 'partition_drop'))
      figures.deleted += count.count;
  }
  // Oldest first, so the last run measured on a day is the one that stays.
  for (const run of [...live].reverse()) {
    const measured = run.report?.backlog ?? null;
    if (measured === null || run.finishedAt === null) continue;
    const figures = days.get(run.finishedAt.toISOString().slice(0, 10));
    if (!figures || run.finishedAt >= period.to) continue;
    figures.backlog = measured;
    figures.oldest_overdue_seconds = run.report?.oldestOverdueSeconds ?? null;
  }
  return [...days.values()];
}

function attentionReasons(policy: PolicyConfig, report: PolicyPeriodReport, storeError: string | null): string[] {
  const name = policy.name;
  const run = `\`retention run --policy ${name}\``;
  const reasons = report.reconciliation.findings.map((finding) => `reconciliation: ${finding}`);
  if (storeError)
    reasons.push(
      `reconciliation: the store's own audit trail (retention.row_audit) could not be read (${storeError}): ` +
        `its deletions are not counted; fix the connection and report again`,
    );
  const { end } = report;
  if (end.run_id === null)
    reasons.push(`no live run finished by the end of the period: backlog and overdue unknown; run ${run}`);
  if ((end.unclassified ?? 0) > 0)
    reasons.push(
      `${end.unclassified} item(s) match no retention rule and are kept forever (unclassified, run ${end.run_id}); ` +
        `add a rule for their ${policy.class === 'rows' ? 'column value' : 'attribute'} or a \`default\``,
    );
  const overdue = end.oldest_overdue_seconds;
  if ((end.backlog ?? 0) > 0 && overdue !== null && overdue * 1000 > durationMs(policy.sla.maxOverdue))
    reasons.push(
      `backlog: ${end.backlog} item(s) overdue at the end of the period, the oldest ` +
        `${formatDuration(Math.round(overdue * 1000))} past its cutoff (limit ${policy.sla.maxOverdue}); ${run} to catch up`,
    );
  const { missed_runs: missed } = report;
  if (missed.count > 0)
    reasons.push(
      `${missed.count} scheduled run(s) missed (first ${missed.first}, last ${missed.last}); ` +
        'check that the schedule is deployed and firing (`retention status`)',
    );
  if (report.sla_breaches > 0)
    reasons.push(`${report.sla_breaches} run(s) breached the SLA; see \`retention history --policy ${name}\``);
  if (report.runs.failed > 0)
    reasons.push(`${report.runs.failed} run(s) failed; see \`retention history --policy ${name}\``);
  if (report.pending > 0)
    reasons.push(
      `${report.pending} deletion(s) not yet confirmed in the audit trail (left by an interrupted run): ` +
        `the next run resolves them; run ${run} now`,
    );
  return reasons;
}
