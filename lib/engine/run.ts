import { randomBytes } from 'node:crypto';
import { requestTimeoutMs, runDeadline } from '../core/deadline.ts';
import { durationMs } from '../core/durations.ts';
import type { PolicyConfig } from '../config/schema.ts';
import { describeCause, LeaseLostError, RetentionError } from '../errors.ts';
import { emfDocument } from '../observe/metrics.ts';
import type { Census } from '../core/store.ts';
import { Budget } from './budget.ts';
import { oldestFirstSteps, pagedSteps, sweptSteps } from './batches.ts';
import { Fence } from './fence.ts';
import { dropWholePartitions } from './partitions.ts';
import { checkLimits, LIMIT_ADVICE } from '../policy/limits.ts';
import { computeCutoffs, describeCutoffs, latestCutoff } from '../policy/plan.ts';
import { recoverCrashedIntents } from './recover.ts';
import { buildReport, describeHold, Tally } from './report.ts';
import type { RunDeps, RunOptions } from './options.ts';
import { Sweep } from './sweep.ts';
import type { Hold, RunReport, RunStatus, StopReason } from '../core/types.ts';

const DEFAULT_LEASE_TTL_MS = 60_000;

export function newRunId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/**
 * One run of one policy: the lifecycle of DESIGN.md. Expected outcomes (paused, locked, limit,
 * budget) are report statuses; a ConfigError from `store.open()` (bad store setup) is thrown
 * before anything is recorded or touched; any failure after that ends the run `failed` with its
 * cause, recorded in history.
 */
export async function runPolicy(policy: PolicyConfig, options: RunOptions, deps: RunDeps): Promise<RunReport> {
  const { control, store, clock } = deps;
  const startedAt = clock.now();
  const runId = newRunId(startedAt);
  const log = deps.log.child({ correlation_id: runId, policy: policy.name, data_class: policy.class, store: store.location });
  const tally = new Tally(options.list);
  const budget = new Budget(clock, options.budgetMs ?? durationMs(policy.budget), options.deadline);

  // Requests hung on a frozen backend end one request timeout after the budget: the run fails then,
  // with its report, instead of waiting out every retry.
  await store.open({ signal: runDeadline(budget.totalMs, requestTimeoutMs()) });
  // Database rows carry database timestamps: their cutoffs come from the database clock, once.
  const cutoffsAt = store.now ? await store.now() : startedAt;
  const cutoffs = computeCutoffs(policy.retention, cutoffsAt, options.before);
  store.bindRun?.({ runId, actor: deps.actor, trigger: options.trigger });
  log.info('run_started', {
    trigger: options.trigger,
    dry_run: options.dryRun,
    budget_seconds: budget.totalMs / 1000,
    cutoffs: describeCutoffs(cutoffs),
    ...(store.now ? { clock_skew_ms: cutoffsAt.getTime() - startedAt.getTime() } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
  });
  for (const warning of store.warnings ?? []) log.warn('store_warning', { code: warning.code, message: warning.message, ...(warning.fix ? { fix: warning.fix } : {}) });
  await control.startRun({ runId, policy: policy.name, dryRun: options.dryRun, startedAt });

  let census: Census | undefined;
  /**
   * What is still overdue after the run: the number the retention SLA is about. A live pass over
   * the whole scope from its start leaves exactly its failures behind (cutoffs are fixed, so
   * nothing new became eligible); anything else is measured with a second census.
   */
  const backlogAfter = async (before: Census, holds: Hold[], status: 'completed' | 'partial', fromStart: boolean): Promise<Census> => {
    if (options.dryRun || tally.deleted + tally.failed === 0) return before;
    if (fromStart && status === 'completed') return { ...before, eligible: tally.failed, oldestOverdueSeconds: tally.failedOldestOverdueSeconds };
    return store.census({ cutoffs, holds });
  };
  let limits: RunReport['limits'];
  const finish = async (status: RunStatus, error?: RetentionError | Error, stopReason?: StopReason): Promise<RunReport> => {
    const report = buildReport({
      runId,
      policy,
      dataClass: policy.class,
      store: store.location,
      trigger: options.trigger,
      dryRun: options.dryRun,
      status,
      tally,
      startedAt,
      finishedAt: clock.now(),
      budgetSeconds: budget.totalMs / 1000,
      budgetUsedPercent: budget.usedPercent(),
      backlog: census?.eligible ?? null,
      oldestOverdueSeconds: census?.oldestOverdueSeconds ?? null,
      cutoffs: describeCutoffs(cutoffs),
      ...(limits ? { limits } : {}),
      ...(stopReason ? { stopReason } : {}),
      // describeCause: the cause chain, redacted, so history never stores a credential an error quoted.
      ...(error ? { error: { code: error instanceof RetentionError ? error.code : 'unexpected', message: error instanceof RetentionError ? error.message : describeCause(error) } } : {}),
    });
    try {
      // Held items are part of the record (invariant 12): one audit record per hold that kept any
      // (a store that counts held rows in SQL cannot say which hold: one record naming them all).
      if (!options.dryRun && (tally.heldByHold.size > 0 || tally.heldInStore)) {
        const latest = latestCutoff(cutoffs);
        const record = (key: string, itemTimestamp: Date, rule: string, error: string) => ({
          runId, policy: policy.name, store: store.location, key, itemTimestamp, rule, cutoff: latest, actor: deps.actor, trigger: options.trigger, action: 'hold' as const, status: 'held' as const, error,
        });
        const plural = (count: number) => `${count} eligible item${count === 1 ? '' : 's'}`;
        await control.recordEvents([
          ...[...tally.heldByHold.values()].map(({ hold, count }) => record(hold.key, hold.createdAt, describeHold(hold), `${plural(count)} kept by hold #${hold.id}`)),
          ...(tally.heldInStore ? [record('*', startedAt, 'holds', `${plural(tally.heldInStore.count)} kept by holds ${tally.heldInStore.holds.map((hold) => `#${hold.id}`).join(', ')}`)] : []),
        ]);
      }
      await control.finishRun(report);
    } catch (error) {
      // The control store failed (often what ended the run): the report still reaches the caller
      // and the log; the next live run closes this one's history as `crashed`.
      log.error('history_write_failed', { error: describeCause(error) });
    }
    log.info('run_completed', {
      status: report.status,
      ...(report.stopReason ? { stop_reason: report.stopReason } : {}),
      sla_status: report.sla.status,
      sla_reasons: report.sla.reasons,
      scanned: report.scanned,
      eligible: report.eligible,
      deleted: report.deleted,
      failed: report.failed,
      held: report.held,
      bytes_freed: report.bytesFreed,
      backlog: report.backlog,
      oldest_overdue_seconds: report.oldestOverdueSeconds,
      duration_seconds: report.durationSeconds,
      dry_run: report.dryRun,
    });
    if (!report.dryRun) log.raw(emfDocument(report));
    return report;
  };

  /**
   * The run lost its right to delete (invariant 8): a pause (control stores refuse a paused
   * policy's fenced writes), a lease break, a takeover or a stall past the lease. What it did is
   * recorded; the run ends `partial` with the reason, and the checkpoint stays for the next run.
   */
  const stopped = async (error: LeaseLostError): Promise<RunReport> => {
    const pause = await control.pausedBy(policy.name).catch(() => null);
    const reason: StopReason = pause ? 'paused' : 'lease_lost';
    const message = pause
      ? `stopped: policy paused by ${pause.by} (${pause.reason}); resume with: retention resume ${pause.scope === '*' ? '--all' : pause.scope}`
      : `stopped: ${error.message}`;
    log.warn(pause ? 'run_paused' : 'lease_lost', { error: error.message, ...(pause ? { paused_by: pause.by, pause_reason: pause.reason, scope: pause.scope } : {}), deleted: tally.deleted });
    census = census ? { ...census, eligible: census.eligible - tally.deleted, exact: false } : census;
    return finish('partial', new RetentionError(message, { policy: policy.name }), reason);
  };

  const pause = await control.pausedBy(policy.name);
  if (pause) {
    log.info('run_skipped', { reason: 'paused', paused_by: pause.by, pause_reason: pause.reason, scope: pause.scope });
    return finish('skipped_paused');
  }

  // A dry run changes nothing, so it needs no lease: `plan` works while a scheduled run is active.
  const leaseTtlMs = deps.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const lease = options.dryRun ? null : await control.acquireLease(policy.name, runId, leaseTtlMs);
  if (!options.dryRun && !lease) {
    const holder = await control.getLease(policy.name);
    log.info('run_skipped', { reason: 'locked', lease_owner: holder?.owner, lease_expires_at: holder?.expiresAt.toISOString() });
    return finish('skipped_locked');
  }
  // Held at most for the budget plus one lease: a run hung on a frozen dependency lets others in.
  const fence = lease ? new Fence(control, lease, leaseTtlMs, budget.totalMs + leaseTtlMs) : null;

  try {
    if (!options.dryRun) {
      const crashed = await control.closeCrashedRuns(policy.name, runId);
      if (crashed.length > 0) log.warn('crashed_runs_closed', { runs: crashed });
      const recovered = await recoverCrashedIntents(store, control, policy.name, runId);
      if (recovered.deleted + recovered.abandoned > 0) log.warn('intents_recovered', { ...recovered });
    }
    const holds = await control.listHolds(policy.name);
    census = await store.census({ cutoffs, holds });
    const planned = Math.min(census.eligible, options.limit ?? Infinity);
    // --limit caps what this run deletes, never what the policy means to delete: the fraction guard
    // (a wrong root, "1d" typed for "1y") looks at everything eligible.
    const verdict = checkLimits({ planned, eligible: census.eligible, total: census.total, ...policy.limits });
    if (!verdict.ok) {
      limits = { planned, total: census.total, ...policy.limits, forced: options.force };
      if (!options.force) {
        log.warn('limit_aborted', { reason: verdict.reason, advice: LIMIT_ADVICE, planned, total: census.total });
        return await finish('aborted_limit', new RetentionError(`${verdict.reason}; nothing was deleted (${LIMIT_ADVICE})`));
      }
      log.warn('limit_overridden', { reason: verdict.reason, actor: deps.actor });
    }

    const checkpoint = options.dryRun || options.limit !== undefined ? null : await control.getCheckpoint(policy.name);
    const sourceInput = { store, cutoffs, holds, batchSize: policy.batchSize };
    const resume = checkpoint ? { cursor: checkpoint.cursor } : {};
    // One statement per batch where the store can (rows without linked files or children), records
    // the deletions in that statement (otherwise only write-ahead intents make a crash safe), and
    // the engine has nothing to do between selection and deletion (no backup copy, no --limit).
    const oneStatement =
      fence !== null && options.limit === undefined && !policy.backup && store.sweepsInOneStatement === true && store.auditsOwnDeletions === true && store.sweepExpired !== undefined;
    const sweep = new Sweep(policy, options, deps, { runId, tally, budget, log, fence });
    const steps =
      options.limit !== undefined
        ? oldestFirstSteps(sourceInput, options.limit)
        : oneStatement
          ? sweptSteps({ ...sourceInput, ...resume, fence, detail: options.list ? 'rows' : 'summary', allowance: sweep.batchAllowance })
          : pagedSteps({ ...sourceInput, ...resume });
    if (checkpoint) log.info('run_resumed', { cursor: checkpoint.cursor, from_run: checkpoint.runId });
    // One statement per batch never returns the held rows it passes over: the census counts them.
    if (oneStatement && census.held !== undefined) tally.countHeldInStore(census.held, holds);

    // Whole partitions would overrun --limit (a progressive rollout): limited runs go row by row.
    if (options.limit === undefined) await dropWholePartitions({ policy, store, control, cutoffs, holds, dryRun: options.dryRun, runId, actor: deps.actor, trigger: options.trigger, fence, budget, tally, log });
    const end = await sweep.consume(steps);
    const status = end.status;
    if (!options.dryRun && policy.backup && store.pruneBackups) {
      const olderThan = new Date(startedAt.getTime() - durationMs(policy.backup.keepFor));
      const pruned = await store.pruneBackups(policy.backup.to, policy.name, olderThan);
      if (pruned > 0) log.info('backups_pruned', { pruned, keep_for: policy.backup.keepFor });
    }
    // A pass from the start leaves exactly its failures, unless a statement skipped rows in use
    // without reporting them (SKIP LOCKED): then count again.
    census = await backlogAfter(census, holds, status, checkpoint === null && options.limit === undefined && !sweep.skippedRows);
    // What is still due after a pass that skipped rows in use is, at least partly, those rows.
    if (sweep.skippedRows && status === 'completed') tally.countSkippedInUse(census.eligible);
    return await finish(status, end.status === 'partial' && end.detail ? new RetentionError(end.detail) : undefined, end.status === 'partial' ? end.stopReason : undefined);
  } catch (error) {
    if (error instanceof LeaseLostError) return await stopped(error);
    const failure = error instanceof Error ? error : new Error(describeCause(error));
    log.error('error', {
      error: failure.message,
      code: failure instanceof RetentionError ? failure.code : 'unexpected',
      ...(failure instanceof RetentionError ? { context: failure.context } : {}),
      ...(failure.cause ? { cause: describeCause(failure.cause) } : {}),
    });
    return await finish('failed', failure);
  } finally {
    // A release that fails (the control store is gone) must not replace the run's own outcome:
    // the lease expires on its own; the report above says what happened.
    await fence?.release().catch((error: unknown) => log.warn('lease_release_failed', { error: describeCause(error) }));
  }
}
