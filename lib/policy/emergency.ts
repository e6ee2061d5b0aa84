import { BestOf } from '../core/heap.ts';
import type { RetentionSpec } from '../core/retention.ts';
import type { CutoffRule, Cutoffs } from '../core/types.ts';
import { computeCutoffs } from './plan.ts';

/**
 * The cutoffs of an emergency run (pure). A policy's `emergency` rules replace its retention for
 * the run: `retention` is a shorter one, `keepNewest: N` keeps only the N newest items in scope.
 * Given both, an item goes only when both say so: each rule can only narrow what is deleted. The
 * result is ordinary cutoffs, so eligibility (strict `<`), holds, the stores' re-check at delete
 * time, audit and limits work as in any run; only the rule's name says `emergency: …`.
 */
export interface EmergencyRules {
  retention?: RetentionSpec;
  keepNewest?: number;
  maxDeletes?: number;
}

/** Earlier than any timestamp: under it nothing is eligible. */
const BEFORE_EVERYTHING = new Date(-8.64e15);

/** Later than any timestamp: the scope of the pass that finds the newest items. */
export const AFTER_EVERYTHING = new Date(8.64e15);

/**
 * `keepFrom`: the timestamp of the N-th newest item in scope (`NewestTimestamps.keepFrom`), or
 * null when the scope holds N items or fewer. Items strictly older than it go, so N are kept, or
 * more when several items share the N-th newest timestamp: a cutoff is an instant, and the stores
 * re-check it at delete time (never deleting by a key order they cannot re-check).
 */
export function emergencyCutoffs(
  rules: EmergencyRules,
  now: Date,
  options: { before?: Date; keepFrom?: Date | null } = {},
): Cutoffs {
  const { before } = options;
  const newest = rules.keepNewest === undefined ? undefined : `keep newest ${rules.keepNewest}`;
  const keepCutoff = options.keepFrom ?? BEFORE_EVERYTHING;
  if (rules.retention === undefined) {
    if (newest === undefined) throw new Error('emergency rules need retention or keepNewest (the config says so)');
    const cutoff = new Date(Math.min(keepCutoff.getTime(), before?.getTime() ?? Number.POSITIVE_INFINITY));
    const fallback = { retention: newest, retentionMs: Math.max(0, now.getTime() - cutoff.getTime()), cutoff };
    return { computedAt: now, rules: [], fallback: { ...fallback, label: `emergency: ${newest}` } };
  }
  const base = computeCutoffs(rules.retention, now, before);
  const tighten = <R extends Omit<CutoffRule, 'value'>>(rule: R, name: string): R => {
    if (newest === undefined) return { ...rule, label: `emergency: ${name}` };
    const cutoff = new Date(Math.min(rule.cutoff.getTime(), keepCutoff.getTime()));
    return { ...rule, cutoff, label: `emergency: ${name} and ${newest}` };
  };
  return {
    ...base,
    rules: base.rules.map((rule) => tighten(rule, `${base.by}=${rule.value}: ${rule.retention}`)),
    ...(base.fallback
      ? { fallback: tighten(base.fallback, `${base.by ? 'default' : 'retention'} ${base.fallback.retention}`) }
      : {}),
  };
}

/**
 * The N newest timestamps offered (a min-heap of N): memory bounded by N however large the scope.
 * `keepFrom()` is the N-th newest, the instant `emergencyCutoffs` keeps from.
 */
export class NewestTimestamps {
  private readonly newest: BestOf<number>;

  constructor(count: number) {
    this.newest = new BestOf(count, (a, b) => a > b);
  }

  offer(timestamp: Date): void {
    this.newest.offer(timestamp.getTime());
  }

  /** Null while fewer than N were offered: nothing goes by count. */
  keepFrom(): Date | null {
    const nth = this.newest.worstKept();
    return nth === undefined ? null : new Date(nth);
  }
}
