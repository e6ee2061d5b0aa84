import type { RetentionConfig } from '../config/schema.ts';
import type { Hold } from '../core/types.ts';
import { removeHold } from '../engine/governed.ts';
import { addCheckedHold, type HoldCheck } from '../engine/holdCheck.ts';
import { ConfigError, clip } from '../errors.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { table, when } from './format.ts';
import { NO_REASON } from './pause.ts';

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

/** Legal holds: held items are never deleted while the hold exists; they count as `held`. */
export async function holdAddCommand(session: Session, request: NewHold): Promise<number> {
  const added: Array<Hold & { checks: HoldCheck[] }> = [];
  for (const policy of request.policies) {
    const { key, prefix, reason } = request;
    const hold = await addCheckedHold(session, session.config.policies, { policy, key, prefix, reason });
    added.push(hold);
    if (request.json) continue;
    session.io.stdout.write(
      `hold ${hold.id} added on ${prefix ? 'prefix' : 'key'} "${hold.key}" (${policy ?? 'every policy'})\n`,
    );
    for (const check of hold.checks) if (check.warning) session.io.stderr.write(`warning: ${check.warning}\n`);
  }
  if (request.json) session.io.stdout.write(`${JSON.stringify(added, null, 2)}\n`);
  return 0;
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
