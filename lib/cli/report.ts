import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import type { ControlStore } from '../core/control.ts';
import { durationMs } from '../core/durations.ts';
import { type ComplianceReport, complianceReport, type PolicyRecords } from '../reports/compliance.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { parseDurationFlag } from './flags.ts';
import { bytes, seconds, table, when } from './format.ts';

/** Runs read per policy; a window holding more is reported as incomplete. */
const RUNS_READ = 1000;
const DEFAULT_SINCE = '30d';

export interface ReportFlags {
  since?: string;
  policy?: string[];
  json?: boolean;
}

export interface ReportOptions {
  sinceMs: number;
  policies: PolicyConfig[];
  json: boolean;
}

/** Checked before the control store is opened, so bad input starts nothing; no --policy: every policy. */
export function parseReportFlags(config: RetentionConfig, flags: ReportFlags): ReportOptions {
  const names = flags.policy ?? [];
  return {
    sinceMs: parseDurationFlag('--since', flags.since) ?? durationMs(DEFAULT_SINCE),
    policies: selectPolicies(config, names, names.length === 0),
    json: flags.json ?? false,
  };
}

/** Compliance report: per policy, what its live runs did over the window and whether it is doing its job. Read-only. */
export async function reportCommand(session: Session, options: ReportOptions): Promise<number> {
  const read = async (policy: PolicyConfig) => ({ policy, records: await readRecords(session.control, policy.name) });
  const entries = await Promise.all(options.policies.map(read));
  const until = session.clock.now();
  const report = complianceReport(entries, {
    since: new Date(until.getTime() - options.sinceMs),
    until,
    runsRead: RUNS_READ,
  });
  session.io.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return 0;
}

async function readRecords(control: ControlStore, policy: string): Promise<PolicyRecords> {
  const [runs, holds, pause] = await Promise.all([
    control.listRuns({ policy, limit: RUNS_READ }),
    control.listHolds(policy),
    control.pausedBy(policy),
  ]);
  // The intents of a run still in progress are not left over: that run resolves them itself.
  const newest = runs.find((run) => !run.dryRun);
  const pending = await control.pendingIntents(policy, newest?.status === 'running' ? newest.runId : undefined);
  return { runs, holds: holds.length, pause, pendingIntents: pending.length };
}

function formatReport(report: ComplianceReport): string {
  const rows = report.policies.map((policy) => [
    policy.policy,
    policy.verdict,
    `${policy.runs.total}${policy.runs.failed > 0 ? ` (${policy.runs.failed} failed)` : ''}`,
    policy.totals.deleted,
    policy.totals.failed,
    bytes(policy.totals.bytes_freed),
    policy.sla.breach,
    policy.latest_run?.backlog ?? '-',
    seconds(policy.latest_run?.oldest_overdue_seconds ?? null),
    policy.holds,
  ]);
  const lines = [
    `compliance report: live runs started ${when(report.since)} to ${when(report.until)}`,
    '',
    table(
      ['policy', 'verdict', 'runs', 'deleted', 'failed', 'freed', 'sla breaches', 'backlog', 'oldest overdue', 'holds'],
      rows,
    ),
  ];
  for (const policy of report.policies.filter((candidate) => candidate.verdict === 'attention')) {
    lines.push('', `${policy.policy} needs attention:`, ...policy.reasons.map((reason) => `  - ${reason}`));
  }
  const incomplete = report.policies.filter((policy) => !policy.window_complete).map((policy) => policy.policy);
  if (incomplete.length > 0) {
    lines.push(
      '',
      `note: the window holds more than ${RUNS_READ} runs of ${incomplete.join(', ')}: their counts cover the newest ${RUNS_READ} only (narrow it with --since)`,
    );
  }
  const count = (verdict: string): number => report.policies.filter((policy) => policy.verdict === verdict).length;
  lines.push(
    '',
    `${count('compliant')} compliant, ${count('attention')} need attention, ${count('disabled')} disabled`,
  );
  return `${lines.join('\n')}\n`;
}
