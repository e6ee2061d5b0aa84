import type { PolicyConfig } from '../config/schema.ts';
import type { HoldMatch, Store } from '../core/store.ts';
import type { Hold } from '../core/types.ts';
import { describeCause } from '../errors.ts';
import { itemHold } from '../policy/classify.ts';
import { listingCutoffs } from '../policy/plan.ts';
import { withOpenStore } from '../stores/registry.ts';
import { addHold, type Operator } from './governed.ts';

/**
 * A hold that matches nothing is kept (an operator may hold what does not exist yet), but a typo
 * in a key must not pass for protection: whoever adds a hold (`hold add`, `POST /api/holds`) is
 * told, per policy in the hold's scope, when nothing matches.
 */
export interface HoldCheck {
  policy: string;
  matched: boolean | null;
  warning?: string;
}

/**
 * Where a hold is checked: against the policies' stores, or nowhere with the reason why (the cloud
 * API is granted no store access, so checking would only collect AccessDenied errors).
 */
export type HoldChecking = { stores: true } | { stores: false; reason: string };

/** Adds the hold (recorded as governed.ts records it), then checks it against each policy it covers. */
export async function addCheckedHold(
  operator: Operator,
  policies: PolicyConfig[],
  request: { policy: string | null; key: string; prefix: boolean; reason: string },
  checking: HoldChecking = { stores: true },
): Promise<Hold & { checks: HoldCheck[] }> {
  const hold = await addHold(operator, request);
  const covered = policies.filter((policy) => request.policy === null || policy.name === request.policy);
  const checks: HoldCheck[] = [];
  for (const policy of covered) {
    checks.push(
      checking.stores
        ? await checkHold(operator, hold, policy)
        : { policy: policy.name, matched: null, warning: `${holdName(hold)}: not checked (${checking.reason})` },
    );
  }
  return { ...hold, checks };
}

/** Items a prefix check lists in stores it cannot query (fs, S3, Vercel Blob, DynamoDB) before it gives up. */
const PREFIX_CHECK_ITEMS = 10_000;
const PAGE = 1_000;

const holdName = (hold: Hold): string => `hold #${hold.id} ${hold.prefix ? 'prefix' : 'key'} "${hold.key}"`;

async function checkHold(operator: Operator, hold: Hold, policy: PolicyConfig): Promise<HoldCheck> {
  const what = holdName(hold);
  let found: HoldMatch;
  try {
    found = await withOpenStore(policy, (store) =>
      store.holdCheck ? store.holdCheck.matches(hold) : listedMatch(store, policy, hold, operator.clock.now()),
    );
  } catch (error) {
    return {
      policy: policy.name,
      matched: null,
      warning: `${what}: could not check policy ${policy.name}: ${describeCause(error)}`,
    };
  }
  operator.log.info('hold_checked', { hold_id: hold.id, policy: policy.name, matched: found.matched ?? null });
  if (found.matched === true) return { policy: policy.name, matched: true };
  if (found.matched === undefined) {
    return {
      policy: policy.name,
      matched: null,
      warning: `${what}: could not tell whether anything in policy ${policy.name} matches (${found.note ?? 'bounded check'})`,
    };
  }
  return {
    policy: policy.name,
    matched: false,
    warning: `hold #${hold.id} matches nothing in policy ${policy.name} (yet): check the ${hold.prefix ? 'prefix' : 'key'} (${keyHint(policy, found.example)})`,
  };
}

/** Exact keys: `present`. Prefixes: the first PREFIX_CHECK_ITEMS items listed, key by key. */
async function listedMatch(store: Store, policy: PolicyConfig, hold: Hold, now: Date): Promise<HoldMatch> {
  const cutoffs = listingCutoffs(policy.retention, now);
  if (!hold.prefix && (await store.present([hold.key])).has(hold.key)) return { matched: true };
  let cursor: string | undefined;
  let listed = 0;
  let example: HoldMatch['example'];
  for (;;) {
    const page = await store.scan({
      cutoffs,
      ...(cursor !== undefined ? { cursor } : {}),
      limit: hold.prefix ? PAGE : 1,
    });
    example ??= page.items[0];
    if (!hold.prefix) return { matched: false, ...(example ? { example } : {}) };
    if (page.items.some((item) => itemHold(item, [hold]))) return { matched: true };
    listed += page.items.length;
    if (page.done) return { matched: false, ...(example ? { example } : {}) };
    if (listed >= PREFIX_CHECK_ITEMS)
      return { matched: undefined, note: `none of the first ${listed} items listed match` };
    cursor = page.cursor;
  }
}

/** What keys look like in this policy, from an item that exists, so a wrong kind of key shows. */
function keyHint(policy: PolicyConfig, example: HoldMatch['example']): string {
  const quoted = (key: string | undefined) => (key === undefined ? '' : `, e.g. "${key}"`);
  if (policy.class === 'rows') {
    const row = `rows: the row key${quoted(example?.key)}`;
    return policy.blob ? `${row}, or the linked file${quoted(example?.linkedKey)}` : row;
  }
  const kinds: Record<string, string> = {
    fs: 'a path relative to the root',
    s3: 'the full object key',
    'vercel-blob': 'the pathname',
  };
  return `${policy.store.kind}: ${kinds[policy.store.kind] ?? 'the item key'}${quoted(example?.key)}`;
}
