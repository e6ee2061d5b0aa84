import type { AttentionItem, FailureStreakUpdate } from './control.ts';

/** Default of a policy's `attentionAfter`: the consecutive failed runs after which an item is listed. */
export const DEFAULT_ATTENTION_AFTER = 3;

/** An error kept with a streak is clipped: a stack trace per item would bloat the control store. */
export const MAX_STREAK_ERROR_CHARS = 1_000;

/** Listed for an operator: failed in `after` consecutive runs or more, and not dismissed. */
export function isOpen(item: AttentionItem, after: number): boolean {
  return item.failures >= after && item.dismissed === null;
}

/**
 * What a run's outcomes make of the policy's streaks (`existing`): the records to write and the
 * keys whose streak ends. A failure extends a streak (or starts one) unless this run already
 * counted it, so noting a run twice changes nothing; a dismissal stays while the streak lasts.
 * The PostgreSQL control store applies the same rules in SQL; the contract suite holds them equal.
 */
export function nextStreaks(
  existing: AttentionItem[],
  update: FailureStreakUpdate,
  at: Date,
): { write: AttentionItem[]; end: string[] } {
  const failed = new Map(update.failed.map((failure) => [failure.key, clipError(failure.error)]));
  const byKey = new Map(existing.map((item) => [item.key, item]));
  const write: AttentionItem[] = [];
  for (const [key, lastError] of failed) {
    const prior = byKey.get(key);
    if (prior?.lastRunId === update.runId) continue;
    const extended = { lastFailedAt: at, lastRunId: update.runId, lastError };
    write.push(
      prior
        ? { ...prior, ...extended, failures: prior.failures + 1 }
        : { policy: update.policy, key, failures: 1, firstFailedAt: at, dismissed: null, ...extended },
    );
  }
  const ending = update.wholePass ? [...byKey.keys()] : update.settled.filter((key) => byKey.has(key));
  return { write, end: ending.filter((key) => !failed.has(key)) };
}

/** The streaks once `update` is applied (the engine counts open items from it without a read back). */
export function applyStreaks(existing: AttentionItem[], update: FailureStreakUpdate, at: Date): AttentionItem[] {
  const { write, end } = nextStreaks(existing, update, at);
  const after = new Map(existing.map((item) => [item.key, item]));
  for (const key of end) after.delete(key);
  for (const item of write) after.set(item.key, item);
  return [...after.values()];
}

export function clipError(error: string): string {
  return error.length <= MAX_STREAK_ERROR_CHARS ? error : `${error.slice(0, MAX_STREAK_ERROR_CHARS - 1)}…`;
}

/** The contract's order: most failures first, then by key. */
export function byFailures(a: AttentionItem, b: AttentionItem): number {
  return b.failures - a.failures || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** An item as the CLI's `--json` and the API show it: instants as ISO strings, `open` by the policy's threshold. */
export function attentionView(item: AttentionItem, after: number) {
  return {
    policy: item.policy,
    key: item.key,
    failures: item.failures,
    open: isOpen(item, after),
    firstFailedAt: item.firstFailedAt.toISOString(),
    lastFailedAt: item.lastFailedAt.toISOString(),
    lastRunId: item.lastRunId,
    lastError: item.lastError,
    dismissed: item.dismissed ? { ...item.dismissed, at: item.dismissed.at.toISOString() } : null,
  };
}
