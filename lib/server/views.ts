import type { PolicyConfig } from '../config/schema.ts';
import type { Lease, PauseState, RunRecord } from '../core/control.ts';
import type { SlaStatus } from '../core/types.ts';
import { computeCutoffs, describeCutoffs } from '../policy/plan.ts';
import { nextRun } from '../policy/schedule.ts';
import { type PolicyHealth, type RunSummary, runSummary } from '../reports/health.ts';
import type { RunProgress } from './launcher.ts';

/**
 * What the API shows (pure): policies with their status, the overview cards and the chart series,
 * all computed from what the control store holds (run history, pauses, leases) and the runs this
 * server has in flight. Nothing here reads a store: an overview must not list a bucket.
 */
const DAY_MS = 86_400_000;

/** What was read about one policy. */
export interface PolicyState {
  policy: PolicyConfig;
  /** Newest first, dry runs included. */
  runs: RunRecord[];
  pause: PauseState | null;
  lease: Lease | null;
  health: PolicyHealth;
  /** This server's run of the policy in flight, if any. */
  running: { runId: string; dryRun: boolean; progress: RunProgress } | null;
  /** From this server's newest listed dry run, when it is the policy's newest run. */
  bytesToFree: number | null;
  /** Items that failed in `attentionAfter` consecutive runs, not dismissed (GET /api/attention). */
  attentionOpen: number;
}

export type PolicyStatus = 'running' | 'paused' | 'disabled' | 'healthy' | 'unhealthy';

export interface PolicyView {
  name: string;
  description: string | null;
  dataClass: string;
  storeKind: string;
  enabled: boolean;
  status: PolicyStatus;
  schedule: string;
  nextRun: string | null;
  retention: Array<{ rule: string; cutoff: string }>;
  budget: string;
  sla: { maxOverdue: string; maxDuration: string; maxFailureRate: number; status: SlaStatus | null };
  paused: { scope: string; by: string; reason: string; at: string } | null;
  lease: { owner: string; expiresAt: string } | null;
  running: PolicyState['running'];
  lastRun: RunSummary | null;
  /** Eligible unheld items still there, per the newest run that measured it (dry or live). */
  toClean: { items: number; measuredBy: string; at: string } | null;
  bytesToFree: number | null;
  attentionOpen: number;
  health: {
    status: PolicyHealth['status'];
    problems: string[];
    oldestOverdueSeconds: number | null;
    deletedLast24h: number;
  };
}

export function policyView(state: PolicyState, now: Date): PolicyView {
  const { policy, runs, pause, lease, health } = state;
  const last = runs[0] ?? null;
  const measured = runs.find((run) => run.report?.backlog != null);
  const status: PolicyStatus = state.running
    ? 'running'
    : pause
      ? 'paused'
      : !policy.enabled
        ? 'disabled'
        : health.status === 'unhealthy'
          ? 'unhealthy'
          : 'healthy';
  return {
    name: policy.name,
    description: policy.description ?? null,
    dataClass: policy.class,
    storeKind: policy.store.kind,
    enabled: policy.enabled,
    status,
    schedule: policy.schedule,
    nextRun: policy.enabled ? nextRun(policy.schedule, now).toISOString() : null,
    retention: describeCutoffs(computeCutoffs(policy.retention, now)),
    budget: policy.budget,
    sla: {
      maxOverdue: policy.sla.maxOverdue,
      maxDuration: policy.sla.maxDuration ?? policy.budget,
      maxFailureRate: policy.sla.maxFailureRate,
      status: health.sla_status,
    },
    paused: pause ? { scope: pause.scope, by: pause.by, reason: pause.reason, at: pause.at.toISOString() } : null,
    lease: lease && lease.expiresAt > now ? { owner: lease.owner, expiresAt: lease.expiresAt.toISOString() } : null,
    running: state.running,
    lastRun: runSummary(last),
    toClean: measured?.report
      ? { items: measured.report.backlog!, measuredBy: measured.runId, at: measured.report.finishedAt }
      : null,
    bytesToFree: state.bytesToFree,
    attentionOpen: state.attentionOpen,
    health: {
      status: health.status,
      problems: health.problems,
      oldestOverdueSeconds: health.oldest_overdue_seconds,
      deletedLast24h: health.deleted_last_24h,
    },
  };
}

export interface Overview {
  policies: number;
  itemsToClean: number;
  /** Policies whose backlog no run has measured yet (their items are not in `itemsToClean`). */
  unmeasured: string[];
  /** Summed over policies with a listed dry run as their newest run; null when none has one. */
  bytesToFree: number | null;
  bytesToFreeFrom: string[];
  deletedLast30d: number;
  bytesFreedLast30d: number;
  lastRun: { policy: string; runId: string; status: string; dryRun: boolean; startedAt: string } | null;
  /** Each policy's latest SLA status; `none` for those without a finished live run. */
  sla: Record<SlaStatus | 'none', number>;
  health: 'healthy' | 'unhealthy';
  running: number;
  /** Open items of the attention queue, over every policy. */
  attentionOpen: number;
}

export function overview(states: PolicyState[], views: PolicyView[], now: Date): Overview {
  const since = now.getTime() - 30 * DAY_MS;
  const live = states.flatMap((state) => state.runs.filter((run) => !run.dryRun && run.startedAt.getTime() >= since));
  const newest = states
    .flatMap((state) => state.runs.slice(0, 1))
    .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())[0];
  const sla: Overview['sla'] = { ok: 0, warning: 0, breach: 0, none: 0 };
  for (const view of views) sla[view.sla.status ?? 'none'] += 1;
  const measuredBytes = views.filter((view) => view.bytesToFree !== null);
  return {
    policies: views.length,
    itemsToClean: views.reduce((sum, view) => sum + (view.toClean?.items ?? 0), 0),
    unmeasured: views.filter((view) => view.toClean === null).map((view) => view.name),
    bytesToFree: measuredBytes.length > 0 ? measuredBytes.reduce((sum, view) => sum + view.bytesToFree!, 0) : null,
    bytesToFreeFrom: measuredBytes.map((view) => view.name),
    deletedLast30d: live.reduce((sum, run) => sum + (run.report?.deleted ?? 0), 0),
    bytesFreedLast30d: live.reduce((sum, run) => sum + (run.report?.bytesFreed ?? 0), 0),
    lastRun: newest
      ? {
          policy: newest.policy,
          runId: newest.runId,
          status: newest.status,
          dryRun: newest.dryRun,
          startedAt: newest.startedAt.toISOString(),
        }
      : null,
    sla,
    health: views.some((view) => view.health.status === 'unhealthy') ? 'unhealthy' : 'healthy',
    running: views.filter((view) => view.running !== null).length,
    attentionOpen: views.reduce((sum, view) => sum + view.attentionOpen, 0),
  };
}

export interface Stats {
  /** One entry per UTC day, oldest first, the last one today: what live runs deleted. */
  days: Array<{ date: string; deleted: number; bytesFreed: number; runs: number }>;
  /** Each finished live run's oldest overdue item after it, per policy, oldest first. */
  overdue: Array<{ at: string; policy: string; seconds: number }>;
}

/** The charts' series from run history (live runs only: a dry run deletes nothing). */
export function stats(runs: RunRecord[], now: Date, days: number): Stats {
  const today = Math.floor(now.getTime() / DAY_MS);
  const series = Array.from({ length: days }, (_, index) => ({
    date: new Date((today - days + 1 + index) * DAY_MS).toISOString().slice(0, 10),
    deleted: 0,
    bytesFreed: 0,
    runs: 0,
  }));
  const overdue: Stats['overdue'] = [];
  for (const run of runs) {
    if (run.dryRun || !run.report) continue;
    const day = series[Math.floor(run.startedAt.getTime() / DAY_MS) - (today - days + 1)];
    if (!day) continue;
    day.deleted += run.report.deleted;
    day.bytesFreed += run.report.bytesFreed;
    day.runs += 1;
    if (run.report.oldestOverdueSeconds !== null)
      overdue.push({ at: run.report.finishedAt, policy: run.policy, seconds: run.report.oldestOverdueSeconds });
  }
  overdue.sort((a, b) => a.at.localeCompare(b.at));
  return { days: series, overdue };
}
