import type { PolicyConfig } from '../config/schema.ts';
import type { Checkpoint } from '../core/control.ts';
import { durationMs } from '../core/durations.ts';
import type { Census } from '../core/store.ts';
import type { Hold, RunReport } from '../core/types.ts';
import { describeCause, LeaseLostError, LIMIT_ADVICE, type RetentionError } from '../errors.ts';
import { checkLimits } from '../policy/limits.ts';
import { loadStreaks } from './attention.ts';
import { deleteBatchSize, oldestFirstSteps, pagedSteps, type Step, sweptSteps } from './batches.ts';
import { batchSizing, pageSize } from './batchSize.ts';
import { compressPass } from './compress.ts';
import { Fence } from './fence.ts';
import { failRun, finishRun, stopRun } from './finish.ts';
import { maintainAfterRun } from './maintenance.ts';
import type { RunDeps, RunOptions } from './options.ts';
import { dropWholePartitions } from './partitions.ts';
import { recoverEarlierRuns } from './recover.ts';
import { censusByListing, RETAINED_ITEMS, type RetainedListing, retainedSteps } from './retained.ts';
import { type ActiveRun, recordLimitOverride, startRun } from './start.ts';
import { Sweep, type SweepEnd } from './sweep.ts';

export { newRunId } from './start.ts';

const DEFAULT_LEASE_TTL_MS = 60_000;

/**
 * One run of one policy: the lifecycle of DESIGN.md. Expected outcomes (paused, locked, limit,
 * budget) are report statuses; a ConfigError from `store.open()` (bad store setup) is thrown
 * before anything is recorded or touched; any failure after that ends the run `failed` with its
 * cause, recorded in history.
 */
export async function runPolicy(policy: PolicyConfig, options: RunOptions, deps: RunDeps): Promise<RunReport> {
  const run = await startRun(policy, options, deps);
  const pause = await deps.control.pausedBy(policy.name);
  if (pause) {
    run.log.info('run_skipped', {
      reason: 'paused',
      paused_by: pause.by,
      pause_reason: pause.reason,
      scope: pause.scope,
    });
    return finishRun(run, 'skipped_paused');
  }
  // A dry run changes nothing, so it needs no lease: `plan` works while a scheduled run is active.
  const fence = options.dryRun ? null : await acquireLease(run);
  if (fence === 'locked') return finishRun(run, 'skipped_locked');
  try {
    if (fence) await recoverEarlierRuns(run);
    // A run over another store in the policy's name (reconcile) has none of its items.
    if (fence && options.checkpoint !== false) run.streaks = await loadStreaks(run);
    const holds = await deps.control.listHolds(policy.name);
    const checkpoint = await resumePoint(run);
    const retained = await takeCensus(run, holds, checkpoint === null);
    const overLimits = await checkCensus(run);
    if (overLimits) return await finishRun(run, 'aborted_limit', overLimits);
    const swept = await sweepExpired(run, { holds, fence, checkpoint, retained });
    const { fromStart, skippedRows } = swept;
    if (run.streaks) run.streaks.wholePass = swept.end.status === 'completed' && fromStart;
    // Deletion first: the compress tier runs only once everything due has been deleted.
    const end = swept.end.status === 'completed' ? await compressPass(run, holds, fence) : swept.end;
    await pruneBackups(run);
    // A stopped run (signal, pause, limit, budget) stops: no VACUUM that could take what is left of the budget.
    if (end.status === 'completed') await maintainAfterRun(run);
    run.census = await backlogAfter(run, holds, swept.end.status === 'completed' && fromStart);
    // What is still due after a pass that skipped rows in use is, at least partly, those rows.
    if (skippedRows && end.status === 'completed') run.tally.countSkippedInUse(run.census.eligible);
    if (end.status === 'completed') return await finishRun(run, 'completed');
    return await finishRun(run, 'partial', end.error, end.stopReason);
  } catch (error) {
    return await (error instanceof LeaseLostError ? stopRun(run, error) : failRun(run, error));
  } finally {
    // A release that fails (the control store is gone) must not replace the run's own outcome:
    // the lease expires on its own; the report above says what happened.
    await fence
      ?.release()
      .catch((error: unknown) => run.log.warn('lease_release_failed', { error: describeCause(error) }));
  }
}

/** The policy's lease, fenced and renewed for the run; `locked` when another run holds it. */
async function acquireLease(run: ActiveRun): Promise<Fence | 'locked'> {
  const { control } = run.deps;
  const leaseTtlMs = run.deps.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const lease = await control.acquireLease(run.policy.name, run.context.runId, leaseTtlMs);
  if (!lease) {
    const holder = await control.getLease(run.policy.name);
    run.log.info('run_skipped', {
      reason: 'locked',
      lease_owner: holder?.owner,
      lease_expires_at: holder?.expiresAt.toISOString(),
    });
    return 'locked';
  }
  // Held at most for the budget plus one lease: a run hung on a frozen dependency lets others in.
  return new Fence(control, lease, leaseTtlMs, run.budget.totalMs + leaseTtlMs);
}

/** The checkpoint a live run resumes from; null for runs that start at the start of the scope. */
async function resumePoint(run: ActiveRun): Promise<Checkpoint | null> {
  const { options, policy, deps } = run;
  const fresh = options.dryRun || run.oldestFirst || options.checkpoint === false || options.fromStart;
  return fresh ? null : await deps.control.getCheckpoint(policy.name);
}

/**
 * The census (invariant 6: before the first deletion). A store whose census is a listing anyway,
 * asked from the start of the scope, is counted from one scan the run keeps to delete from.
 */
async function takeCensus(run: ActiveRun, holds: Hold[], fromStart: boolean): Promise<RetainedListing | undefined> {
  const { store } = run.deps;
  if (fromStart && store.censusByListing) {
    const listed = await censusByListing(run, holds, run.deps.retainedItems ?? RETAINED_ITEMS);
    run.census = listed.census;
    return listed.retained;
  }
  run.census = await store.census({ cutoffs: run.cutoffs, holds });
  return undefined;
}

/** Limits on the census. Returns why the run must delete nothing, or undefined (within the limits, or forced past them). */
async function checkCensus(run: ActiveRun): Promise<RetentionError | undefined> {
  const { policy, options, log } = run;
  const census = run.census!;
  const planned = Math.min(census.eligible, run.deleteCap ?? Number.POSITIVE_INFINITY);
  // --limit (or maxDeletes) caps what this run deletes, never what the policy means to delete: the fraction guard
  // (a wrong root, "1d" typed for "1y") looks at everything eligible.
  const verdict = checkLimits({ planned, eligible: census.eligible, total: census.total, ...policy.limits });
  if (verdict.ok) return undefined;
  run.limits = { planned, total: census.total, ...policy.limits, forced: options.force };
  if (!options.force) {
    log.warn('limit_aborted', { reason: verdict.reason, advice: LIMIT_ADVICE, planned, total: census.total });
    return verdict.error;
  }
  log.warn('limit_overridden', { reason: verdict.reason, actor: run.deps.actor });
  if (!options.dryRun) await recordLimitOverride(run, verdict.reason);
  return undefined;
}

/** What the sweep starts from: the run's holds and lease, its checkpoint, or a listing kept from its census. */
interface SweepStart {
  holds: Hold[];
  fence: Fence | null;
  checkpoint: Checkpoint | null;
  retained: RetainedListing | undefined;
}

/** How the sweep went, and whether its pass started at the start of the scope and saw every row. */
interface SweepOutcome {
  end: SweepEnd;
  /** From the start of the scope (no checkpoint, no --limit), no row in use passed over. */
  fromStart: boolean;
  /** A one-statement batch passed over eligible rows in use (left, uncounted, for the next run). */
  skippedRows: boolean;
}

/** Whole partitions first, then the batch loop over steps from the checkpoint (or oldest first). */
async function sweepExpired(run: ActiveRun, start: SweepStart): Promise<SweepOutcome> {
  const { holds, fence, checkpoint } = start;
  const { log } = run;
  const sweep = new Sweep(run, fence);
  // A pass from a kept listing writes no checkpoint until it ends: one saved before (ignored by
  // --from-start) would make the next run skip what this one does not reach.
  if (start.retained && fence && run.options.fromStart && !run.oldestFirst && run.options.checkpoint !== false)
    await run.deps.control.clearCheckpoint(fence.current);
  const steps = stepsFor(run, start, sweep.batchAllowance);
  if (checkpoint) log.info('run_resumed', { cursor: checkpoint.cursor, from_run: checkpoint.runId });
  // Whole partitions would overrun --limit (a progressive rollout): oldest-first runs go row by row.
  if (!run.oldestFirst) await dropWholePartitions(run, holds, fence);
  const end = await sweep.consume(steps);
  const fromStart = checkpoint === null && !run.oldestFirst && !sweep.skippedRows;
  return { end, fromStart, skippedRows: sweep.skippedRows };
}

/**
 * Where batches come from: a listing kept from the census; with --limit, the oldest first (no checkpoint); a live run with
 * nothing to do between selecting a batch and deleting it (no backup copy) sweeps one statement
 * per batch where the store offers it; anything else goes page by page from the checkpoint.
 */
function stepsFor(run: ActiveRun, start: SweepStart, allowance: () => number): AsyncGenerator<Step> {
  const { policy, options, deps, cutoffs } = run;
  const { holds, fence, retained } = start;
  const cursor = start.checkpoint?.cursor;
  const input = { store: deps.store, cutoffs, holds, batchSize: deleteBatchSize(pageSize(policy), deps.store) };
  const cap = run.deleteCap ?? Number.POSITIVE_INFINITY;
  if (retained) return retainedSteps(retained, input.batchSize, run.oldestFirst ? cap : undefined);
  if (run.oldestFirst) return oldestFirstSteps(input, cap);
  const resume = cursor !== undefined ? { cursor } : {};
  // A dry run lists and a backup copies between selecting a batch and deleting it: page by page.
  const { sweep } = deps.store;
  if (!fence || policy.backup || !sweep) return pagedSteps({ ...input, ...resume });
  // One statement per batch never returns the held rows it passes over: the census counted them.
  if (run.census?.held !== undefined) run.tally.countHeldInStore(run.census.held, holds);
  const session = sweep.begin(run.context, { cutoffs, holds });
  const detail = options.list ? 'rows' : 'summary';
  return sweptSteps({
    session,
    detail,
    sizing: batchSizing(policy.batchSize),
    ...resume,
    fence,
    pacingMs: deps.store.pacingMs ?? 0,
    allowance,
  });
}

/** Backups older than `backup.keepFor` go after each live run. */
async function pruneBackups(run: ActiveRun): Promise<void> {
  const { policy, options, startedAt } = run;
  const backups = run.deps.store.backups;
  if (options.dryRun || !policy.backup || !backups) return;
  const olderThan = new Date(startedAt.getTime() - durationMs(policy.backup.keepFor));
  const pruned = await backups.prune(policy.backup.to, policy.name, olderThan);
  if (pruned > 0) run.log.info('backups_pruned', { pruned, keep_for: policy.backup.keepFor });
}

/**
 * What is still overdue after the run: the number the retention SLA is about. A completed live
 * pass over the whole scope from its start leaves exactly its failures behind (cutoffs are
 * fixed, so nothing new became eligible); anything else is measured with a second census.
 */
async function backlogAfter(run: ActiveRun, holds: Hold[], completePass: boolean): Promise<Census> {
  const { tally } = run;
  const before = run.census!;
  // An emergency's cutoffs are not the policy's: what it leaves is not the policy's backlog (not reported).
  if (run.options.dryRun || run.options.emergency || tally.deleted + tally.failed === 0) return before;
  if (completePass)
    return { ...before, eligible: tally.failed, oldestOverdueSeconds: tally.failedOldestOverdueSeconds };
  return run.deps.store.census({ cutoffs: run.cutoffs, holds });
}
