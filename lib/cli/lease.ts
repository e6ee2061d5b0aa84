import type { RetentionConfig } from '../config/schema.ts';
import { recordGovernance } from '../core/governance.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { when } from './format.ts';
import { NO_REASON } from './pause.ts';

export interface LeaseBreak {
  policy: string;
  reason: string;
}

/** The policy checked against the config before the control store opens. */
export function parseLeaseBreak(config: RetentionConfig, policy: string, flags: { reason?: string }): LeaseBreak {
  const checked = selectPolicies(config, [policy], false, '<policy>')[0]!.name;
  return { policy: checked, reason: flags.reason ?? NO_REASON };
}

/**
 * Releases a stuck lease. Safe even if the holder is alive: breaking bumps the fencing token,
 * so the old holder's next batch is refused. A break is an audit record naming the holder.
 */
export async function leaseBreakCommand(session: Session, { policy, reason }: LeaseBreak): Promise<number> {
  const holder = await session.control.getLease(policy);
  const broken = await session.control.breakLease(policy);
  session.log.warn('lease_broken', { policy, by: session.actor, held: broken });
  if (broken) {
    const live = holder && holder.expiresAt > session.clock.now() ? 'held' : 'expired';
    const detail = holder
      ? `lease of ${holder.owner} (token ${holder.token}, ${live}, until ${when(holder.expiresAt)}) broken`
      : 'lease broken';
    await recordGovernance(session.control, {
      action: 'lease_broken',
      actor: session.actor,
      reason,
      scope: policy,
      subject: policy,
      detail,
      at: session.clock.now(),
      ...(holder ? { runId: holder.owner } : {}),
    });
  }
  session.io.stdout.write(broken ? `lease of ${policy} broken; the next run can start\n` : `${policy} had no lease\n`);
  return 0;
}
