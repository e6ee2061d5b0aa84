import { ConfigError } from '../errors.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';

/**
 * The kill switch: `pause --all` stops every policy (scheduled and manual runs alike) until
 * `resume --all`; a policy's own pause is independent of the global one.
 */
export async function pauseCommand(session: Session, flags: { policy?: string[]; all?: boolean; reason?: string }): Promise<number> {
  const reason = flags.reason ?? 'paused from the CLI';
  for (const scope of scopes(session, flags)) {
    await session.control.pause(scope, session.actor, reason);
    session.log.warn('policy_paused', { scope, by: session.actor, reason });
    session.io.stdout.write(`paused ${scope === '*' ? 'every policy' : scope}: ${reason}\n`);
  }
  return 0;
}

export async function resumeCommand(session: Session, flags: { policy?: string[]; all?: boolean }): Promise<number> {
  for (const scope of scopes(session, flags)) {
    const resumed = await session.control.resume(scope);
    session.log.info('policy_resumed', { scope, by: session.actor, was_paused: resumed });
    session.io.stdout.write(`${resumed ? 'resumed' : 'was not paused:'} ${scope === '*' ? 'every policy (global pause)' : scope}\n`);
  }
  return 0;
}

function scopes(session: Session, flags: { policy?: string[]; all?: boolean }): string[] {
  if (flags.all) return ['*'];
  if (!flags.policy || flags.policy.length === 0) {
    throw ConfigError.single('--policy', 'no policy named', 'pass --policy <name> or --all');
  }
  return selectPolicies(session.config, flags.policy, false).map((policy) => policy.name);
}
