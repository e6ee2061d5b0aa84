/**
 * How many rows the next one-statement batch may delete when the policy sets no `batchSize`:
 * sized by how long the last statement took, so that a run deletes in as few statements as
 * keep each one short. A statement holds its row locks (and the row-audit head row) until it
 * commits: `targetMs` bounds that, and with it the per-batch p99, rather than a row count that
 * is too small on a fast table (a round trip and a checkpoint per 500 rows) and too large on a
 * slow one.
 *
 * The rule is multiplicative and bounded: after a full batch (as many rows as asked for) that
 * took under half the target, the next is `GROWTH` times larger (doubling a batch roughly
 * doubles its time, so it stays under the target); after one over the target, it shrinks in
 * proportion to the overshoot (at least halved); anything in between keeps the size. A short
 * batch (the end of the scope, or of a statement's walk) says nothing about a larger one and
 * never grows the size, but one that was slow still shrinks it.
 */
export interface BatchSizing {
  /** Rows the next statement may delete at most (before the run's allowance caps it). */
  next(): number;
  /** What the last statement did: `asked` rows requested, `deleted` rows it deleted, in `elapsedMs`. */
  record(batch: { asked: number; deleted: number; elapsedMs: number }): void;
}

/** Items per page and batch of a policy without `batchSize` where batches are not sized adaptively. */
export const DEFAULT_BATCH_SIZE = 500;

/** Items per scan page and delete batch: the policy's `batchSize`, else DEFAULT_BATCH_SIZE. */
export function pageSize(policy: { batchSize?: number | undefined }): number {
  return policy.batchSize ?? DEFAULT_BATCH_SIZE;
}

/** The size of a first batch: the fixed default, small enough for any table. */
export const ADAPTIVE_START = DEFAULT_BATCH_SIZE;
/** Never fewer: below this the round trip and the checkpoint dominate the batch. */
export const ADAPTIVE_MIN = 100;
/**
 * Never more: a one-statement sweep walks at most 25,000 index entries per statement
 * (`walkLimit` in stores/postgres/sql.ts), so a larger limit could not fill a batch anyway.
 */
export const ADAPTIVE_MAX = 25_000;
/** How long one statement may take: the per-batch p99 the rows sweep promises. */
export const BATCH_TARGET_MS = 100;
const GROWTH = 2;

export class AdaptiveBatchSize implements BatchSizing {
  private size: number;

  constructor(
    private readonly bounds: { start: number; min: number; max: number; targetMs: number } = {
      start: ADAPTIVE_START,
      min: ADAPTIVE_MIN,
      max: ADAPTIVE_MAX,
      targetMs: BATCH_TARGET_MS,
    },
  ) {
    this.size = clamp(bounds.start, bounds.min, bounds.max);
  }

  next(): number {
    return this.size;
  }

  record({ asked, deleted, elapsedMs }: { asked: number; deleted: number; elapsedMs: number }): void {
    const { min, max, targetMs } = this.bounds;
    // A batch the allowance cut below the current size says nothing about the current size.
    const full = deleted >= asked && asked >= this.size;
    if (elapsedMs > targetMs) {
      const shrink = Math.min(0.5, targetMs / (2 * elapsedMs));
      this.size = clamp(Math.floor(this.size * shrink), min, max);
    } else if (full && elapsedMs * GROWTH <= targetMs) {
      this.size = clamp(this.size * GROWTH, min, max);
    }
  }
}

/** An operator's `batchSize`: every batch that size, whatever it takes. */
export class FixedBatchSize implements BatchSizing {
  constructor(private readonly size: number) {}

  next(): number {
    return this.size;
  }

  record(): void {}
}

/** Adaptive when the policy leaves `batchSize` out; the operator's number otherwise. */
export function batchSizing(batchSize: number | undefined): BatchSizing {
  return batchSize === undefined ? new AdaptiveBatchSize() : new FixedBatchSize(batchSize);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
