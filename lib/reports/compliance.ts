import type { PolicyConfig } from '../config/schema.ts';
import type { PauseState, RunRecord } from '../core/control.ts';
import { durationMs, formatDuration } from '../core/durations.ts';
import type { DataClass, SlaStatus } from '../core/types.ts';
import { computeCutoffs, describeCutoffs } from '../policy/plan.ts';
import { assessPolicy, DEFAULT_MISSED_AFTER_MS, latestOutcome, type PolicyHealth, windowComplete } from './health.ts';

/**
 * The compliance report (pure): per policy, what its live runs did over a window and whether it is
 * doing its job. Dry runs prove nothing and are left out. The health verdict is `assessPolicy`'s;
 * this adds what a compliance reading needs on top: failures anywhere in the window, the backlog
 * left by the latest run, unconfirmed deletions, pauses. Every reason says what to do about it.
 */
export type Verdict = 'compliant' | 'attention' | 'disabled';

/** What the control store holds about one policy (read by the caller). */
export interface PolicyRecords {
  /** Newest first, at most `runsRead` of them, dry runs included (as `ControlStore.listRuns` returns them). */
  runs: RunRecord[];
  /** Holds that apply to the policy. */
  holds: number;
  pause: PauseState | null;
  /** Audit intents whose outcome is not recorded yet (left by an interrupted run). */
  pendingIntents: number;
}

export interface ReportWindow {
  since: Date;
  until: Date;
  /** How many runs per policy were asked for, to tell whether the window was read whole. */
  runsRead: number;
}

export interface PolicyCompliance {
  policy: string;
  data_class: DataClass;
  enabled: boolean;
  schedule: string;
  /** Each rule as configured, with the cutoff it gives at `until`. */
  retention: Array<{ rule: string; cutoff: string }>;
  max_overdue: string;
  verdict: Verdict;
  /** Why the verdict is `attention`, each with its fix; empty otherwise. */
  reasons: string[];
  /** Live runs started in the window, by status. */
  runs: Record<RunRecord['status'], number> & { total: number };
  totals: { deleted: number; failed: number; bytes_freed: number };
  sla: Record<SlaStatus, number>;
  /** The newest live run that decided something (runs in progress or skipped_locked are passed over), even if before the window. */
  latest_run: {
    run_id: string;
    status: RunRecord['status'];
    started_at: string;
    backlog: number | null;
    oldest_overdue_seconds: number | null;
    held: number | null;
  } | null;
  holds: number;
  paused: { scope: string; by: string; reason: string; at: string } | null;
  pending_intents: number;
  health: Pick<PolicyHealth, 'status' | 'problems'>;
  /** False when the window held more runs than were read: counts are then lower bounds. */
  window_complete: boolean;
}

export interface ComplianceReport {
  since: string;
  until: string;
  policies: PolicyCompliance[];
}

export function complianceReport(
  entries: Array<{ policy: PolicyConfig; records: PolicyRecords }>,
  window: ReportWindow,
): ComplianceReport {
  return {
    since: window.since.toISOString(),
    until: window.until.toISOString(),
    policies: entries.map(({ policy, records }) => assessCompliance(policy, records, window)),
  };
}

export function assessCompliance(policy: PolicyConfig, records: PolicyRecords, window: ReportWindow): PolicyCompliance {
  const live = records.runs.filter((run) => !run.dryRun);
  const inWindow = live.filter((run) => run.startedAt >= window.since && run.startedAt <= window.until);
  const latest = latestOutcome(live);
  const health = assessPolicy(policy, records.runs, window.until, {
    missedAfterMs: DEFAULT_MISSED_AFTER_MS,
    runsRead: window.runsRead,
  });
  const reasons = policy.enabled
    ? attentionReasons(policy, records, health, { latest, anyLive: live.length > 0, inWindow })
    : [];

  const runs: PolicyCompliance['runs'] = {
    total: inWindow.length,
    completed: 0,
    partial: 0,
    failed: 0,
    skipped_paused: 0,
    skipped_locked: 0,
    aborted_limit: 0,
    running: 0,
    crashed: 0,
  };
  const totals = { deleted: 0, failed: 0, bytes_freed: 0 };
  const sla: Record<SlaStatus, number> = { ok: 0, warning: 0, breach: 0 };
  for (const run of inWindow) {
    runs[run.status] += 1;
    if (!run.report) continue;
    totals.deleted += run.report.deleted;
    totals.failed += run.report.failed;
    totals.bytes_freed += run.report.bytesFreed;
    sla[run.report.sla.status] += 1;
  }
  return {
    policy: policy.name,
    data_class: policy.class,
    enabled: policy.enabled,
    schedule: policy.schedule,
    retention: describeCutoffs(computeCutoffs(policy.retention, window.until)),
    max_overdue: policy.sla.maxOverdue,
    verdict: !policy.enabled ? 'disabled' : reasons.length > 0 ? 'attention' : 'compliant',
    reasons,
    runs,
    totals,
    sla,
    latest_run: latest
      ? {
          run_id: latest.runId,
          status: latest.status,
          started_at: latest.startedAt.toISOString(),
          backlog: latest.report?.backlog ?? null,
          oldest_overdue_seconds: latest.report?.oldestOverdueSeconds ?? null,
          held: latest.report?.held ?? null,
        }
      : null,
    holds: records.holds,
    paused: records.pause
      ? {
          scope: records.pause.scope,
          by: records.pause.by,
          reason: records.pause.reason,
          at: records.pause.at.toISOString(),
        }
      : null,
    pending_intents: records.pendingIntents,
    health: { status: health.status, problems: health.problems },
    window_complete: windowComplete(records.runs, window.runsRead, window.since.getTime()),
  };
}

/** What to do about each kind of health problem (its text starts with the kind). */
const HEALTH_FIXES: Record<string, (policy: string) => string> = {
  missed: (policy) =>
    `check that the schedule is deployed and firing (\`retention status\`), or run it now: \`retention run --policy ${policy}\``,
  stuck: (policy) => `if that process is gone, release its lease: \`retention lease break ${policy}\``,
};
const seeHistory = (policy: string): string => `see \`retention history --policy ${policy}\``;

interface LiveRuns {
  latest: RunRecord | null;
  anyLive: boolean;
  inWindow: RunRecord[];
}

function attentionReasons(
  policy: PolicyConfig,
  records: PolicyRecords,
  health: PolicyHealth,
  { latest, anyLive, inWindow }: LiveRuns,
): string[] {
  const name = policy.name;
  const reasons = health.problems.map(
    (problem) => `${problem}; ${(HEALTH_FIXES[problem.split(':', 1)[0]!] ?? seeHistory)(name)}`,
  );
  const { pause } = records;
  if (pause) {
    const resume = pause.scope === '*' ? '--all' : `--policy ${name}`;
    reasons.push(
      `paused by ${pause.by} since ${pause.at.toISOString()} (${pause.reason}): nothing is being deleted; lift it with \`retention resume ${resume}\``,
    );
  }
  // The latest outcome's failure is a health problem already; earlier ones are not.
  const failed = inWindow.filter((run) => run.status === 'failed' && run.runId !== latest?.runId);
  if (failed.length > 0) {
    reasons.push(
      `${failed.length} earlier run(s) in the window failed (latest: run ${failed[0]!.runId} at ${failed[0]!.startedAt.toISOString()}); ${seeHistory(name)}`,
    );
  }
  const backlog = backlogReason(policy, latest, anyLive, pause !== null);
  if (backlog) reasons.push(backlog);
  if (records.pendingIntents > 0) {
    reasons.push(
      `${records.pendingIntents} deletion(s) not yet confirmed in the audit trail (left by an interrupted run): the next run resolves them; run \`retention run --policy ${name}\` now, then check \`retention audit --policy ${name}\``,
    );
  }
  return reasons;
}

/** The latest run must leave nothing overdue beyond `sla.maxOverdue`. */
function backlogReason(
  policy: PolicyConfig,
  latest: RunRecord | null,
  anyLive: boolean,
  paused: boolean,
): string | null {
  const run = `\`retention run --policy ${policy.name}\``;
  // With no live run at all, the health problem `missed` says so.
  if (!latest)
    return anyLive ? `backlog unknown: no run has finished yet; \`retention status\` shows the one in progress` : null;
  const backlog = latest.report?.backlog ?? null;
  if (backlog === null) {
    // A failed run is a health problem, a paused one a reason of its own.
    if (latest.status === 'failed' || (latest.status === 'skipped_paused' && paused)) return null;
    return `backlog unknown: run ${latest.runId} (${latest.status}) did not measure it; ${run} measures it and deletes what is due`;
  }
  const overdue = latest.report?.oldestOverdueSeconds ?? null;
  if (backlog === 0 || (overdue !== null && overdue * 1000 <= durationMs(policy.sla.maxOverdue))) return null;
  const oldest = overdue === null ? '' : `, the oldest ${formatDuration(Math.round(overdue * 1000))} past its cutoff`;
  return `backlog: ${backlog} item(s) still overdue after run ${latest.runId}${oldest} (limit ${policy.sla.maxOverdue}); ${run} to catch up, ${seeHistory(policy.name)} for why runs leave them`;
}
