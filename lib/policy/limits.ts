import { LimitExceededError, type LimitFigures } from '../errors.ts';

/**
 * Safety limits (invariant 6), evaluated before the first deletion of a run: a run that plans to
 * delete more than `maxDeletesPerRun` items, or more than `maxDeleteFraction` of everything in
 * the policy's scope, deletes nothing unless the operator forces it. This is what catches a
 * retention of "1d" typed for "1y", or a wrong root.
 */
export type LimitVerdict = { ok: true } | { ok: false; reason: string; error: LimitExceededError };

export function checkLimits(figures: LimitFigures): LimitVerdict {
  const { planned, eligible, total, maxDeletesPerRun, maxDeleteFraction } = figures;
  if (planned > maxDeletesPerRun) return broken(new LimitExceededError('maxDeletesPerRun', figures));
  const fraction = total === 0 ? 0 : eligible / total;
  if (fraction > maxDeleteFraction) return broken(new LimitExceededError('maxDeleteFraction', figures));
  return { ok: true };
}

function broken(error: LimitExceededError): LimitVerdict {
  return { ok: false, reason: error.reason, error };
}
