import type { Clock } from '../core/types.ts';

/**
 * The wall-clock time a run may use: `min(policy budget, platform deadline - margin)`.
 * A batch starts only if the previous batch's duration still fits, so a run overshoots by at
 * most one batch (invariant 4).
 */
export class Budget {
  readonly totalMs: number;
  private readonly startedAt: number;
  private slowestBatchMs = 0;
  private batches = 0;

  constructor(
    private readonly clock: Clock,
    budgetMs: number,
    deadline?: { at: Date; marginMs: number },
  ) {
    this.startedAt = clock.now().getTime();
    const untilDeadline = deadline
      ? deadline.at.getTime() - deadline.marginMs - this.startedAt
      : Number.POSITIVE_INFINITY;
    this.totalMs = Math.max(0, Math.min(budgetMs, untilDeadline));
  }

  elapsedMs(): number {
    return this.clock.now().getTime() - this.startedAt;
  }

  /** Records how long a batch took, to predict whether the next one fits. */
  recordBatch(durationMs: number): void {
    this.slowestBatchMs = Math.max(this.slowestBatchMs, durationMs);
    this.batches += 1;
  }

  /**
   * The first batch always runs while any budget is left, so that every run makes progress
   * however small the budget: repeated runs always finish a backlog.
   */
  allowsNextBatch(): boolean {
    if (this.totalMs <= 0) return false;
    if (this.batches === 0) return true;
    return this.elapsedMs() + this.slowestBatchMs <= this.totalMs;
  }

  remainingMs(): number {
    return Math.max(0, this.totalMs - this.elapsedMs());
  }

  usedPercent(): number {
    if (this.totalMs === 0) return 100;
    return Math.round((this.elapsedMs() / this.totalMs) * 1000) / 10;
  }
}
