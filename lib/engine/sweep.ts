import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditResolution } from '../core/control.ts';
import type { DeleteOutcome, SweptBatch } from '../core/store.ts';
import type { EligibleItem, StopReason } from '../core/types.ts';
import {
  describeCause,
  InterruptedError,
  LimitReachedError,
  type RetentionError,
  UnauditedDeletionError,
} from '../errors.ts';
import { batchesInFlight, type Step } from './batches.ts';
import { pageSize } from './batchSize.ts';
import type { Fence } from './fence.ts';
import { InOrder } from './pipeline.ts';
import { type ActiveRun, auditIntent } from './start.ts';

/** How a sweep ended: its whole pass done, or stopped early, and why. */
export type SweepEnd = { status: 'completed' } | { status: 'partial'; stopReason: StopReason; error?: RetentionError };

/**
 * The batch loop: budget, stop requests and lease between steps; write-ahead audit around every
 * deletion, resolved truthfully whatever happened to the lease meanwhile.
 */
export class Sweep {
  /** Items still allowed by `--limit`. */
  private remaining: number;
  /** Deletions still allowed by `limits.maxDeletesPerRun` (enforced on what is deleted, not only on the census). */
  private allowance: number;
  /** A one-statement batch passed over eligible rows in use (they stay, uncounted, for the next run). */
  skippedRows = false;
  private deletedBatches = 0;
  /** Delete batches in flight at once (the store's `deletes` shape; one otherwise). */
  private readonly inFlight: number;
  private readonly pipeline = new InOrder<{ step: Step; truncated: boolean; started: number }>();
  /** The first batch (or checkpoint) that threw: later steps are not checkpointed, and the run rethrows it. */
  private failure: { cause: unknown } | undefined;
  /** A launched batch a signal stopped before its deletion: no later step may be checkpointed past it. */
  private interrupted = false;

  /** `fence`: the run's lease (null for a dry run, which deletes nothing). */
  constructor(
    private readonly run: ActiveRun,
    private readonly fence: Fence | null,
  ) {
    const { options, policy } = run;
    this.remaining = run.deleteCap ?? Number.POSITIVE_INFINITY;
    this.allowance = options.force || options.dryRun ? Number.POSITIVE_INFINITY : policy.limits.maxDeletesPerRun;
    this.inFlight = options.dryRun ? 1 : batchesInFlight(pageSize(policy), run.deps.store);
  }

  /**
   * How many items the next batch may delete (one-statement sweeps ask before each statement):
   * none once a signal asked to stop, so a signal takes effect before the next deletion.
   */
  readonly batchAllowance = (): number =>
    this.run.options.signal?.aborted || this.failure || this.pipeline.failed
      ? 0
      : Math.min(this.remaining, this.allowance);

  /**
   * Launches a batch per step, up to `inFlight` at once (the next step is scanned while they run),
   * and settles them in step order: counts, checkpoint, budget. A stop (done, signal, limit,
   * budget, disk) stops launching and waits for the batches in flight, whose outcomes are recorded.
   */
  async consume(steps: AsyncGenerator<Step>): Promise<SweepEnd> {
    try {
      for await (const step of steps) {
        const truncated = this.launch(step);
        // A batch failed: launch nothing more; the rest settle and its error ends the run.
        await this.settle(this.pipeline.failed ? 0 : this.inFlight - 1);
        const end = await this.stopAfter(step, truncated);
        if (end) return end;
      }
      await this.settle(0);
      // Steps end without a `done` step only when the allowance stopped a one-statement sweep.
      return this.stopRequested() ?? { status: 'completed' };
    } catch (error) {
      // A scan (or a batch) threw: the batches in flight still settle, their intents resolved, first.
      await this.settle(0).catch(() => undefined);
      throw error;
    }
  }

  /** Counts what the step scanned and starts its batch; true when the allowance cut the batch short. */
  private launch(step: Step): boolean {
    const { tally, options, deps } = this.run;
    const started = deps.clock.now().getTime();
    tally.scanned += step.scanned;
    tally.unclassified += step.unclassified;
    for (const item of step.held) tally.countHeld(item);
    // Reserved now, not when the batch settles: batches in flight never add up past the allowance.
    const batch = step.deletable.slice(0, this.batchAllowance());
    tally.eligible += batch.length;
    this.remaining -= batch.length;
    if (!options.dryRun) this.allowance -= batch.length;
    const truncated = batch.length < step.deletable.length;
    if (options.dryRun)
      for (const item of batch) {
        tally.bytesToFree += item.size ?? 0;
        tally.listItem(item, 'would_delete');
      }
    if (step.swept && step.swept.deleted > 0) this.countSwept(step.swept);
    const work = batch.length > 0 && !options.dryRun ? this.deleteBatch(batch) : undefined;
    this.pipeline.launch({ step, truncated, started }, work);
    return truncated;
  }

  /**
   * Settles launched steps in order once at most `maxPending` run: checkpoint, budget, progress.
   * After a batch failed, nothing later is checkpointed; the rest settle, then its error is thrown.
   */
  private async settle(maxPending: number): Promise<void> {
    const { tally, budget, deps } = this.run;
    for (;;) {
      for (const { value, error } of await this.pipeline.settled(this.failure ? 0 : maxPending)) {
        if (this.failure) continue;
        if (error && error.cause instanceof InterruptedError && this.run.options.signal?.aborted) {
          // Stopped by the signal before its deletion, its intents `abandoned`: a stop, not a failure.
          this.interrupted = true;
          continue;
        }
        if (error) {
          this.failure = error;
          continue;
        }
        try {
          await this.checkpoint(value.step, value.truncated);
        } catch (cause) {
          this.failure = { cause };
          continue;
        }
        budget.recordBatch(deps.clock.now().getTime() - value.started);
        deps.onProgress?.({ scanned: tally.scanned, deleted: tally.deleted, elapsedMs: budget.elapsedMs() });
      }
      if (!this.failure) return;
      if (this.pipeline.pending === 0) throw this.failure.cause;
    }
  }

  /** After launching `step`: whether the run ends here (the batches in flight settled first). */
  private async stopAfter(step: Step, truncated: boolean): Promise<SweepEnd | undefined> {
    const { tally, budget, log, options } = this.run;
    const finished = (step.done && !truncated) || this.remaining <= 0;
    // Over budget stops the launching too: the first batch always runs, but the batches behind it
    // in flight have no recorded time yet for `allowsNextBatch` to judge them by.
    const overBudget = !budget.allowsNextBatch() || budget.remainingMs() <= 0;
    const stopping = options.signal?.aborted || this.allowance <= 0 || overBudget;
    const diskOk = !finished && !stopping && (await this.diskRecovered());
    if (!finished && !stopping && !diskOk) return undefined;
    await this.settle(0);
    if (finished) return { status: 'completed' };
    if (diskOk) {
      log.info('disk_ok', { deleted: tally.deleted });
      return { status: 'partial', stopReason: 'disk_ok' };
    }
    const stop = this.stopRequested();
    if (stop) return stop;
    log.warn('budget_exhausted', {
      elapsed_seconds: budget.elapsedMs() / 1000,
      budget_seconds: budget.totalMs / 1000,
      deleted: tally.deleted,
    });
    return { status: 'partial', stopReason: 'budget' };
  }

  /** A signal, or the per-run deletion limit reached: the run stops here, `partial`. */
  private stopRequested(): SweepEnd | undefined {
    const { tally, log, options, policy } = this.run;
    if (options.signal?.aborted) {
      const reason = String(options.signal.reason ?? 'a signal');
      log.warn('run_interrupted', { reason, deleted: tally.deleted });
      return { status: 'partial', stopReason: 'signal', error: new InterruptedError(reason) };
    }
    if (this.allowance <= 0) {
      const max = policy.limits.maxDeletesPerRun;
      log.warn('limit_reached', { deleted: tally.deleted, max_deletes_per_run: max });
      return { status: 'partial', stopReason: 'limit', error: new LimitReachedError(max, tally.deleted) };
    }
    return undefined;
  }

  /** A run for a full disk stops once the disk is back under its warning line: that was its purpose. */
  private async diskRecovered(): Promise<boolean> {
    const diskOk = this.run.options.emergency?.diskOk;
    return diskOk !== undefined && (await diskOk());
  }

  /** `truncated`: the allowance cut this step's batch short, so its cursor would skip items: keep the last checkpoint. */
  private async checkpoint(step: Step, truncated: boolean): Promise<void> {
    const { fence } = this;
    const { control } = this.run.deps;
    if (!fence || this.run.oldestFirst || this.run.options.checkpoint === false || truncated || this.interrupted)
      return;
    if (step.done) await control.clearCheckpoint(fence.current);
    else if (step.cursor !== undefined) {
      const startedAt = fence.timestamp();
      await control.saveCheckpoint(fence.current, this.run.context.runId, step.cursor);
      fence.confirmedByFencedWrite(startedAt);
    }
  }

  private async deleteBatch(batch: EligibleItem[]): Promise<void> {
    const { control, store } = this.run.deps;
    const { tally, log, policy, context: run } = this.run;
    const fence = this.fence!;
    await control.recordIntents(batch.map((item) => auditIntent(this.run, item, 'delete')));
    const settle = (resolutions: AuditResolution[]) => control.resolveIntents(run.runId, resolutions);

    let deletable = batch;
    const backupFailures: DeleteOutcome[] = [];
    try {
      if (policy.backup && store.backups) {
        const backedUp = await store.backups.backup(batch, {
          to: policy.backup.to,
          policy: policy.name,
          runId: run.runId,
        });
        const failedKeys = new Map(
          backedUp.filter((outcome) => !outcome.ok).map((outcome) => [outcome.key, outcome.error]),
        );
        for (const [key, error] of failedKeys)
          backupFailures.push({ key, status: 'failed', error: `backup failed, not deleted: ${error ?? 'unknown'}` });
        deletable = batch.filter((item) => !failedKeys.has(item.key));
      }
      // Room for replicas and other writers between batches, before the lease check, never after.
      if (this.deletedBatches++ > 0 && store.pacingMs) await sleep(store.pacingMs);
      // Right before the destructive call (after the backup, which may take long): a pause, a
      // takeover or a lease break since the last step stops the run here, nothing deleted; so does
      // a signal that came while this batch, launched before it, waited its turn.
      await fence.check();
      const { signal } = this.run.options;
      if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'a signal'));
    } catch (error) {
      await settle(
        batch.map((item) => ({
          key: item.key,
          status: 'abandoned' as const,
          error: `not deleted: ${describeCause(error)}`,
        })),
      );
      throw error;
    }

    let outcomes: DeleteOutcome[];
    try {
      outcomes = deletable.length > 0 ? await store.delete(deletable, { run, beforeRequest: fence.assertHeld }) : [];
    } catch (error) {
      // Unknown which items went: ask the store. Resolving overwrites an `abandoned` written
      // meanwhile by a run that took over, so the record says what this run really did.
      const present = await store.present(deletable.map((item) => item.key));
      await settle([
        ...deletable.map((item) => ({
          key: item.key,
          status: present.has(item.key) ? ('abandoned' as const) : ('deleted' as const),
        })),
        ...backupFailures.map((outcome) => ({
          key: outcome.key,
          status: 'failed' as const,
          ...(outcome.error ? { error: outcome.error } : {}),
        })),
      ]);
      const gone = deletable.filter((item) => !present.has(item.key));
      const deleted = gone.map((item) => ({ key: item.key, status: 'deleted' as const }));
      tally.countOutcomes(gone, deleted);
      this.run.streaks?.note(deleted);
      throw error;
    }
    // A store stopped by `beforeRequest` (the lease can no longer be trusted) returns the outcomes
    // of what it sent; the rest was never attempted.
    const answered = new Set(outcomes.map((outcome) => outcome.key));
    const unattempted = deletable.filter((item) => !answered.has(item.key));
    const all = [...outcomes, ...backupFailures];
    await settle([
      ...all.map((outcome) => ({
        key: outcome.key,
        status: outcome.status,
        ...(outcome.error ? { error: outcome.error } : {}),
      })),
      ...unattempted.map((item) => ({
        key: item.key,
        status: 'abandoned' as const,
        error: 'not attempted: the run stopped (lease)',
      })),
    ]);
    tally.countOutcomes(batch, all);
    this.run.streaks?.note(all);
    const failed = all.filter((outcome) => outcome.status === 'failed');
    log.info('batch_deleted', {
      batch_size: batch.length,
      deleted: all.filter((outcome) => outcome.status === 'deleted').length,
      missing: all.filter((outcome) => outcome.status === 'missing').length,
      failed: failed.length,
      kept: all.filter((outcome) => outcome.status === 'kept').length,
      held: all.filter((outcome) => outcome.status === 'held').length,
      ...(failed.length > 0
        ? { failures: failed.slice(0, 5).map((outcome) => ({ key: outcome.key, error: outcome.error })) }
        : {}),
      ...(unattempted.length > 0 ? { not_attempted: unattempted.length } : {}),
    });
    if (unattempted.length > 0) fence.assertHeld();
  }

  /**
   * A batch the store deleted in one statement and recorded in its own audit trail, in that
   * statement (`retention.row_audit`, read back by `retention audit`): counted here.
   */
  private countSwept(swept: SweptBatch): void {
    const { tally, log, policy } = this.run;
    const { location } = this.run.deps.store;
    if (!swept.audited) throw new UnauditedDeletionError(location, swept.deleted, { policy: policy.name });
    tally.eligible += swept.deleted;
    tally.deleted += swept.deleted;
    this.allowance -= swept.deleted;
    tally.bytesFreed += swept.bytes;
    this.skippedRows ||= swept.mayHaveSkipped;
    for (const item of swept.rows ?? []) tally.listItem(item, 'deleted');
    log.info('batch_deleted', {
      batch_size: swept.deleted,
      deleted: swept.deleted,
      failed: 0,
      kept: 0,
      one_statement: true,
      ...(swept.mode ? { mode: swept.mode } : {}),
    });
  }
}
