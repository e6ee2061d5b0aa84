/**
 * Safety limits (invariant 6), evaluated before the first deletion of a run: a run that plans to
 * delete more than `maxDeletesPerRun` items, or more than `maxDeleteFraction` of everything in
 * the policy's scope, deletes nothing unless the operator forces it. This is what catches a
 * retention of "1d" typed for "1y", or a wrong root.
 */
export interface LimitInput {
  /** Eligible unheld items, capped by --limit: what this run would delete. */
  planned: number;
  /** Eligible unheld items, uncapped: what the policy means to delete (--limit never lowers it). */
  eligible: number;
  /** All items in the policy's scope. */
  total: number;
  maxDeletesPerRun: number;
  maxDeleteFraction: number;
}

export type LimitVerdict = { ok: true } | { ok: false; reason: string };

export function checkLimits(input: LimitInput): LimitVerdict {
  const { planned, eligible, total, maxDeletesPerRun, maxDeleteFraction } = input;
  if (planned > maxDeletesPerRun) {
    return {
      ok: false,
      reason: `${planned} planned deletions exceed limits.maxDeletesPerRun ${maxDeletesPerRun}`,
    };
  }
  const fraction = total === 0 ? 0 : eligible / total;
  if (fraction > maxDeleteFraction) {
    return {
      ok: false,
      reason: `${eligible} of ${total} items (${percent(fraction)}) are eligible, over limits.maxDeleteFraction ${percent(maxDeleteFraction)}`,
    };
  }
  return { ok: true };
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

/** How to get past an abort, for logs and CLI output. */
export const LIMIT_ADVICE =
  'check the dry-run list (retention plan --list); then raise the policy limits, run in slices with --limit N (under maxDeletesPerRun only), or pass --force';
