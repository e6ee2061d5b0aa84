import { describe, expect, it } from 'vitest';
import type { SweepSession, SweptBatch } from '../../lib/core/store.ts';
import { sweptSteps } from '../../lib/engine/batches.ts';
import {
  ADAPTIVE_MAX,
  ADAPTIVE_MIN,
  ADAPTIVE_START,
  AdaptiveBatchSize,
  BATCH_TARGET_MS,
  batchSizing,
  FixedBatchSize,
} from '../../lib/engine/batchSize.ts';
import type { Fence } from '../../lib/engine/fence.ts';

/** Feeds `sizing` full batches that take `msPerRow` each; returns the sizes it asked for. */
function sizesAt(sizing: AdaptiveBatchSize, msPerRow: number, batches: number): number[] {
  const sizes: number[] = [];
  for (let index = 0; index < batches; index += 1) {
    const asked = sizing.next();
    sizes.push(asked);
    sizing.record({ asked, deleted: asked, elapsedMs: asked * msPerRow });
  }
  return sizes;
}

describe('adaptive batch size', () => {
  it('doubles while full batches take under half the target, up to the bound', () => {
    // 2 µs per row: 25,000 rows take 50 ms, the bound is reached before the target.
    expect(sizesAt(new AdaptiveBatchSize(), 0.002, 8)).toEqual([
      ADAPTIVE_START,
      1_000,
      2_000,
      4_000,
      8_000,
      16_000,
      ADAPTIVE_MAX,
      ADAPTIVE_MAX,
    ]);
  });

  it('stops growing where the next doubling would pass the target, and keeps that size', () => {
    // 10 µs per row: 4,000 rows take 40 ms; 8,000 would take 80 ms (> half the target): kept.
    const sizes = sizesAt(new AdaptiveBatchSize(), 0.01, 10);
    expect(sizes.slice(0, 5)).toEqual([500, 1_000, 2_000, 4_000, 8_000]);
    expect(sizes.slice(5)).toEqual([8_000, 8_000, 8_000, 8_000, 8_000]);
    expect(Math.max(...sizes) * 0.01).toBeLessThanOrEqual(BATCH_TARGET_MS);
  });

  it('shrinks at once in proportion to a batch over the target, to its lower bound at worst', () => {
    const sizing = new AdaptiveBatchSize();
    sizesAt(sizing, 0.002, 7);
    expect(sizing.next()).toBe(ADAPTIVE_MAX);
    // The table got 10 × slower (a lock, a cold cache): 25,000 rows took 500 ms.
    sizing.record({ asked: ADAPTIVE_MAX, deleted: ADAPTIVE_MAX, elapsedMs: 500 });
    expect(sizing.next()).toBe(2_500); // aimed at half the target: 2,500 × 20 µs = 50 ms
    sizing.record({ asked: 2_500, deleted: 2_500, elapsedMs: 150 });
    expect(sizing.next()).toBe(833);
    for (let index = 0; index < 5; index += 1) sizing.record({ asked: 500, deleted: 10, elapsedMs: 10_000 });
    expect(sizing.next()).toBe(ADAPTIVE_MIN);
  });

  it('never grows on a short batch (the end of the scope or of a walk), nor on one the allowance cut', () => {
    const sizing = new AdaptiveBatchSize();
    sizing.record({ asked: 500, deleted: 20, elapsedMs: 1 });
    expect(sizing.next()).toBe(500);
    sizing.record({ asked: 30, deleted: 30, elapsedMs: 1 });
    expect(sizing.next()).toBe(500);
    sizing.record({ asked: 500, deleted: 500, elapsedMs: 1 });
    expect(sizing.next()).toBe(1_000);
  });

  it('keeps its bounds whatever it is told', () => {
    const sizing = new AdaptiveBatchSize({ start: 50, min: 100, max: 300, targetMs: 100 });
    expect(sizing.next()).toBe(100);
    sizesAt(sizing, 0, 5);
    expect(sizing.next()).toBe(300);
  });

  it('is adaptive only when the policy leaves batchSize out; an explicit size never changes', () => {
    expect(batchSizing(undefined)).toBeInstanceOf(AdaptiveBatchSize);
    const fixed = batchSizing(5_000);
    expect(fixed).toBeInstanceOf(FixedBatchSize);
    fixed.record({ asked: 5_000, deleted: 5_000, elapsedMs: 1 });
    fixed.record({ asked: 5_000, deleted: 5_000, elapsedMs: 10_000 });
    expect(fixed.next()).toBe(5_000);
  });
});

/** A store holding `total` due rows, deleting `msPerRow` per row by the test's clock. */
function fakeSweep(total: number, msPerRow: number) {
  let clock = 0;
  let left = total;
  const asked: number[] = [];
  const session: SweepSession = {
    next: async ({ limit }): Promise<SweptBatch> => {
      asked.push(limit);
      const deleted = Math.min(limit, left);
      left -= deleted;
      clock += deleted * msPerRow;
      return {
        deleted,
        bytes: 0,
        audited: true,
        mayHaveSkipped: false,
        cursor: String(total - left),
        done: left === 0,
      };
    },
  };
  return { session, asked, now: () => clock, left: () => left };
}

const noFence = { check: async () => undefined, checkBeforeNext: async () => undefined } as unknown as Fence;

/** One-statement steps over the fake table, sized adaptively, without a lease or pacing. */
function adaptiveSteps(store: ReturnType<typeof fakeSweep>, allowance: () => number) {
  return sweptSteps({
    session: store.session,
    detail: 'summary',
    sizing: new AdaptiveBatchSize(),
    fence: noFence,
    pacingMs: 0,
    allowance,
    now: store.now,
  });
}

describe('sweptSteps with adaptive sizing', () => {
  it('asks for larger statements as they stay fast, and deletes everything due', async () => {
    const store = fakeSweep(100_000, 0.002);
    let deleted = 0;
    const steps = adaptiveSteps(store, () => Number.POSITIVE_INFINITY);
    for await (const step of steps) deleted += step.swept!.deleted;
    expect(deleted).toBe(100_000);
    expect(store.asked.slice(0, 7)).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 25_000]);
    expect(store.asked.length).toBeLessThan(12);
  });

  it('never asks past the allowance (--limit, maxDeletesPerRun) however large the size has grown', async () => {
    const store = fakeSweep(100_000, 0.001);
    let allowance = 20_000;
    const steps = adaptiveSteps(store, () => allowance);
    for await (const step of steps) allowance -= step.swept!.deleted;
    expect(store.asked).toEqual([500, 1_000, 2_000, 4_000, 8_000, 4_500]);
    expect(100_000 - store.left()).toBe(20_000);
  });
});
