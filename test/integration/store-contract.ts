import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BackupRef, Store } from '../../lib/core/store.ts';
import type { Cutoffs, EligibleItem, Hold, Item } from '../../lib/core/types.ts';
import { isEligible } from '../../lib/policy/classify.ts';

/**
 * The contract every Store passes against a real local backend (fs now; S3, Vercel Blob,
 * PostgreSQL rows later). Register it from a `*.test.ts` file:
 *
 *   storeContract('fs', async () => fsFixture());
 *
 * `setup` runs before each test and must return an empty backend; start shared servers once in
 * the caller's beforeAll and hand out a fresh bucket/table/directory per fixture.
 */

export interface SeedItem {
  key: string;
  /** What the store must report as the item's timestamp. Seeds use whole seconds (S3 precision). */
  timestamp: Date;
  /** Content length in bytes, for stores that report sizes. */
  size?: number;
  attributes?: Record<string, string | null>;
}

export interface StoreFixture {
  /** A new store over the fixture's backend; the suite calls open(). */
  createStore(): Store;
  seed(items: SeedItem[]): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Rewrites an existing item so that the backend now reports `timestamp` (a write after a scan). */
  touch(key: string, timestamp: Date): Promise<void>;
  /** `backup.to` for the backup round trip (required unless the store opts out, see storeContract). */
  backupTo?: string;
  teardown(): Promise<void>;
}

export const CONTRACT_NOW = new Date('2024-06-01T00:00:00.000Z');
const DAY_MS = 86_400_000;
const RETENTION_MS = 30 * DAY_MS;
const CUTOFF = new Date(CONTRACT_NOW.getTime() - RETENTION_MS);

/** Flat 30-day retention fixed at CONTRACT_NOW. */
export const contractCutoffs: Cutoffs = {
  computedAt: CONTRACT_NOW,
  rules: [],
  fallback: { retention: '30d', retentionMs: RETENTION_MS, cutoff: CUTOFF },
};

/**
 * A cutoff after every seeded item: stores that list only items past the cutoff
 * (`scansCandidatesOnly`) list everything with it.
 */
const EVERY_ITEM: Cutoffs = {
  computedAt: CONTRACT_NOW,
  rules: [],
  fallback: { retention: '1d', retentionMs: DAY_MS, cutoff: new Date(CONTRACT_NOW.getTime() + DAY_MS) },
};

export function daysAgo(days: number): Date {
  return new Date(CONTRACT_NOW.getTime() - days * DAY_MS);
}

/** Every item of the store, page by page; fails on a runaway cursor. */
export async function scanAll(
  store: Store,
  limit = 1000,
  cursor?: string,
  cutoffs: Cutoffs = contractCutoffs,
): Promise<{ items: Item[]; pages: number }> {
  const items: Item[] = [];
  let pages = 0;
  let position = cursor;
  for (;;) {
    const page = await store.scan({ cutoffs, limit, ...(position === undefined ? {} : { cursor: position }) });
    pages += 1;
    expect(page.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.items);
    if (page.done) return { items, pages };
    expect(page.cursor, 'a page that is not done must return a cursor').toBeDefined();
    position = page.cursor;
    if (pages > 10_000) throw new Error('scan did not finish: the cursor does not advance');
  }
}

export async function eligibleItems(store: Store): Promise<Map<string, EligibleItem>> {
  const { items } = await scanAll(store);
  const eligible = new Map<string, EligibleItem>();
  for (const item of items) {
    const candidate = isEligible(item, contractCutoffs);
    if (candidate) eligible.set(item.key, candidate);
  }
  return eligible;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function pick(eligible: Map<string, EligibleItem>, keys: string[]): EligibleItem[] {
  return keys.map((key) => {
    const item = eligible.get(key);
    if (!item) throw new Error(`${key} was expected to be eligible`);
    return item;
  });
}

export interface ContractOptions {
  /**
   * `fresh-timestamps`: copies get a new timestamp (S3 CopyObject, Vercel Blob copy), so a
   * restored item restarts its retention; their round trip lives in their own test file.
   * `false`: the store keeps no backups (tokens: copying credentials would defeat deleting them).
   * Default: the contract's round trip, restoring the original timestamp.
   */
  backup?: 'fresh-timestamps' | false;
  /** The store lists only items past the latest cutoff (index-backed), not every item in scope. */
  scansCandidatesOnly?: boolean;
}

export function storeContract(name: string, setup: () => Promise<StoreFixture>, options: ContractOptions = {}): void {
  describe(`Store contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;

    beforeEach(async () => {
      fixture = await setup();
      store = fixture.createStore();
      await store.open();
    });

    afterEach(async () => {
      await store.close?.();
      await fixture.teardown();
    });

    it('scans an empty backend as one done page', async () => {
      const page = await store.scan({ cutoffs: contractCutoffs, limit: 10 });
      expect(page).toMatchObject({ items: [], done: true });
    });

    it('pages through every item exactly once, in the declared order', async () => {
      const seeds: SeedItem[] = Array.from({ length: 10 }, (_, index) => ({
        key: index % 2 === 0 ? `even/item-${index}.bin` : `odd-${index}.bin`,
        timestamp: daysAgo(index % 3 === 0 ? 1 + index : 31 + index),
        size: 10 + index,
      }));
      await fixture.seed(seeds);

      // Index-backed stores list only items past the latest cutoff: the young ones never come back.
      const expected = options.scansCandidatesOnly
        ? seeds.filter((seed) => seed.timestamp.getTime() < CUTOFF.getTime())
        : seeds;

      const { items, pages } = await scanAll(store, 3);

      expect(pages).toBeGreaterThanOrEqual(Math.ceil(expected.length / 3));
      expect(items.map((item) => item.key).sort()).toEqual(expected.map((seed) => seed.key).sort());
      expect(new Set(items.map((item) => item.key)).size).toBe(items.length);
      for (const item of items) {
        const seed = seeds.find((candidate) => candidate.key === item.key);
        expect(item.timestamp.getTime(), item.key).toBe(seed?.timestamp.getTime());
        if (item.size !== undefined) expect(item.size, item.key).toBe(seed?.size);
      }
      if (store.order === 'key') {
        expect(items.map((item) => item.key)).toEqual(items.map((item) => item.key).sort(byteOrder));
      } else if (store.order === 'timestamp') {
        const times = items.map((item) => item.timestamp.getTime());
        expect(times).toEqual([...times].sort((a, b) => a - b));
      }
    });

    it('resumes strictly after a mid cursor, also from a new store and after deleting that page', async () => {
      const seeds = Array.from({ length: 9 }, (_, index) => ({
        key: `k${index}`,
        timestamp: daysAgo(40 + index),
        size: 1,
      }));
      await fixture.seed(seeds);
      const first = await store.scan({ cutoffs: contractCutoffs, limit: 4 });
      expect(first.items).toHaveLength(4);
      expect(first.done).toBe(false);
      const firstKeys = first.items.map((item) => item.key);

      // The next run: a new store instance, the page already deleted, only the checkpoint left.
      const deleted = await store.delete(first.items.map((item) => isEligible(item, contractCutoffs)!));
      expect(deleted.map((outcome) => outcome.status)).toEqual(['deleted', 'deleted', 'deleted', 'deleted']);
      const nextRun = fixture.createStore();
      await nextRun.open();
      const rest = await scanAll(nextRun, 2, first.cursor);

      const restKeys = rest.items.map((item) => item.key);
      expect(restKeys.filter((key) => firstKeys.includes(key))).toEqual([]);
      expect([...firstKeys, ...restKeys].sort()).toEqual(seeds.map((seed) => seed.key).sort());
      await nextRun.close?.();
    });

    it('counts the census: total, eligible and unheld, oldest overdue, bound', async () => {
      await fixture.seed([
        { key: 'old-31d', timestamp: daysAgo(31), size: 1 },
        { key: 'old-40d', timestamp: daysAgo(40), size: 1 },
        { key: 'old-held', timestamp: daysAgo(100), size: 1 },
        { key: 'at-cutoff', timestamp: CUTOFF, size: 1 },
        { key: 'young', timestamp: daysAgo(1), size: 1 },
      ]);
      const holds: Hold[] = [
        {
          id: 1,
          policy: null,
          key: 'old-held',
          prefix: false,
          reason: 'litigation',
          createdBy: 'test',
          createdAt: CONTRACT_NOW,
        },
      ];

      const { held, ...census } = await store.census({ cutoffs: contractCutoffs, holds });
      expect(census).toEqual({ total: 5, eligible: 2, oldestOverdueSeconds: (10 * DAY_MS) / 1000, exact: true });
      // Optional: only stores that sweep in one statement count held items in the census.
      expect(held === undefined || held === 1).toBe(true);

      expect(await store.census({ cutoffs: contractCutoffs, holds, bound: 5 })).toMatchObject({
        total: 5,
        exact: true,
      });
      expect(await store.census({ cutoffs: contractCutoffs, holds, bound: 3 })).toMatchObject({
        total: 3,
        exact: false,
      });
    });

    it('deletes what it is given, reports already-deleted items missing, and touches nothing else', async () => {
      await fixture.seed(['a', 'b', 'c', 'untouched'].map((key) => ({ key, timestamp: daysAgo(45), size: 3 })));
      const eligible = await eligibleItems(store);

      const first = await store.delete(pick(eligible, ['a', 'b']));
      expect(first).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ key: 'a', status: 'deleted' }),
          expect.objectContaining({ key: 'b', status: 'deleted' }),
        ]),
      );
      expect(first).toHaveLength(2);
      for (const outcome of first) if (outcome.bytes !== undefined) expect(outcome.bytes).toBe(3);

      // Invariant 7: a retry of the same batch counts as done, never as a failure.
      const retry = await store.delete(pick(eligible, ['a', 'b', 'c']));
      expect(retry.map(({ key, status }) => ({ key, status })).sort((x, y) => x.key.localeCompare(y.key))).toEqual([
        { key: 'a', status: 'missing' },
        { key: 'b', status: 'missing' },
        { key: 'c', status: 'deleted' },
      ]);

      expect(await fixture.exists('a')).toBe(false);
      expect(await fixture.exists('c')).toBe(false);
      expect(await fixture.exists('untouched')).toBe(true);
    });

    it('sends no deletion once the lease check refuses: what was never sent has no outcome and stays (invariant 8)', async () => {
      await fixture.seed(['x1', 'x2'].map((key) => ({ key, timestamp: daysAgo(45), size: 1 })));
      const eligible = await eligibleItems(store);
      const outcomes = await store.delete(pick(eligible, ['x1', 'x2']), {
        beforeRequest: () => {
          throw new Error('lease lost');
        },
      });
      // A rows store with linked files answers per row: nothing here may say deleted.
      expect(outcomes.filter((outcome) => outcome.status === 'deleted' || outcome.status === 'missing')).toEqual([]);
      expect(await fixture.exists('x1')).toBe(true);
      expect(await fixture.exists('x2')).toBe(true);
    });

    it('keeps an item rewritten at or after its cutoff between scan and delete (invariant 1)', async () => {
      await fixture.seed(
        ['rewritten-now', 'rewritten-at-cutoff', 'unchanged'].map((key) => ({ key, timestamp: daysAgo(60), size: 2 })),
      );
      const eligible = await eligibleItems(store);
      await fixture.touch('rewritten-now', CONTRACT_NOW);
      await fixture.touch('rewritten-at-cutoff', CUTOFF);

      const outcomes = await store.delete(pick(eligible, ['rewritten-now', 'rewritten-at-cutoff', 'unchanged']));

      const status = Object.fromEntries(outcomes.map((outcome) => [outcome.key, outcome.status]));
      expect(status).toEqual({ 'rewritten-now': 'kept', 'rewritten-at-cutoff': 'kept', unchanged: 'deleted' });
      expect(await fixture.exists('rewritten-now')).toBe(true);
      expect(await fixture.exists('rewritten-at-cutoff')).toBe(true);
    });

    it('reports which keys are still present', async () => {
      await fixture.seed(['gone', 'here'].map((key) => ({ key, timestamp: daysAgo(50), size: 1 })));
      await store.delete(pick(await eligibleItems(store), ['gone']));
      expect(await store.present(['gone', 'here', 'never-existed'])).toEqual(new Set(['here']));
    });

    it('round-trips awkward keys: spaces, unicode, +, %, #, ?', async () => {
      const keys = [
        'with space.txt',
        'dir with space/inner file.txt',
        'ünïcødé/文件-😀.txt',
        'a+b=c.txt',
        '100%.txt',
        '%2F-not-a-slash.txt',
        'hash#tag.txt',
        'what?.txt',
      ];
      await fixture.seed(keys.map((key) => ({ key, timestamp: daysAgo(33), size: 4 })));

      const eligible = await eligibleItems(store);
      expect([...eligible.keys()].sort()).toEqual([...keys].sort());
      expect(await store.present(keys)).toEqual(new Set(keys));

      const outcomes = await store.delete(pick(eligible, keys));
      expect(outcomes.filter((outcome) => outcome.status !== 'deleted')).toEqual([]);
      for (const key of keys) expect(await fixture.exists(key), key).toBe(false);
    });

    if (options.backup === false) {
      it('keeps no backups', () => {
        expect(store.backups).toBeUndefined();
      });
      return;
    }
    if (options.backup === 'fresh-timestamps') return;
    it('backs up, restores with the original timestamp, and never overwrites an existing item', async () => {
      const { backups } = store;
      if (!backups || fixture.backupTo === undefined)
        throw new Error('the fixture must support backup (backupTo) and the store backup/restore');
      await fixture.seed([
        { key: 'docs/a b.pdf', timestamp: daysAgo(90), size: 5 },
        { key: 'c.pdf', timestamp: daysAgo(120), size: 7 },
      ]);
      const items = pick(await eligibleItems(store), ['docs/a b.pdf', 'c.pdf']);
      const ref: BackupRef = { to: fixture.backupTo, policy: 'contract-policy', runId: 'run-1' };

      expect(await backups.backup(items, ref)).toEqual(
        expect.arrayContaining([
          { key: 'docs/a b.pdf', ok: true },
          { key: 'c.pdf', ok: true },
        ]),
      );
      await store.delete(items);
      expect(await fixture.exists('c.pdf')).toBe(false);

      const restored = await backups.restore(ref, ['docs/a b.pdf', 'c.pdf', 'never-backed-up']);
      expect(restored.map(({ key, status }) => ({ key, status }))).toEqual(
        expect.arrayContaining([
          { key: 'docs/a b.pdf', status: 'restored' },
          { key: 'c.pdf', status: 'restored' },
          { key: 'never-backed-up', status: 'no_backup' },
        ]),
      );
      const after = (await scanAll(store, 1000, undefined, EVERY_ITEM)).items;
      expect(after.map((item) => [item.key, item.timestamp.getTime(), item.size]).sort()).toEqual(
        [
          ['c.pdf', daysAgo(120).getTime(), 7],
          ['docs/a b.pdf', daysAgo(90).getTime(), 5],
        ].sort(),
      );

      // A newer item at the same key wins over the backup.
      await fixture.touch('c.pdf', CONTRACT_NOW);
      expect(await backups.restore(ref, ['c.pdf'])).toEqual([{ key: 'c.pdf', status: 'exists' }]);
      // c.pdf is young now: a store that lists only candidates shows it under a later cutoff.
      const current = (await scanAll(store, 1000, undefined, EVERY_ITEM)).items.find((item) => item.key === 'c.pdf');
      expect(current?.timestamp.getTime()).toBe(CONTRACT_NOW.getTime());
    });
  });
}
