import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';

/**
 * Releases a stuck lease. Safe even if the holder is alive: breaking bumps the fencing token,
 * so the old holder's next batch is refused.
 */
export async function leaseBreakCommand(session: Session, policyName: string): Promise<number> {
  const [policy] = selectPolicies(session.config, [policyName], false);
  const broken = await session.control.breakLease(policy!.name);
  session.log.warn('lease_broken', { policy: policy!.name, by: session.actor, held: broken });
  session.io.stdout.write(broken ? `lease of ${policy!.name} broken; the next run can start\n` : `${policy!.name} had no lease\n`);
  return 0;
}
