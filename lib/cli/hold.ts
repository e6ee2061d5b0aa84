import { ConfigError } from '../errors.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { table, when } from './format.ts';

/** Legal holds: held items are never deleted while the hold exists; they count as `held`. */
export async function holdAddCommand(
  session: Session,
  flags: { policy?: string[]; key?: string; prefix?: string; reason?: string },
): Promise<number> {
  if ((flags.key === undefined) === (flags.prefix === undefined)) {
    throw ConfigError.single('--key', 'give exactly one of --key <key> or --prefix <prefix>', 'e.g. --key legal/case-1042.pdf');
  }
  if (!flags.reason) throw ConfigError.single('--reason', 'a hold needs a reason', 'e.g. --reason "litigation hold, case 1042"');
  const policies = flags.policy && flags.policy.length > 0 ? selectPolicies(session.config, flags.policy, false).map((p) => p.name) : [null];
  for (const policy of policies) {
    const hold = await session.control.addHold({
      policy,
      key: (flags.key ?? flags.prefix)!,
      prefix: flags.prefix !== undefined,
      reason: flags.reason,
      createdBy: session.actor,
    });
    session.log.info('hold_added', { hold_id: hold.id, policy, key: hold.key, prefix: hold.prefix, reason: hold.reason, by: session.actor });
    session.io.stdout.write(`hold ${hold.id} added on ${hold.prefix ? 'prefix' : 'key'} "${hold.key}" (${policy ?? 'every policy'})\n`);
  }
  return 0;
}

export async function holdListCommand(session: Session, flags: { policy?: string[]; json?: boolean }): Promise<number> {
  const policy = flags.policy?.[0];
  if (policy) selectPolicies(session.config, [policy], false);
  const holds = await session.control.listHolds(policy);
  if (flags.json) {
    session.io.stdout.write(`${JSON.stringify(holds, null, 2)}\n`);
    return 0;
  }
  session.io.stdout.write(
    `${table(
      ['id', 'policy', 'match', 'key', 'reason', 'by', 'since'],
      holds.map((hold) => [hold.id, hold.policy ?? '(all)', hold.prefix ? 'prefix' : 'key', hold.key, hold.reason, hold.createdBy, when(hold.createdAt)]),
    )}\n`,
  );
  return 0;
}

export async function holdRemoveCommand(session: Session, id: string): Promise<number> {
  if (!/^\d+$/.test(id)) throw ConfigError.single('<id>', `"${id}" is not a hold id`, 'see ids with: retention hold list');
  const removed = await session.control.removeHold(Number(id));
  if (!removed) throw ConfigError.single('<id>', `no hold with id ${id}`, 'see ids with: retention hold list');
  session.log.warn('hold_removed', { hold_id: Number(id), by: session.actor });
  session.io.stdout.write(`hold ${id} removed\n`);
  return 0;
}
