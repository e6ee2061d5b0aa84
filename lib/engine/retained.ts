import type { Census } from '../core/store.ts';
import type { EligibleItem, Hold } from '../core/types.ts';
import { type PageSelection, selectPage } from '../policy/plan.ts';
import { CensusTally } from '../stores/common.ts';
import { olderFirst, type Step } from './batches.ts';
import type { ActiveRun } from './start.ts';

/**
 * Items (to delete, and held) a run keeps from its census listing, at most: about 250 bytes each,
 * so some 60 MB, within a small Lambda's memory. A bigger scope is counted, then scanned again
 * page by page (as before: three listings instead of two).
 */
export const RETAINED_ITEMS = 250_000;
/** Items per scan call of the census listing (the store lists them in 1000-key requests). */
const LISTING_ITEMS = 10_000;

/** What one listing of the whole scope, from its start, found to delete and held, classified like any page. */
export interface RetainedListing extends PageSelection {
  scanned: number;
}

/**
 * The census of a store whose census is a listing anyway (`Store.censusByListing`), counted from
 * the engine's own scan from the start of the scope: the same items, counted by the same rule as
 * the store's `census`. What it may delete is kept (up to `bound` items), so the deletions need
 * no second listing; none is kept when the scope holds more.
 */
export async function censusByListing(
  run: ActiveRun,
  holds: Hold[],
  bound: number,
): Promise<{ census: Census; retained?: RetainedListing }> {
  const { cutoffs } = run;
  const tally = new CensusTally({ cutoffs, holds });
  let retained: RetainedListing | undefined = { scanned: 0, deletable: [], held: [], unclassified: 0 };
  let cursor: string | undefined;
  for (;;) {
    const page = await run.deps.store.scan({
      cutoffs,
      limit: LISTING_ITEMS,
      ...(cursor !== undefined ? { cursor } : {}),
    });
    for (const item of page.items) tally.add(item);
    if (retained) {
      const selection = selectPage(page.items, cutoffs, holds);
      retained.scanned += page.items.length;
      retained.unclassified += selection.unclassified;
      retained.deletable.push(...selection.deletable);
      retained.held.push(...selection.held);
      if (retained.deletable.length + retained.held.length > bound) retained = undefined;
    }
    if (page.done) break;
    cursor = page.cursor;
  }
  return { census: tally.census, ...(retained ? { retained } : {}) };
}

/**
 * Steps over a retained listing: what it scanned, held and could not classify first, then its
 * items to delete in batches, in key order or, with `--limit`, the `oldest` oldest ones.
 *
 * No step carries a cursor, so the run writes no checkpoint until its last step clears it: a
 * scan cursor (continuation tokens) names no position in a kept list, and a saved one from
 * before the listing would make the next run skip what this one did not reach. A run stopped
 * midway starts again from the start of the scope: the listing its census makes anyway.
 */
export async function* retainedSteps(
  retained: RetainedListing,
  batchSize: number,
  oldest?: number,
): AsyncGenerator<Step> {
  const { scanned, held, unclassified } = retained;
  const chosen = oldest === undefined ? retained.deletable : [...retained.deletable].sort(olderFirst).slice(0, oldest);
  yield { scanned, held, unclassified, deletable: chosen.slice(0, batchSize), done: chosen.length <= batchSize };
  for (let start = batchSize; start < chosen.length; start += batchSize) {
    const deletable: EligibleItem[] = chosen.slice(start, start + batchSize);
    yield { scanned: 0, held: [], unclassified: 0, deletable, done: start + batchSize >= chosen.length };
  }
}
