import type { Session } from './context.ts';

/**
 * Releases a stuck lease. Safe even if the holder is alive: breaking bumps the fencing token,
 * so the old holder's next batch is refused. `policy` was checked against the config.
 */
export async function leaseBreakCommand(session: Session, policy: string): Promise<number> {
  const broken = await session.control.breakLease(policy);
  session.log.warn('lease_broken', { policy, by: session.actor, held: broken });
  session.io.stdout.write(broken ? `lease of ${policy} broken; the next run can start\n` : `${policy} had no lease\n`);
  return 0;
}
