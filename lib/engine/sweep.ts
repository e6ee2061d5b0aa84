import type { PolicyConfig } from '../config/schema.ts';
import type { AuditIntent } from '../control/types.ts';
import type { Logger } from '../observe/log.ts';
import { RetentionError } from '../errors.ts';
import type { DeleteOutcome, SweptBatch } from '../stores/types.ts';
import type { Step } from './batches.ts';
import type { Budget } from './budget.ts';
import type { Fence } from './fence.ts';
import type { Tally } from './report.ts';
import type { RunDeps, RunOptions } from './run.ts';
import type { EligibleItem } from './types.ts';

export interface SweepState {
  runId: string;
  tally: Tally;
  budget: Budget;
  log: Logger;
  fence: Fence | null;
}

/** The batch loop: budget and lease between steps; write-ahead audit around every deletion. */
export class Sweep {
  private remaining: number;
  /** A one-statement batch passed over eligible rows in use (they stay, uncounted, for the next run). */
  skippedRows = false;

  constructor(
    private readonly policy: PolicyConfig,
    private readonly options: RunOptions,
    private readonly deps: RunDeps,
    private readonly state: SweepState,
  ) {
    this.remaining = options.limit ?? Infinity;
  }

  async consume(steps: AsyncGenerator<Step>): Promise<'completed' | 'partial'> {
    const { tally, budget, log } = this.state;
    for await (const step of steps) {
      const batchStarted = this.deps.clock.now().getTime();
      tally.scanned += step.scanned;
      tally.unclassified += step.unclassified;
      tally.held += step.held.length;
      tally.eligible += step.held.length;
      for (const item of step.held) tally.listItem(item, 'held');
      const batch = step.deletable.slice(0, this.remaining);
      tally.eligible += batch.length;
      this.remaining -= batch.length;
      if (batch.length > 0) {
        if (this.options.dryRun) for (const item of batch) tally.listItem(item, 'would_delete');
        else await this.deleteBatch(batch);
      }
      if (step.swept && step.swept.deleted > 0) this.countSwept(step.swept);
      await this.checkpoint(step);
      budget.recordBatch(this.deps.clock.now().getTime() - batchStarted);
      this.deps.onProgress?.({ scanned: tally.scanned, deleted: tally.deleted, elapsedMs: budget.elapsedMs() });
      if (step.done || this.remaining <= 0) return 'completed';
      if (this.options.signal?.aborted) {
        log.warn('run_interrupted', { reason: String(this.options.signal.reason ?? 'aborted'), deleted: tally.deleted });
        return 'partial';
      }
      if (!budget.allowsNextBatch()) {
        log.warn('budget_exhausted', { elapsed_seconds: budget.elapsedMs() / 1000, budget_seconds: budget.totalMs / 1000, deleted: tally.deleted });
        return 'partial';
      }
    }
    return 'completed';
  }

  private async checkpoint(step: Step): Promise<void> {
    const { fence, runId } = this.state;
    if (!fence || this.options.limit !== undefined) return;
    if (step.done) await this.deps.control.clearCheckpoint(fence.current);
    else if (step.cursor !== undefined) {
      await this.deps.control.saveCheckpoint(fence.current, runId, step.cursor);
      fence.confirmedByFencedWrite();
    }
  }

  private async deleteBatch(batch: EligibleItem[]): Promise<void> {
    const { control, store } = this.deps;
    const { fence, runId, tally, log } = this.state;
    await fence!.check();
    await control.recordIntents(batch.map((item) => this.intent(item)));

    let deletable = batch;
    const backupFailures: DeleteOutcome[] = [];
    if (this.policy.backup && store.backup) {
      const backedUp = await store.backup(batch, { to: this.policy.backup.to, policy: this.policy.name, runId });
      const failedKeys = new Map(backedUp.filter((outcome) => !outcome.ok).map((outcome) => [outcome.key, outcome.error]));
      for (const [key, error] of failedKeys) backupFailures.push({ key, status: 'failed', error: `backup failed, not deleted: ${error ?? 'unknown'}` });
      deletable = batch.filter((item) => !failedKeys.has(item.key));
    }

    let outcomes: DeleteOutcome[];
    try {
      outcomes = deletable.length > 0 ? await store.delete(deletable) : [];
    } catch (error) {
      // Unknown which items went: settle the batch's intents from the store itself.
      const present = await store.present(deletable.map((item) => item.key));
      await control.resolveIntents(runId, [
        ...deletable.map((item) => ({ key: item.key, status: present.has(item.key) ? ('abandoned' as const) : ('deleted' as const) })),
        ...backupFailures.map((outcome) => ({ key: outcome.key, status: 'failed' as const, ...(outcome.error ? { error: outcome.error } : {}) })),
      ]);
      throw error;
    }
    const all = [...outcomes, ...backupFailures];
    await control.resolveIntents(
      runId,
      all.map((outcome) => ({ key: outcome.key, status: outcome.status, ...(outcome.error ? { error: outcome.error } : {}) })),
    );
    tally.countOutcomes(batch, all);
    const failed = all.filter((outcome) => outcome.status === 'failed');
    log.info('batch_deleted', {
      batch_size: batch.length,
      deleted: all.filter((outcome) => outcome.status === 'deleted' || outcome.status === 'missing').length,
      failed: failed.length,
      kept: all.filter((outcome) => outcome.status === 'kept').length,
      ...(failed.length > 0 ? { failures: failed.slice(0, 5).map((outcome) => ({ key: outcome.key, error: outcome.error })) } : {}),
    });
  }

  /**
   * A batch the store deleted in one statement and recorded in its own audit trail, in that
   * statement (`retention.row_audit`, read back by `retention audit`): counted here.
   */
  private countSwept(swept: SweptBatch): void {
    const { tally, log } = this.state;
    if (!swept.audited) throw new RetentionError(`${this.deps.store.location}: ${swept.deleted} rows were deleted in one statement without their audit record`, { policy: this.policy.name, store: this.deps.store.location });
    tally.eligible += swept.deleted;
    tally.deleted += swept.deleted;
    tally.bytesFreed += swept.bytes;
    this.skippedRows ||= swept.mayHaveSkipped;
    for (const item of swept.rows ?? []) tally.listItem(item, 'deleted');
    log.info('batch_deleted', { batch_size: swept.deleted, deleted: swept.deleted, failed: 0, kept: 0, one_statement: true, ...(swept.mode ? { mode: swept.mode } : {}) });
  }

  private intent(item: EligibleItem): AuditIntent {
    return {
      runId: this.state.runId,
      policy: this.policy.name,
      store: this.deps.store.location,
      key: item.key,
      itemTimestamp: item.timestamp,
      ...(item.size !== undefined ? { size: item.size } : {}),
      rule: item.rule,
      cutoff: item.cutoff,
      actor: this.deps.actor,
      trigger: this.options.trigger,
      action: 'delete',
    };
  }
}
