/**
 * Safety limits (invariant 6), evaluated before the first deletion of a run: a run that plans to
 * delete more than `maxDeletesPerRun` items, or more than `maxDeleteFraction` of everything in
 * the policy's scope, deletes nothing unless the operator forces it. This is what catches a
 * retention of "1d" typed for "1y", or a wrong root.
 */
export interface LimitInput {
  /** Eligible unheld items, capped by --limit. */
  planned: number;
  /** All items in the policy's scope. */
  total: number;
  maxDeletesPerRun: number;
  maxDeleteFraction: number;
}

export type LimitVerdict = { ok: true } | { ok: false; reason: string };

export function checkLimits(input: LimitInput): LimitVerdict {
  const { planned, total, maxDeletesPerRun, maxDeleteFraction } = input;
  if (planned > maxDeletesPerRun) {
    return {
      ok: false,
      reason: `${planned} planned deletions exceed limits.maxDeletesPerRun ${maxDeletesPerRun}`,
    };
  }
  const fraction = total === 0 ? 0 : planned / total;
  if (fraction > maxDeleteFraction) {
    return {
      ok: false,
      reason: `${planned} of ${total} items (${percent(fraction)}) exceed limits.maxDeleteFraction ${percent(maxDeleteFraction)}`,
    };
  }
  return { ok: true };
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

/** How to get past an abort, for logs and CLI output. */
export const LIMIT_ADVICE =
  'check the dry-run list (retention plan --list); then run in slices with --limit N, raise the policy limits, or pass --force';
