import type { Cutoffs, EligibleItem, Hold, Item } from '../core/types.ts';
import { cutoffFor, isEligible, itemHold } from './classify.ts';

/**
 * The compress tier of a policy (`compress: { after: "7d" }`): pure selection of what a run
 * compresses. A file is compressed once older than `after` and while still younger than its
 * delete cutoff; the delete tier then deletes the compressed file at the original's age (its
 * mtime is kept).
 */

/** The formats a policy may name; zstd is refused at config time (Node 20's zlib has none). */
export type CompressFormat = 'gzip';

/** What a compressed file is called: `<key><suffix>`. A key that already ends so is never compressed again. */
export const COMPRESSED_SUFFIX: Record<CompressFormat, string> = { gzip: '.gz' };

export interface CompressPlan {
  format: CompressFormat;
  /** Files strictly older than this are compressed (run start − `after`, fixed once). */
  before: Date;
  /** For audit records and `--list`: `compress after 7d (gzip)`. */
  rule: string;
}

export function compressPlan(compress: { after: string; format: CompressFormat }, afterMs: number, cutoffs: Cutoffs) {
  return {
    format: compress.format,
    before: new Date(cutoffs.computedAt.getTime() - afterMs),
    rule: `compress after ${compress.after} (${compress.format})`,
  } satisfies CompressPlan;
}

/**
 * The items of a page to compress: past `plan.before`, not (yet) due for deletion, not already
 * compressed, and not held (a hold keeps an item exactly as it is). Items no retention rule
 * applies to are left alone: they have no delete cutoff to stay below.
 */
export function selectForCompression(
  items: Item[],
  cutoffs: Cutoffs,
  plan: CompressPlan,
  holds: Hold[],
): EligibleItem[] {
  const suffix = COMPRESSED_SUFFIX[plan.format];
  const selected: EligibleItem[] = [];
  for (const item of items) {
    if (item.key.endsWith(suffix) || item.timestamp.getTime() >= plan.before.getTime()) continue;
    if (cutoffFor(item, cutoffs) === undefined || isEligible(item, cutoffs)) continue;
    if (itemHold(item, holds)) continue;
    selected.push({ ...item, cutoff: plan.before, rule: plan.rule });
  }
  return selected;
}
