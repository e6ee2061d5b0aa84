import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import type { HoldMatch, Store } from '../core/store.ts';
import type { Hold } from '../core/types.ts';
import { addHold, removeHold } from '../engine/governed.ts';
import { ConfigError, clip, describeCause } from '../errors.ts';
import { itemHold } from '../policy/classify.ts';
import { computeCutoffs } from '../policy/plan.ts';
import { createStore } from '../stores/registry.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { table, when } from './format.ts';
import { NO_REASON } from './pause.ts';

/** What `hold add` found for one policy in the hold's scope; `warning` when nothing (surely) matched. */
interface HoldCheck {
  policy: string;
  matched: boolean | null;
  warning?: string;
}

export interface HoldAddFlags {
  policy?: string[];
  key?: string;
  prefix?: string;
  reason?: string;
  json?: boolean;
}

/** A hold to add, checked before the control store opens; `null` policy: every policy. */
export interface NewHold {
  policies: Array<string | null>;
  key: string;
  prefix: boolean;
  reason: string;
  json: boolean;
}

export function parseHoldAdd(config: RetentionConfig, flags: HoldAddFlags): NewHold {
  if ((flags.key === undefined) === (flags.prefix === undefined)) {
    throw ConfigError.single(
      '--key',
      'give exactly one of --key <key> or --prefix <prefix>',
      'e.g. --key legal/case-1042.pdf',
    );
  }
  const [flag, key] = flags.key !== undefined ? ['--key', flags.key] : ['--prefix', flags.prefix!];
  // An empty prefix would hold every item, silently: stopping everything is what a pause is for.
  if (key === '') {
    throw ConfigError.single(
      flag,
      'must not be empty',
      'name the item or prefix to hold; to stop every deletion use: retention pause --all',
    );
  }
  if (!flags.reason)
    throw ConfigError.single('--reason', 'a hold needs a reason', 'e.g. --reason "litigation hold, case 1042"');
  const named = flags.policy && flags.policy.length > 0;
  const policies = named ? selectPolicies(config, flags.policy, false).map((policy) => policy.name) : [null];
  return { policies, key, prefix: flags.prefix !== undefined, reason: flags.reason, json: flags.json ?? false };
}

/**
 * Legal holds: held items are never deleted while the hold exists; they count as `held`. A hold
 * that matches nothing is kept (an operator may hold what does not exist yet), but a typo in a
 * key must not pass for protection: the command says, per policy, when nothing matches.
 */
export async function holdAddCommand(session: Session, request: NewHold): Promise<number> {
  const added: Array<Hold & { checks: HoldCheck[] }> = [];
  for (const policy of request.policies) {
    const { key, prefix, reason } = request;
    const hold = await addHold(session, { policy, key, prefix, reason });
    const governed: PolicyConfig[] =
      policy === null
        ? session.config.policies
        : session.config.policies.filter((candidate) => candidate.name === policy);
    const checks: HoldCheck[] = [];
    for (const target of governed) checks.push(await checkHold(session, hold, target));
    added.push({ ...hold, checks });
    if (request.json) continue;
    session.io.stdout.write(
      `hold ${hold.id} added on ${prefix ? 'prefix' : 'key'} "${hold.key}" (${policy ?? 'every policy'})\n`,
    );
    for (const check of checks) if (check.warning) session.io.stderr.write(`warning: ${check.warning}\n`);
  }
  if (request.json) session.io.stdout.write(`${JSON.stringify(added, null, 2)}\n`);
  return 0;
}

/** Items a prefix check lists in stores it cannot query (fs, S3, Vercel Blob, DynamoDB) before it gives up. */
const PREFIX_CHECK_ITEMS = 10_000;
const PAGE = 1_000;
/** Cutoffs this far ahead make every item in scope listable: some stores list only what is past their cutoffs. */
const EVERYTHING_AHEAD_MS = 100 * 365 * 86_400_000;

async function checkHold(session: Session, hold: Hold, policy: PolicyConfig): Promise<HoldCheck> {
  const what = `hold #${hold.id} ${hold.prefix ? 'prefix' : 'key'} "${hold.key}"`;
  let found: HoldMatch;
  let store: Store | undefined;
  try {
    store = await createStore(policy);
    await store.open();
    found = store.holdCheck
      ? await store.holdCheck.matches(hold)
      : await listedMatch(store, policy, hold, session.clock.now());
  } catch (error) {
    return {
      policy: policy.name,
      matched: null,
      warning: `${what}: could not check policy ${policy.name}: ${describeCause(error)}`,
    };
  } finally {
    await store?.close().catch(() => undefined);
  }
  session.log.info('hold_checked', { hold_id: hold.id, policy: policy.name, matched: found.matched ?? null });
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
  const cutoffs = computeCutoffs(policy.retention, new Date(now.getTime() + EVERYTHING_AHEAD_MS));
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

export interface HoldListOptions {
  policy?: string;
  json: boolean;
}

/** `hold list --policy p`: the first name, checked against the config. */
export function parseHoldList(config: RetentionConfig, flags: { policy?: string[]; json?: boolean }): HoldListOptions {
  const policy = flags.policy?.[0];
  if (policy) selectPolicies(config, [policy], false);
  return { ...(policy ? { policy } : {}), json: flags.json ?? false };
}

export async function holdListCommand(session: Session, flags: HoldListOptions): Promise<number> {
  const holds = await session.control.listHolds(flags.policy);
  if (flags.json) {
    session.io.stdout.write(`${JSON.stringify(holds, null, 2)}\n`);
    return 0;
  }
  session.io.stdout.write(
    `${table(
      ['id', 'policy', 'match', 'key', 'reason', 'by', 'since'],
      holds.map((hold) => [
        hold.id,
        hold.policy ?? '(all)',
        hold.prefix ? 'prefix' : 'key',
        hold.key,
        hold.reason,
        hold.createdBy,
        when(hold.createdAt),
      ]),
    )}\n`,
  );
  return 0;
}

export interface HoldRemoval {
  id: number;
  reason: string;
}

/** A hold id as `hold list` shows it, and why it goes. */
export function parseHoldRemove(id: string, flags: { reason?: string }): HoldRemoval {
  if (!/^\d+$/.test(id) || !Number.isSafeInteger(Number(id))) {
    throw ConfigError.single(
      '<id>',
      `${JSON.stringify(clip(id))} is not a hold id`,
      'see ids with: retention hold list',
    );
  }
  return { id: Number(id), reason: flags.reason ?? NO_REASON };
}

/** Removing a hold lets retention delete what it kept: recorded with the hold as it was. */
export async function holdRemoveCommand(session: Session, { id, reason }: HoldRemoval): Promise<number> {
  const removed = await removeHold(session, id, reason);
  if (!removed) throw ConfigError.single('<id>', `no hold with id ${id}`, 'see ids with: retention hold list');
  session.io.stdout.write(`hold ${id} removed\n`);
  return 0;
}
