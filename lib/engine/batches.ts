import { setTimeout as sleep } from 'node:timers/promises';
import { BestOf } from '../core/heap.ts';
import type { Store, SweepSession, SweptBatch } from '../core/store.ts';
import type { Cutoffs, EligibleItem, Hold } from '../core/types.ts';
import { type PageSelection, selectPage } from '../policy/plan.ts';
import type { BatchSizing } from './batchSize.ts';
import type { Fence, MonotonicClock } from './fence.ts';

/**
 * Where a run's batches come from. Each step is one store round trip: a scanned page (with what
 * it may delete) or, for `--limit` on a key-ordered store, a chunk of the oldest items found by
 * a first full pass. The run loop checks budget and lease between steps.
 */
export interface Step extends PageSelection {
  scanned: number;
  /** A batch the store already deleted in one statement (sweptSteps). */
  swept?: SweptBatch;
  /** Scan position after this step, for the checkpoint (absent when the run must not checkpoint). */
  cursor?: string;
  done: boolean;
}

export interface StepSourceInput {
  store: Store;
  cutoffs: Cutoffs;
  holds: Hold[];
  batchSize: number;
  /** Resume point (live runs and dry runs start where the checkpoint says). */
  cursor?: string;
}

/**
 * Pages of a step when few items on them are eligible: enough to fill delete requests (S3 takes
 * 1000 keys per request) while keeping a step, the unit of budget and lease checks, short.
 */
export const MAX_PAGES_PER_STEP = 8;

/**
 * Items per delete batch: `batchSize`, or more where the store fills bigger requests (S3 and Vercel
 * Blob take 1000 keys per request: 500-item batches would send half-empty ones).
 */
export function deleteBatchSize(batchSize: number, store: Store): number {
  return Math.max(batchSize, store.deletes?.batchItems ?? 0);
}

/** Batches a live run keeps in flight: as many as keep the store's requests in flight busy (one at least). */
export function batchesInFlight(batchSize: number, store: Store): number {
  const shape = store.deletes;
  if (!shape) return 1;
  return Math.max(1, Math.floor((shape.inFlight * shape.batchItems) / deleteBatchSize(batchSize, store)));
}

/**
 * Pages in store order from `cursor`, regrouped into steps of exactly `batchSize` deletable
 * items (fewer at the end, or after MAX_PAGES_PER_STEP pages). Items left over from a page wait
 * for the next step; a step's cursor never passes an item not yet handled, so resuming from a
 * checkpoint rescans at most one page.
 */
export async function* pagedSteps(input: StepSourceInput): AsyncGenerator<Step> {
  let cursor = input.cursor;
  let waiting: EligibleItem[] = [];
  let step = emptyStep();
  let pages = 0;
  for (;;) {
    const cursorBeforePage = cursor;
    const page = await input.store.scan({ cutoffs: input.cutoffs, cursor, limit: input.batchSize });
    const selection = selectPage(page.items, input.cutoffs, input.holds);
    step.scanned += page.items.length;
    step.held.push(...selection.held);
    step.unclassified += selection.unclassified;
    waiting.push(...selection.deletable);
    pages += 1;
    while (waiting.length >= input.batchSize) {
      const deletable = waiting.slice(0, input.batchSize);
      waiting = waiting.slice(input.batchSize);
      // Leftovers all come from this page: until they are handled, resume from before it.
      const safeCursor = waiting.length === 0 ? page.cursor : cursorBeforePage;
      const done = page.done && waiting.length === 0;
      yield { ...step, deletable, ...(safeCursor !== undefined ? { cursor: safeCursor } : {}), done };
      if (done) return;
      step = emptyStep();
      pages = 0;
    }
    if (page.done || pages >= MAX_PAGES_PER_STEP) {
      yield {
        ...step,
        deletable: waiting,
        ...(page.cursor !== undefined ? { cursor: page.cursor } : {}),
        done: page.done,
      };
      waiting = [];
      step = emptyStep();
      pages = 0;
    }
    if (page.done) return;
    cursor = page.cursor;
  }
}

/**
 * Live runs of stores that delete a batch in one statement (select, lock, delete, audit): each
 * step IS the deletion, so the lease is checked before the statement, not after the step.
 * `sizing` says how many rows each statement may delete (the policy's `batchSize`, or adaptive:
 * batchSize.ts) and learns from how long each took; the run's allowance caps every statement.
 */
export async function* sweptSteps(input: {
  session: SweepSession;
  detail: 'rows' | 'summary';
  sizing: BatchSizing;
  cursor?: string;
  fence: Fence;
  /** The store's wait between batches (`Store.pacingMs`), before the lease check. */
  pacingMs: number;
  allowance: () => number;
  /** Times the statements (performance.now() unless a test says otherwise). */
  now?: MonotonicClock;
}): AsyncGenerator<Step> {
  const now = input.now ?? (() => performance.now());
  let cursor = input.cursor;
  for (let first = true; ; first = false) {
    const limit = Math.min(input.sizing.next(), input.allowance());
    if (limit <= 0) return;
    if (!first && input.pacingMs > 0) {
      // After a pause, a round trip: the checkpoint written before it is no longer fresh.
      await sleep(input.pacingMs);
      await input.fence.check();
    } else {
      // The previous step's checkpoint (a fenced write, just before this) counts as the check.
      await input.fence.checkBeforeNext();
    }
    const started = now();
    const batch = await input.session.next({
      ...(cursor !== undefined ? { cursor } : {}),
      limit,
      detail: input.detail,
    });
    input.sizing.record({ asked: limit, deleted: batch.deleted, elapsedMs: now() - started });
    yield {
      ...emptyStep(),
      scanned: batch.deleted,
      swept: batch,
      ...(batch.cursor !== undefined ? { cursor: batch.cursor } : {}),
      done: batch.done,
    };
    if (batch.done) return;
    cursor = batch.cursor;
  }
}

function emptyStep(): Step {
  return { scanned: 0, deletable: [], held: [], unclassified: 0, done: false };
}

/**
 * `--limit N` deletes the N oldest eligible items. A timestamp-ordered store yields them first
 * anyway; a key-ordered one needs a full pass that keeps only the N oldest (memory bounded by N),
 * then deletes them in chunks. Steps carry no cursor: a limited run never moves the checkpoint.
 */
export async function* oldestFirstSteps(input: Omit<StepSourceInput, 'cursor'>, limit: number): AsyncGenerator<Step> {
  if (input.store.order === 'timestamp') {
    for await (const step of pagedSteps(input)) {
      const { cursor: _checkpointless, ...rest } = step;
      yield rest;
    }
    return;
  }
  const oldest = new OldestItems(limit);
  for await (const step of pagedSteps(input)) {
    for (const item of step.deletable) oldest.offer(item);
    yield { scanned: step.scanned, held: step.held, unclassified: step.unclassified, deletable: [], done: false };
  }
  const chosen = oldest.sorted();
  for (let start = 0; start < chosen.length; start += input.batchSize) {
    const deletable = chosen.slice(start, start + input.batchSize);
    yield { scanned: 0, held: [], unclassified: 0, deletable, done: start + input.batchSize >= chosen.length };
  }
  if (chosen.length === 0) yield { scanned: 0, held: [], unclassified: 0, deletable: [], done: true };
}

/** Keeps the `capacity` oldest items offered (by timestamp, then key). */
export class OldestItems {
  private readonly oldest: BestOf<EligibleItem>;

  constructor(capacity: number) {
    this.oldest = new BestOf(capacity, (a, b) => newer(b, a));
  }

  offer(item: EligibleItem): void {
    this.oldest.offer(item);
  }

  /** Oldest first. */
  sorted(): EligibleItem[] {
    return this.oldest.sorted();
  }
}

/** True when `a` sorts after `b` (newer timestamp, then greater key). */
function newer(a: EligibleItem, b: EligibleItem): boolean {
  return olderFirst(a, b) > 0;
}

/** Sort order of `--limit`: oldest timestamp first, then key. */
export function olderFirst(a: EligibleItem, b: EligibleItem): number {
  const delta = a.timestamp.getTime() - b.timestamp.getTime();
  if (delta !== 0) return delta;
  return a.key > b.key ? 1 : a.key < b.key ? -1 : 0;
}
