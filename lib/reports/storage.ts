import type { PolicyConfig } from '../config/schema.ts';
import type { Store } from '../core/store.ts';
import type { Cutoffs, Hold, Item } from '../core/types.ts';
import { cutoffFor, isEligible, itemHold } from '../policy/classify.ts';
import { computeCutoffs, listingCutoffs } from '../policy/plan.ts';

/**
 * `retention storage`: what is using the space, per policy. The store's items are walked once
 * (every item in the policy's scope, not only the eligible) and counted with their sizes per
 * top-level directory or prefix and per retention rule (purpose); each item is classified with
 * the cutoffs a run starting now would use and the policy's holds, so `bytesToFree` is what a
 * run would free now. Read-only.
 */
export interface StorageGroup {
  /** `a/` (top-level directory or prefix), `(top level)`, or a rule (`purpose_code=Legal: 7y`, `unclassified`). */
  name: string;
  items: number;
  bytes: number;
  /** Past their cutoff and not held: what a run would delete now, and the bytes it would free. */
  eligible: number;
  bytesToFree: number;
  /** Past their cutoff but under a hold. */
  held: number;
}

export interface StorageAnalysis {
  policy: string;
  store: string;
  total: StorageGroup;
  /** Whether the store reports sizes (fs, S3, Vercel Blob; rows with a `size` column): bytes are 0 otherwise. */
  sizesKnown: boolean;
  /** Every item was walked; false when the walk stopped at `limit` items (the figures are of those). */
  complete: boolean;
  oldest: string | null;
  newest: string | null;
  /** Items whose timestamp is after the policy's last live run started: what arrived since. */
  sinceLastRun: { since: string; items: number; bytes: number } | null;
  byPrefix: StorageGroup[];
  /** Per retention rule, when the policy's retention is per purpose (or per prefix). */
  byPurpose: StorageGroup[] | null;
}

export interface StorageQuery {
  now: Date;
  holds: Hold[];
  /** When the policy's last live run started (null: it never ran). */
  lastRunAt: Date | null;
  /** Items walked at most. */
  limit: number;
}

const PAGE = 1_000;

export async function analyzeStorage(
  store: Store,
  policy: PolicyConfig,
  query: StorageQuery,
): Promise<StorageAnalysis> {
  const cutoffs = computeCutoffs(policy.retention, query.now);
  const listAll = listingCutoffs(policy.retention, query.now);
  const tally = new StorageTally(cutoffs, query);
  let cursor: string | undefined;
  for (;;) {
    const limit = Math.min(PAGE, query.limit - tally.walked);
    const page = await store.scan({ cutoffs: listAll, limit, ...(cursor !== undefined ? { cursor } : {}) });
    for (const item of page.items) tally.add(item);
    if (page.done) return tally.result(policy.name, store.location, true);
    if (tally.walked >= query.limit) return tally.result(policy.name, store.location, false);
    cursor = page.cursor;
  }
}

class StorageTally {
  walked = 0;
  private readonly total = group('total');
  private readonly prefixes = new Map<string, StorageGroup>();
  private readonly purposes = new Map<string, StorageGroup>();
  private sized = false;
  private oldest: Date | undefined;
  private newest: Date | undefined;
  private readonly arrived = { items: 0, bytes: 0 };

  constructor(
    private readonly cutoffs: Cutoffs,
    private readonly query: StorageQuery,
  ) {}

  add(item: Item): void {
    this.walked += 1;
    const size = item.size ?? 0;
    if (item.size !== undefined) this.sized = true;
    const eligible = isEligible(item, this.cutoffs) !== undefined;
    const held = eligible && itemHold(item, this.query.holds) !== undefined;
    const rule = cutoffFor(item, this.cutoffs)?.rule ?? 'unclassified';
    for (const counted of [this.total, entry(this.prefixes, topLevel(item.key)), entry(this.purposes, rule)]) {
      counted.items += 1;
      counted.bytes += size;
      if (held) counted.held += 1;
      else if (eligible) {
        counted.eligible += 1;
        counted.bytesToFree += size;
      }
    }
    if (!this.oldest || item.timestamp < this.oldest) this.oldest = item.timestamp;
    if (!this.newest || item.timestamp > this.newest) this.newest = item.timestamp;
    if (this.query.lastRunAt && item.timestamp > this.query.lastRunAt) {
      this.arrived.items += 1;
      this.arrived.bytes += size;
    }
  }

  result(policy: string, store: string, complete: boolean): StorageAnalysis {
    const biggestFirst = (groups: Map<string, StorageGroup>) =>
      [...groups.values()].sort((a, b) => b.bytes - a.bytes || b.items - a.items || a.name.localeCompare(b.name));
    const { lastRunAt } = this.query;
    return {
      policy,
      store,
      total: this.total,
      sizesKnown: this.sized,
      complete,
      oldest: this.oldest?.toISOString() ?? null,
      newest: this.newest?.toISOString() ?? null,
      sinceLastRun: lastRunAt ? { since: lastRunAt.toISOString(), ...this.arrived } : null,
      byPrefix: biggestFirst(this.prefixes),
      byPurpose: this.cutoffs.by === undefined ? null : biggestFirst(this.purposes),
    };
  }
}

/** `a/b/c.log` → `a/`; a key without a separator is at the top level. */
function topLevel(key: string): string {
  const slash = key.indexOf('/');
  return slash < 0 ? '(top level)' : key.slice(0, slash + 1);
}

function group(name: string): StorageGroup {
  return { name, items: 0, bytes: 0, eligible: 0, bytesToFree: 0, held: 0 };
}

function entry(groups: Map<string, StorageGroup>, name: string): StorageGroup {
  const found = groups.get(name) ?? group(name);
  groups.set(name, found);
  return found;
}
