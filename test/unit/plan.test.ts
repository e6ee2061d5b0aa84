import { describe, expect, it } from 'vitest';
import type { Store } from '../../lib/core/store.ts';
import type { Clock, EligibleItem, Hold, Item } from '../../lib/core/types.ts';
import { MAX_PAGES_PER_STEP, OldestItems, pagedSteps } from '../../lib/engine/batches.ts';
import { Budget } from '../../lib/engine/budget.ts';
import { checkLimits } from '../../lib/policy/limits.ts';
import { computeCutoffs, describeCutoffs, latestCutoff, listingCutoffs, selectPage } from '../../lib/policy/plan.ts';

const NOW = new Date('2026-11-22T12:00:00Z');
const DAY = 86_400_000;
const ago = (ms: number): Date => new Date(NOW.getTime() - ms);

const purposeRetention = {
  by: 'purpose_code',
  rules: { 'System Testing': '24h', General: '30d', Financial: '1y', Legal: '7y', Medical: '10y' },
  default: '30d',
};

describe('computeCutoffs', () => {
  it('fixes one cutoff per purpose at run start', () => {
    const cutoffs = computeCutoffs(purposeRetention, NOW);
    expect(cutoffs.computedAt).toEqual(NOW);
    expect(Object.fromEntries(cutoffs.rules.map((rule) => [rule.value, rule.cutoff.toISOString()]))).toEqual({
      'System Testing': '2026-11-21T12:00:00.000Z',
      General: '2026-10-23T12:00:00.000Z',
      Financial: '2025-11-22T12:00:00.000Z',
      Legal: ago(7 * 365 * DAY).toISOString(),
      Medical: ago(10 * 365 * DAY).toISOString(),
    });
    expect(cutoffs.fallback?.cutoff).toEqual(ago(30 * DAY));
    expect(describeCutoffs(cutoffs)).toContainEqual({
      rule: 'purpose_code=Financial: 1y',
      cutoff: '2025-11-22T12:00:00.000Z',
    });
    expect(latestCutoff(cutoffs)).toEqual(ago(DAY));
  });

  it('lets --before tighten a cutoff but never loosen it', () => {
    const earlier = new Date('2020-01-01T00:00:00Z');
    expect(computeCutoffs('30d', NOW, earlier).fallback?.cutoff).toEqual(earlier);
    const later = new Date('2026-11-20T00:00:00Z');
    expect(computeCutoffs('30d', NOW, later).fallback?.cutoff).toEqual(ago(30 * DAY));
    const mixed = computeCutoffs(purposeRetention, NOW, new Date('2026-01-01T00:00:00Z'));
    expect(mixed.rules.find((rule) => rule.value === 'General')?.cutoff).toEqual(new Date('2026-01-01T00:00:00Z'));
    expect(mixed.rules.find((rule) => rule.value === 'Legal')?.cutoff).toEqual(ago(7 * 365 * DAY));
  });
});

describe('listingCutoffs', () => {
  it('puts every rule past every item, even for the longest retention a policy may have (1000y)', () => {
    const now = new Date('2026-12-07T00:00:00Z');
    const cutoffs = listingCutoffs({ by: 'purpose', rules: { Legal: '1000y', Temp: '1d' }, default: '200y' }, now);
    for (const rule of [...cutoffs.rules, cutoffs.fallback!])
      expect(rule.cutoff.getTime()).toBeGreaterThan(now.getTime());
  });
});

describe('selectPage', () => {
  const cutoffs = computeCutoffs({ by: 'purpose_code', rules: { General: '30d' } }, NOW);
  const item = (key: string, age: number, purpose: string | null): Item => ({
    key,
    timestamp: ago(age),
    attributes: { purpose_code: purpose },
  });
  const hold: Hold = {
    id: 1,
    policy: null,
    key: 'held/',
    prefix: true,
    reason: 'case 7',
    createdBy: 'test',
    createdAt: NOW,
  };

  it('splits a page into deletable, held, unclassified and too young', () => {
    const selection = selectPage(
      [
        item('old', 31 * DAY, 'General'),
        item('at-cutoff', 30 * DAY, 'General'),
        item('young', DAY, 'General'),
        item('held/old', 40 * DAY, 'General'),
        item('mystery', 400 * DAY, 'Unknown'),
        item('no-purpose', 400 * DAY, null),
      ],
      cutoffs,
      [hold],
    );
    expect(selection.deletable.map((candidate) => candidate.key)).toEqual(['old']);
    expect(selection.deletable[0]?.rule).toBe('purpose_code=General: 30d');
    expect(selection.held.map((candidate) => [candidate.key, candidate.hold.id])).toEqual([['held/old', 1]]);
    expect(selection.unclassified).toBe(2);
  });

  it('holds a row by its linked file key, exact or prefix', () => {
    const fileHold: Hold = { ...hold, id: 2, key: 'docs/d3.pdf', prefix: false };
    const row = (key: string, file: string): Item => ({ ...item(key, 40 * DAY, 'General'), linkedKey: file });
    const selection = selectPage([row('3', 'docs/d3.pdf'), row('4', 'held/d4.pdf'), row('5', 'docs/d5.pdf')], cutoffs, [
      hold,
      fileHold,
    ]);
    expect(selection.held.map((candidate) => [candidate.key, candidate.hold.id])).toEqual([
      ['3', 2],
      ['4', 1],
    ]);
    expect(selection.deletable.map((candidate) => candidate.key)).toEqual(['5']);
  });
});

describe('checkLimits', () => {
  it.each([
    [{ planned: 10, eligible: 10, total: 100, maxDeletesPerRun: 10, maxDeleteFraction: 0.1 }, true, ''],
    [
      { planned: 11, eligible: 11, total: 1000, maxDeletesPerRun: 10, maxDeleteFraction: 0.5 },
      false,
      'exceed limits.maxDeletesPerRun 10',
    ],
    [
      { planned: 51, eligible: 51, total: 100, maxDeletesPerRun: 1000, maxDeleteFraction: 0.5 },
      false,
      '51 of 100 items (51%) are eligible, over limits.maxDeleteFraction 50%',
    ],
    [{ planned: 0, eligible: 0, total: 0, maxDeletesPerRun: 1, maxDeleteFraction: 0.1 }, true, ''],
    // --limit 5 on a root where 90 % is eligible: the slice is small, the policy is still wrong.
    [
      { planned: 5, eligible: 90, total: 100, maxDeletesPerRun: 1000, maxDeleteFraction: 0.5 },
      false,
      '90 of 100 items (90%) are eligible',
    ],
    // --limit is how a large but intended backlog passes maxDeletesPerRun in slices.
    [{ planned: 10, eligible: 40, total: 100, maxDeletesPerRun: 10, maxDeleteFraction: 0.5 }, true, ''],
  ])('%j → ok=%s', (input, ok, reason) => {
    const verdict = checkLimits(input);
    expect(verdict.ok).toBe(ok);
    if (!verdict.ok) expect(verdict.reason).toContain(reason);
  });
});

describe('Budget', () => {
  class StepClock implements Clock {
    constructor(public at: number) {}
    now(): Date {
      return new Date(this.at);
    }
  }

  it('always allows the first batch, then stops when the slowest batch would overrun', () => {
    const clock = new StepClock(0);
    const budget = new Budget(clock, 1000);
    expect(budget.allowsNextBatch()).toBe(true);
    clock.at = 300;
    budget.recordBatch(300);
    expect(budget.allowsNextBatch()).toBe(true);
    clock.at = 750;
    budget.recordBatch(450);
    expect(budget.allowsNextBatch()).toBe(false);
    expect(budget.usedPercent()).toBe(75);
  });

  it('never reaches past the platform deadline minus the margin', () => {
    const clock = new StepClock(0);
    expect(new Budget(clock, 600_000, { at: new Date(60_000), marginMs: 10_000 }).totalMs).toBe(50_000);
    const late = new Budget(clock, 600_000, { at: new Date(5_000), marginMs: 10_000 });
    expect(late.totalMs).toBe(0);
    expect(late.allowsNextBatch()).toBe(false);
  });
});

describe('OldestItems', () => {
  it('keeps the n oldest, sorted oldest first, with bounded memory', () => {
    const oldest = new OldestItems(3);
    const ages = [5, 1, 9, 3, 7, 9, 2];
    for (const [index, age] of ages.entries())
      oldest.offer({ key: `k${index}`, timestamp: ago(age * DAY), cutoff: NOW, rule: 'r' } as EligibleItem);
    expect(oldest.sorted().map((item) => item.key)).toEqual(['k2', 'k5', 'k4']);
  });
});

describe('pagedSteps', () => {
  const cutoffs = computeCutoffs('30d', NOW);
  /** A key-ordered in-memory page source: pages of `limit` items after the cursor. */
  function storeOf(items: Item[]): Store {
    return {
      kind: 'memory',
      location: 'memory:',
      order: 'key',
      open: async () => undefined,
      close: async () => undefined,
      scan: async ({ cursor, limit }) => {
        const rest = items.filter((item) => cursor === undefined || item.key > cursor);
        const page = rest.slice(0, limit);
        return {
          items: page,
          ...(page.length > 0 ? { cursor: page.at(-1)!.key } : cursor !== undefined ? { cursor } : {}),
          done: rest.length <= limit,
        };
      },
      census: async () => ({ total: 0, eligible: 0, oldestOverdueSeconds: 0, exact: true }),
      delete: async () => [],
      present: async () => new Set(),
    };
  }
  const keyed = (n: number, old: (i: number) => boolean): Item[] =>
    Array.from({ length: n }, (_, i) => ({
      key: `k${String(i).padStart(4, '0')}`,
      timestamp: old(i) ? ago(60 * DAY) : ago(DAY),
    }));

  async function collect(items: Item[], batchSize: number, cursor?: string) {
    const steps = [];
    for await (const step of pagedSteps({
      store: storeOf(items),
      cutoffs,
      holds: [],
      batchSize,
      ...(cursor ? { cursor } : {}),
    }))
      steps.push(step);
    return steps;
  }

  it('fills delete batches across pages, and never checkpoints past an item not yet handled', async () => {
    const items = keyed(100, (i) => i % 2 === 0);
    const steps = await collect(items, 10);
    expect(steps.map((step) => step.deletable.length)).toEqual([10, 10, 10, 10, 10]);
    expect(steps.reduce((sum, step) => sum + step.scanned, 0)).toBe(100);
    expect(steps.flatMap((step) => step.deletable.map((item) => item.key))).toEqual(
      items.filter((_, i) => i % 2 === 0).map((item) => item.key),
    );
    for (const step of steps) {
      const lastDeleted = step.deletable.at(-1)!.key;
      // Every eligible item at or before the cursor has been yielded by this step or an earlier one.
      expect(step.cursor! >= lastDeleted || step.cursor === undefined).toBe(true);
    }
    expect(steps.at(-1)!.done).toBe(true);
  });

  it('resuming from any step cursor yields every remaining eligible item at least once', async () => {
    const items = keyed(57, (i) => i % 3 !== 0);
    const all = await collect(items, 7);
    for (const [index, step] of all.entries()) {
      if (step.cursor === undefined) continue;
      const handled = new Set(all.slice(0, index + 1).flatMap((s) => s.deletable.map((item) => item.key)));
      const resumed = await collect(items, 7, step.cursor);
      const afterwards = new Set(resumed.flatMap((s) => s.deletable.map((item) => item.key)));
      for (const item of items.filter((_, i) => i % 3 !== 0))
        expect(handled.has(item.key) || afterwards.has(item.key), item.key).toBe(true);
    }
  });

  it('yields after MAX_PAGES_PER_STEP pages even when little is eligible, so budget and lease are checked', async () => {
    const steps = await collect(
      keyed(200, (i) => i === 150),
      10,
    );
    expect(steps.every((step) => step.scanned <= MAX_PAGES_PER_STEP * 10)).toBe(true);
    expect(steps.flatMap((step) => step.deletable.map((item) => item.key))).toEqual(['k0150']);
  });
});
