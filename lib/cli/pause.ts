import type { RetentionConfig } from '../config/schema.ts';
import { pauseScope, resumeScope } from '../engine/governed.ts';
import { ConfigError } from '../errors.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';

/** Which pauses a command sets or lifts: policy names, or `*` for every policy. */
export interface PauseScopes {
  scopes: string[];
  reason?: string;
}

/** What an operator gave no reason for is recorded as such: the record still says who and when. */
export const NO_REASON = 'no reason given';

/**
 * The kill switch: `pause --all` stops every policy (scheduled and manual runs alike) until
 * `resume --all`; a policy's own pause is independent of the global one. Both are audit records.
 */
export async function pauseCommand(
  session: Session,
  { scopes, reason = 'paused from the CLI' }: PauseScopes,
): Promise<number> {
  for (const scope of scopes) {
    await pauseScope(session, scope, reason);
    session.io.stdout.write(`paused ${scope === '*' ? 'every policy' : scope}: ${reason}\n`);
  }
  return 0;
}

/** Lifting a pause that was there is recorded with what it lifted; resuming what was not paused changes nothing. */
export async function resumeCommand(session: Session, { scopes, reason = NO_REASON }: PauseScopes): Promise<number> {
  for (const scope of scopes) {
    const resumed = await resumeScope(session, scope, reason);
    session.io.stdout.write(
      `${resumed ? 'resumed' : 'was not paused:'} ${scope === '*' ? 'every policy (global pause)' : scope}\n`,
    );
  }
  return 0;
}

/** `--policy` names or `--all` (not both: which one was meant?), checked before the control store opens. */
export function pauseScopes(
  config: RetentionConfig,
  flags: { policy?: string[]; all?: boolean; reason?: string },
): PauseScopes {
  const named = flags.policy !== undefined && flags.policy.length > 0;
  if (!flags.all && !named) throw ConfigError.single('--policy', 'no policy named', 'pass --policy <name> or --all');
  const scopes = named ? selectPolicies(config, flags.policy, flags.all).map((policy) => policy.name) : ['*'];
  return { scopes, ...(flags.reason !== undefined ? { reason: flags.reason } : {}) };
}
