import { isOpen } from '../core/attention.ts';
import { HISTORY_WINDOW, latestTurn, missedTick } from '../daemon/due.ts';
import { nextRun } from '../policy/schedule.ts';
import { runSummary } from '../reports/health.ts';
import type { Session } from './context.ts';
import { table, when } from './format.ts';

/**
 * Per policy: enabled, paused, last run, items needing attention, next run, lease holder. The next run is the daemon's:
 * the next tick of the schedule, or, when the last tick passed without a run taking its turn
 * (no daemon was up, or it waits for a slot or the lease), `due since` that tick: the run a
 * daemon starts right away (lib/daemon/due.ts decides it the same way for both).
 */
export async function statusCommand(session: Session, flags: { json?: boolean }): Promise<number> {
  const now = session.clock.now();
  const rows = [];
  for (const policy of session.config.policies) {
    const [pause, runs, lease, checkpoint, streaks] = await Promise.all([
      session.control.pausedBy(policy.name),
      session.control.listRuns({ policy: policy.name, limit: HISTORY_WINDOW }),
      session.control.getLease(policy.name),
      session.control.getCheckpoint(policy.name),
      session.control.attentionItems(policy.name, policy.attentionAfter),
    ]);
    const leaseLive = lease !== null && lease.expiresAt > now;
    const lastRun = runs[0] ?? null;
    const dueSince = policy.enabled ? missedTick(policy.schedule, now, latestTurn(runs)?.startedAt ?? null) : null;
    rows.push({
      policy: policy.name,
      dataClass: policy.class,
      enabled: policy.enabled,
      paused: pause ? { scope: pause.scope, by: pause.by, reason: pause.reason, at: pause.at.toISOString() } : null,
      lastRun: runSummary(lastRun),
      nextRun: policy.enabled ? nextRun(policy.schedule, now).toISOString() : null,
      dueSince: dueSince?.toISOString() ?? null,
      lease: leaseLive ? { owner: lease.owner, token: lease.token, expiresAt: lease.expiresAt.toISOString() } : null,
      resumeFrom: checkpoint ? checkpoint.cursor : null,
      // Items that failed in attentionAfter consecutive runs, not dismissed: `retention attention list`.
      attention: { open: streaks.filter((item) => isOpen(item, policy.attentionAfter)).length },
    });
  }
  if (flags.json) {
    session.io.stdout.write(`${JSON.stringify({ control: session.controlLocation, policies: rows }, null, 2)}\n`);
    return 0;
  }
  session.io.stdout.write(
    `${table(
      [
        'policy',
        'enabled',
        'paused',
        'last run',
        'last status',
        'deleted',
        'sla',
        'attention',
        'next run',
        'lease holder',
      ],
      rows.map((row) => [
        row.policy,
        row.enabled ? 'yes' : 'no',
        row.paused ? `yes (${row.paused.scope === '*' ? 'all' : 'policy'}: ${row.paused.reason})` : 'no',
        when(row.lastRun?.startedAt),
        row.lastRun ? `${row.lastRun.status}${row.lastRun.dryRun ? ' (dry run)' : ''}` : '-',
        row.lastRun?.deleted ?? '-',
        row.lastRun?.sla ?? '-',
        row.attention.open,
        row.dueSince ? `due since ${when(row.dueSince)}` : when(row.nextRun),
        row.lease ? `${row.lease.owner} until ${when(row.lease.expiresAt)}` : '-',
      ]),
    )}\ncontrol store: ${session.controlLocation}\n`,
  );
  return 0;
}
