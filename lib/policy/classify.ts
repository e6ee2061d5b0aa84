import type { Cutoffs, EligibleItem, Hold, Item } from '../core/types.ts';

/**
 * Pure classification shared by every store and the engine: which cutoff applies to an item,
 * whether it is past it, and whether a legal hold protects it. No I/O, no clock: the cutoffs
 * were fixed at run start, so the same item always classifies the same way within a run.
 */

export interface AppliedCutoff {
  cutoff: Date;
  /** Why this cutoff, for audit and reports: `purpose_code=Financial: 1y`, `default: 30d`, … */
  rule: string;
}

/**
 * The cutoff for one item under per-purpose retention, or undefined when no rule and no fallback
 * applies: such an item is unclassified and must be kept (deleting on a guess breaks invariant 1).
 */
export function cutoffFor(item: Item, cutoffs: Cutoffs): AppliedCutoff | undefined {
  const { by, rules, fallback } = cutoffs;
  if (by !== undefined) {
    const matched =
      by === 'prefix' ? longestPrefixRule(item.key, rules) : rules.find((rule) => rule.value === item.attributes?.[by]);
    if (matched)
      return { cutoff: matched.cutoff, rule: matched.label ?? `${by}=${matched.value}: ${matched.retention}` };
  }
  if (!fallback) return undefined;
  // With `by` set the fallback is the configured `default`; without it the retention is flat.
  const rule = fallback.label ?? `${by === undefined ? 'retention' : 'default'}: ${fallback.retention}`;
  return { cutoff: fallback.cutoff, rule };
}

/** The most specific rule wins: `testing/tmp/` over `testing/` for `testing/tmp/a.log`. */
function longestPrefixRule<R extends { value: string }>(key: string, rules: R[]): R | undefined {
  let best: R | undefined;
  for (const rule of rules) {
    if (key.startsWith(rule.value) && (best === undefined || rule.value.length > best.value.length)) best = rule;
  }
  return best;
}

/** Eligible iff strictly older than its cutoff: an item exactly at the cutoff is kept. */
export function isEligible(item: Item, cutoffs: Cutoffs): EligibleItem | undefined {
  const applied = cutoffFor(item, cutoffs);
  if (!applied || item.timestamp.getTime() >= applied.cutoff.getTime()) return undefined;
  return { ...item, cutoff: applied.cutoff, rule: applied.rule };
}

/** The hold protecting `key`, if any: an exact-key hold, or a prefix hold whose key starts `key`. */
export function holdFor(key: string, holds: Hold[]): Hold | undefined {
  return holds.find((hold) => (hold.prefix ? key.startsWith(hold.key) : key === hold.key));
}

/**
 * The hold protecting an item: one on its own key, else one on its linked file's key. An
 * operator sees a document row as its file path as often as its id; either must hold it.
 */
export function itemHold(item: Pick<Item, 'key' | 'linkedKey'>, holds: Hold[]): Hold | undefined {
  return holdFor(item.key, holds) ?? (item.linkedKey === undefined ? undefined : holdFor(item.linkedKey, holds));
}

/** How long an eligible item has been past its cutoff, in seconds (its compliance lag). */
export function overdueSeconds(item: EligibleItem): number {
  return (item.cutoff.getTime() - item.timestamp.getTime()) / 1000;
}
