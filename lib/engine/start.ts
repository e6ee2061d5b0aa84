import { createHash, randomBytes } from 'node:crypto';
import type { PolicyConfig } from '../config/schema.ts';
import { canonicalJson } from '../core/canonical.ts';
import type { AuditIntent } from '../core/control.ts';
import { requestTimeoutMs, runDeadline } from '../core/deadline.ts';
import { durationMs } from '../core/durations.ts';
import { recordGovernance } from '../core/governance.ts';
import type { Census, RunContext } from '../core/store.ts';
import type { Cutoffs, EligibleItem, EmergencyReason, RunReport } from '../core/types.ts';
import type { Logger } from '../observe/log.ts';
import { computeCutoffs, describeCutoffs } from '../policy/plan.ts';
import { redact } from '../redact.ts';
import type { FailureStreaks } from './attention.ts';
import { Budget } from './budget.ts';
import { emergencyRunCutoffs } from './emergency.ts';
import type { RunDeps, RunOptions } from './options.ts';
import { Tally } from './report.ts';

/**
 * One run in progress: what it was asked, what it fixed at its start (run id, cutoffs, budget),
 * and what it has found so far. Each step of the lifecycle (run.ts) reads and adds to it.
 */
export interface ActiveRun {
  policy: PolicyConfig;
  options: RunOptions;
  deps: RunDeps;
  /** Who runs: the store gets it with each call that deletes (rows record it with the deletion). */
  context: RunContext;
  startedAt: Date;
  log: Logger;
  tally: Tally;
  budget: Budget;
  cutoffs: Cutoffs;
  /** `policyHash(policy)`: the configuration this run applies, recorded with its report. */
  policyHash: string;
  /** The census before the sweep, then what is still overdue after it (the report's backlog). */
  census?: Census;
  /** Planned deletions vs limits, when the limits were exceeded (aborted or forced). */
  limits?: RunReport['limits'];
  /** The store's upkeep after the sweep (maintenance.ts), when it did any. */
  maintenance?: RunReport['maintenance'];
  /** At most this many deletions (`--limit`, an emergency's `maxDeletes`); absent: no cap but the limits. */
  deleteCap?: number;
  /**
   * Oldest items first, no checkpoint read or written (`--limit`, emergencies): a run that does
   * not pass over the whole scope in key order must not move where the next full pass resumes.
   */
  oldestFirst: boolean;
  /** Live runs that hold the lease: failures and settled items for the attention queue. */
  streaks?: FailureStreaks;
}

export function newRunId(now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/**
 * sha256 of the policy's canonical JSON (as parsed: defaults filled in, durations as written),
 * secrets redacted: rotating a password is not a change of policy, and no hash of a secret leaves.
 */
export function policyHash(policy: PolicyConfig): string {
  return createHash('sha256')
    .update(canonicalJson(redact(policy)))
    .digest('hex');
}

/**
 * Opens the store (a ConfigError here is thrown before anything is recorded or touched), fixes
 * the cutoffs once, and records the run in history as `running`.
 */
export async function startRun(policy: PolicyConfig, options: RunOptions, deps: RunDeps): Promise<ActiveRun> {
  const { control, store, clock } = deps;
  const startedAt = clock.now();
  const budget = new Budget(clock, options.budgetMs ?? durationMs(policy.budget), options.deadline);
  // Requests hung on a frozen backend end one request timeout after the budget: the run fails then,
  // with its report, instead of waiting out every retry.
  const signal = runDeadline(budget.totalMs, requestTimeoutMs());
  const runId = options.runId ?? newRunId(startedAt);
  const context: RunContext = { runId, actor: deps.actor, trigger: options.trigger, signal };
  const log = deps.log.child({
    correlation_id: context.runId,
    policy: policy.name,
    data_class: policy.class,
    store: store.location,
  });

  await store.open(context);
  // Database rows carry database timestamps: their cutoffs come from the database clock, once.
  const cutoffsAt = store.clock ? await store.clock.now() : startedAt;
  const cutoffs = options.emergency
    ? await emergencyRunCutoffs(policy, store, cutoffsAt, options.before)
    : computeCutoffs(policy.retention, cutoffsAt, options.before);
  const hash = policyHash(options.configuredAs ?? policy);
  const caps = [options.limit, options.emergency ? policy.emergency?.maxDeletes : undefined];
  const deleteCap = Math.min(...caps.map((cap) => cap ?? Number.POSITIVE_INFINITY));
  log.info('run_started', {
    trigger: options.trigger,
    dry_run: options.dryRun,
    budget_seconds: budget.totalMs / 1000,
    cutoffs: describeCutoffs(cutoffs),
    policy_hash: hash,
    ...(store.clock ? { clock_skew_ms: cutoffsAt.getTime() - startedAt.getTime() } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    ...(options.emergency ? { emergency: emergencyFields(options.emergency), max_deletes: deleteCap } : {}),
  });
  for (const warning of store.warnings ?? [])
    log.warn('store_warning', {
      code: warning.code,
      message: warning.message,
      ...(warning.fix ? { fix: warning.fix } : {}),
    });
  await control.startRun({ runId: context.runId, policy: policy.name, dryRun: options.dryRun, startedAt });
  const tally = new Tally(options.list);
  return {
    policy,
    options,
    deps,
    context,
    startedAt,
    log,
    tally,
    budget,
    cutoffs,
    policyHash: hash,
    ...(Number.isFinite(deleteCap) ? { deleteCap } : {}),
    oldestFirst: options.limit !== undefined || options.emergency !== undefined,
  };
}

/** An emergency's reason as reports and log lines carry it. */
export function emergencyReason({ reason, usedPercent }: EmergencyReason): EmergencyReason {
  return { reason, ...(usedPercent !== undefined ? { usedPercent } : {}) };
}

function emergencyFields(emergency: EmergencyReason): Record<string, unknown> {
  const { reason, usedPercent } = emergencyReason(emergency);
  return { reason, ...(usedPercent !== undefined ? { used_percent: usedPercent } : {}) };
}

/**
 * `--force` past the safety limits is a governance action (invariant 13): recorded before the
 * first deletion it allows, so a run that dies midway still leaves the override on record.
 */
export function recordLimitOverride(run: ActiveRun, reason: string): Promise<void> {
  const { policy, context, deps } = run;
  const planned = run.limits ? ` (planned ${run.limits.planned} of ${run.limits.total} in scope)` : '';
  return recordGovernance(deps.control, {
    action: 'limit_overridden',
    actor: context.actor,
    reason: '--force',
    scope: policy.name,
    subject: context.runId,
    detail: `${reason}${planned}; the run went ahead`,
    at: deps.clock.now(),
    runId: context.runId,
    store: deps.store.location,
    trigger: context.trigger,
  });
}

/** The write-ahead record of what the run is about to do to `item` (invariant 2), before it does it. */
export function auditIntent(run: ActiveRun, item: EligibleItem, action: 'delete' | 'compress'): AuditIntent {
  const { context } = run;
  return {
    runId: context.runId,
    policy: run.policy.name,
    store: run.deps.store.location,
    key: item.key,
    itemTimestamp: item.timestamp,
    ...(item.size !== undefined ? { size: item.size } : {}),
    rule: item.rule,
    cutoff: item.cutoff,
    actor: context.actor,
    trigger: context.trigger,
    action,
  };
}
