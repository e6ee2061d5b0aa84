import type { PolicyConfig } from '../config/schema.ts';
import { type ControlStore, isPolicyRun, type RunRecord } from '../core/control.ts';
import { durationMs } from '../core/durations.ts';
import type { SlaStatus } from '../core/types.ts';
import { nextRun, previousRun } from '../policy/schedule.ts';

/**
 * Health of each policy from its run history (pure). A retention system fails worst by silently
 * not running, so an enabled policy is unhealthy when its last scheduled run is missing, when a run
 * hangs past its budget, when its last run failed, or when that run breached its SLA. Dry runs
 * prove nothing about the schedule and are ignored.
 */
export interface PolicyHealth {
  policy: string;
  data_class: string;
  enabled: boolean;
  status: 'healthy' | 'unhealthy' | 'disabled';
  problems: string[];
  last_run: {
    run_id: string;
    status: string;
    trigger: string | null;
    started_at: string;
    finished_at: string | null;
  } | null;
  next_run: string | null;
  deleted_last_24h: number;
  failed_last_24h: number;
  oldest_overdue_seconds: number | null;
  sla_status: SlaStatus | null;
  /** False when the last 24 hours held more runs than were read: the 24h counts are then lower bounds. */
  window_complete: boolean;
}

export interface HealthOptions {
  /** How late the scheduled run may start before it counts as missed. */
  missedAfterMs: number;
  /** How many runs were asked for (to tell whether the 24h window was read whole). */
  runsRead: number;
}

export const DEFAULT_MISSED_AFTER_MS = 15 * 60_000;
/** Runs read per policy by `assessHealth`; the 24h counts cover at most this many runs. */
export const DEFAULT_RUNS_PER_POLICY = 500;
const DAY_MS = 86_400_000;
/** A run that starts a little before its scheduled minute (clock skew, early delivery) still counts. */
const EARLY_START_TOLERANCE_MS = 60_000;

/** `runs`: this policy's history, newest first (as `ControlStore.listRuns` returns it). */
export function assessPolicy(policy: PolicyConfig, runs: RunRecord[], now: Date, options: HealthOptions): PolicyHealth {
  const live = runs.filter(isPolicyRun);
  const last = live[0] ?? null;
  const outcome = latestOutcome(live);
  const since = now.getTime() - DAY_MS;
  const lastDay = live.filter((run) => run.startedAt.getTime() >= since);
  const overdue = live.find((run) => run.report?.oldestOverdueSeconds != null)?.report?.oldestOverdueSeconds ?? null;

  const problems = policy.enabled ? findProblems(policy, last, outcome, now, options.missedAfterMs) : [];
  return {
    policy: policy.name,
    data_class: policy.class,
    enabled: policy.enabled,
    status: !policy.enabled ? 'disabled' : problems.length > 0 ? 'unhealthy' : 'healthy',
    problems,
    last_run: last
      ? {
          run_id: last.runId,
          status: last.status,
          trigger: last.report?.trigger ?? null,
          started_at: last.startedAt.toISOString(),
          finished_at: last.finishedAt?.toISOString() ?? null,
        }
      : null,
    next_run: policy.enabled ? nextRun(policy.schedule, now).toISOString() : null,
    deleted_last_24h: lastDay.reduce((sum, run) => sum + (run.report?.deleted ?? 0), 0),
    failed_last_24h: lastDay.reduce((sum, run) => sum + (run.report?.failed ?? 0), 0),
    oldest_overdue_seconds: overdue,
    sla_status: outcome?.report?.sla.status ?? null,
    window_complete: windowComplete(runs, options.runsRead, since),
  };
}

/** The newest live run that decided something: one still running, or skipped_locked (deferring to another), did not. */
export function latestOutcome(live: RunRecord[]): RunRecord | null {
  return live.find((run) => run.status !== 'running' && run.status !== 'skipped_locked') ?? null;
}

/** Whether `runs` (newest first, at most `runsRead`) hold every run since `sinceMs`: false means counts are lower bounds. */
export function windowComplete(runs: RunRecord[], runsRead: number, sinceMs: number): boolean {
  return runs.length < runsRead || (runs.at(-1)?.startedAt.getTime() ?? 0) < sinceMs;
}

function findProblems(
  policy: PolicyConfig,
  last: RunRecord | null,
  outcome: RunRecord | null,
  now: Date,
  missedAfterMs: number,
): string[] {
  const problems: string[] = [];
  const expected = previousRun(policy.schedule, new Date(now.getTime() - missedAfterMs));
  if (!last) problems.push(`missed: no run recorded (one was due at ${expected.toISOString()})`);
  else if (last.startedAt.getTime() < expected.getTime() - EARLY_START_TOLERANCE_MS) {
    problems.push(
      `missed: the run due at ${expected.toISOString()} did not start (last run ${last.startedAt.toISOString()})`,
    );
  }
  if (
    last?.status === 'running' &&
    now.getTime() - last.startedAt.getTime() > durationMs(policy.budget) + missedAfterMs
  ) {
    problems.push(
      `stuck: run ${last.runId} started ${last.startedAt.toISOString()} and never finished (budget ${policy.budget})`,
    );
  }
  if (outcome?.status === 'failed') {
    problems.push(`failed: run ${outcome.runId}${outcome.report?.error ? `: ${outcome.report.error.message}` : ''}`);
  }
  if (outcome?.status === 'crashed') {
    problems.push(
      `crashed: run ${outcome.runId} started ${outcome.startedAt.toISOString()} and its process died (closed by the next run; see its log)`,
    );
  }
  if (outcome?.report?.sla.status === 'breach') {
    problems.push(`sla breach: run ${outcome.runId}: ${outcome.report.sla.reasons.join('; ')}`);
  }
  return problems;
}

/** The whole system: unhealthy when any enabled policy is. */
export interface HealthAssessment {
  status: 'healthy' | 'unhealthy';
  checked_at: string;
  policies: PolicyHealth[];
}

/**
 * What every health endpoint answers (the Lambda health function, the REST API's `/healthz`):
 * each policy's recent runs, read from the control store and judged by `assessPolicy`.
 */
export async function assessHealth(
  policies: PolicyConfig[],
  control: Pick<ControlStore, 'listRuns'>,
  now: Date,
  options: { missedAfterMs?: number; runsPerPolicy?: number } = {},
): Promise<HealthAssessment> {
  const runsRead = options.runsPerPolicy ?? DEFAULT_RUNS_PER_POLICY;
  const missedAfterMs = options.missedAfterMs ?? DEFAULT_MISSED_AFTER_MS;
  const assessed = await Promise.all(
    policies.map(async (policy) => {
      const runs = await control.listRuns({ policy: policy.name, limit: runsRead });
      return assessPolicy(policy, runs, now, { missedAfterMs, runsRead });
    }),
  );
  const healthy = assessed.every((policy) => policy.status !== 'unhealthy');
  return { status: healthy ? 'healthy' : 'unhealthy', checked_at: now.toISOString(), policies: assessed };
}

/** A run as the status views show it (`retention status --json`, the API's policies). */
export interface RunSummary {
  runId: string;
  status: string;
  dryRun: boolean;
  startedAt: string;
  deleted: number | null;
  sla: SlaStatus | null;
}

export function runSummary(run: RunRecord | null): RunSummary | null {
  if (!run) return null;
  return {
    runId: run.runId,
    status: run.status,
    dryRun: run.dryRun,
    startedAt: run.startedAt.toISOString(),
    deleted: run.report?.deleted ?? null,
    sla: run.report?.sla.status ?? null,
  };
}
