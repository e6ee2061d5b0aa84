import type { PolicyConfig } from '../config/schema.ts';
import type { Store } from '../core/store.ts';
import type { Cutoffs } from '../core/types.ts';
import { ConfigError } from '../errors.ts';
import { AFTER_EVERYTHING, emergencyCutoffs, NewestTimestamps } from '../policy/emergency.ts';

/** Page size of the pass that finds the newest items (the policy's batch size is about deleting). */
const NEWEST_PAGE = 1_000;

/**
 * The cutoffs of an emergency run, fixed at its start like any run's. With `keepNewest` this is
 * one listing of the whole scope first (memory: N timestamps), to find the N-th newest item.
 */
export async function emergencyRunCutoffs(
  policy: PolicyConfig,
  store: Store,
  now: Date,
  before: Date | undefined,
): Promise<Cutoffs> {
  const rules = policy.emergency;
  if (!rules)
    throw ConfigError.single(
      `${policy.name}.emergency`,
      'not set: the policy has no emergency rules',
      'add emergency: { keepNewest: <n> } or { retention: "<duration>" } to the policy, or run without --emergency',
    );
  const keepFrom = rules.keepNewest === undefined ? undefined : await newestFrom(store, rules.keepNewest, now);
  return emergencyCutoffs(rules, now, {
    ...(before !== undefined ? { before } : {}),
    ...(keepFrom !== undefined ? { keepFrom } : {}),
  });
}

async function newestFrom(store: Store, count: number, now: Date): Promise<Date | null> {
  // Everything in scope: stores that push cutoffs down (rows) return every item under this one.
  const everything: Cutoffs = {
    computedAt: now,
    rules: [],
    fallback: { retention: 'everything', retentionMs: 0, cutoff: AFTER_EVERYTHING },
  };
  const newest = new NewestTimestamps(count);
  let cursor: string | undefined;
  for (;;) {
    const page = await store.scan({
      cutoffs: everything,
      ...(cursor !== undefined ? { cursor } : {}),
      limit: NEWEST_PAGE,
    });
    for (const item of page.items) newest.offer(item.timestamp);
    if (page.done) return newest.keepFrom();
    cursor = page.cursor;
  }
}
