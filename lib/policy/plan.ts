import { durationMs, formatDuration } from '../core/durations.ts';
import type { RetentionSpec } from '../core/retention.ts';
import type { CutoffRule, Cutoffs, EligibleItem, Hold, Item } from '../core/types.ts';
import { cutoffFor, isEligible, itemHold } from './classify.ts';

/**
 * Pure planning: cutoffs fixed once at run start, and the selection of what a page may delete.
 * The engine calls these; nothing here does I/O or reads a clock.
 */

/**
 * `now - retention` per rule. `before` (operator override) can only move a cutoff earlier:
 * taking the minimum means a typo in `--before` can never make younger data eligible.
 */
export function computeCutoffs(retention: RetentionSpec, now: Date, before?: Date): Cutoffs {
  const cutoffAt = (retentionText: string): Omit<CutoffRule, 'value'> => {
    const retentionMs = durationMs(retentionText);
    const computed = now.getTime() - retentionMs;
    const cutoff = before === undefined ? computed : Math.min(computed, before.getTime());
    return { retention: retentionText, retentionMs, cutoff: new Date(cutoff) };
  };
  if (typeof retention === 'string') {
    return { computedAt: now, rules: [], fallback: cutoffAt(retention) };
  }
  return {
    computedAt: now,
    by: retention.by,
    rules: Object.entries(retention.rules).map(([value, text]) => ({ value, ...cutoffAt(text) })),
    ...(retention.default !== undefined ? { fallback: cutoffAt(retention.default) } : {}),
  };
}

/** Past the longest retention a policy may have (1000y): see `listingCutoffs`. */
const EVERYTHING_AHEAD_MS = 1_100 * 365.25 * 86_400_000;

/**
 * Cutoffs under which every item in scope is past its rule, for reads that must list everything a
 * store holds (verify, storage, hold checks): some stores push the cutoffs down and list only what
 * is past them. Never for deleting.
 */
export function listingCutoffs(retention: RetentionSpec, now: Date): Cutoffs {
  return computeCutoffs(retention, new Date(now.getTime() + EVERYTHING_AHEAD_MS));
}

/** Cutoffs as `[{rule, cutoff}]` for reports and logs. */
export function describeCutoffs(cutoffs: Cutoffs): Array<{ rule: string; cutoff: string }> {
  const described = cutoffs.rules.map((rule) => ({
    rule: rule.label ?? `${cutoffs.by}=${rule.value}: ${formatDuration(rule.retentionMs)}`,
    cutoff: rule.cutoff.toISOString(),
  }));
  if (cutoffs.fallback) {
    described.push({
      rule:
        cutoffs.fallback.label ??
        `${cutoffs.by ? 'default' : 'retention'}: ${formatDuration(cutoffs.fallback.retentionMs)}`,
      cutoff: cutoffs.fallback.cutoff.toISOString(),
    });
  }
  return described;
}

/** The latest cutoff of any rule: nothing at or after it can be eligible. */
export function latestCutoff(cutoffs: Cutoffs): Date {
  const all = [
    ...cutoffs.rules.map((rule) => rule.cutoff.getTime()),
    ...(cutoffs.fallback ? [cutoffs.fallback.cutoff.getTime()] : []),
  ];
  return new Date(Math.max(...all));
}

export interface PageSelection {
  /** Eligible, unheld: to delete (or, in a dry run, to report as would_delete). */
  deletable: EligibleItem[];
  held: Array<EligibleItem & { hold: Hold }>;
  /** Items no rule and no default applied to: kept. */
  unclassified: number;
}

export function selectPage(items: Item[], cutoffs: Cutoffs, holds: Hold[]): PageSelection {
  const selection: PageSelection = { deletable: [], held: [], unclassified: 0 };
  for (const item of items) {
    if (cutoffFor(item, cutoffs) === undefined) {
      selection.unclassified += 1;
      continue;
    }
    const eligible = isEligible(item, cutoffs);
    if (eligible === undefined) continue;
    const hold = itemHold(item, holds);
    if (hold) selection.held.push({ ...eligible, hold });
    else selection.deletable.push(eligible);
  }
  return selection;
}
