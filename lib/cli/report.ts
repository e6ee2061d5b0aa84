import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { complianceHtml } from '../reports/complianceHtml.ts';
import { buildComplianceReport, type ComplianceReport } from '../reports/complianceRead.ts';
import { instantsPeriod, monthPeriod, type Period } from '../reports/period.ts';
import { createStore } from '../stores/registry.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { parseDurationFlag, parseInstant } from './flags.ts';
import { seconds, table, when } from './format.ts';

const DEFAULT_SINCE_MS = 30 * 86_400_000;

export interface ReportFlags {
  month?: string;
  from?: string;
  to?: string;
  since?: string;
  policy?: string[];
  json?: boolean;
  csv?: boolean;
  html?: boolean;
  strict?: boolean;
}

type Format = 'table' | 'json' | 'csv' | 'html';

export interface ReportOptions {
  /** The period, read against the session's clock (`--since` and the default end now). */
  period: (now: Date) => Period;
  policies: PolicyConfig[];
  format: Format;
  strict: boolean;
}

/** Checked before the control store is opened, so bad input starts nothing; no --policy: every policy. */
export function parseReportFlags(config: RetentionConfig, flags: ReportFlags): ReportOptions {
  const names = flags.policy ?? [];
  const formats = (['json', 'csv', 'html'] as const).filter((format) => flags[format]);
  if (formats.length > 1)
    throw ConfigError.single(`--${formats[1]}`, `given with --${formats[0]}`, 'choose one output format');
  return {
    period: parsePeriod(flags),
    policies: selectPolicies(config, names, names.length === 0),
    format: formats[0] ?? 'table',
    strict: flags.strict ?? false,
  };
}

function parsePeriod(flags: ReportFlags): (now: Date) => Period {
  const given = (['month', 'from', 'to', 'since'] as const).filter((flag) => flags[flag] !== undefined);
  const fix = 'give --month YYYY-MM, or --from and --to, or --since';
  if (flags.month !== undefined) {
    if (given.length > 1) throw ConfigError.single(`--${given[1]}`, 'given with --month', fix);
    const month = monthPeriod(flags.month);
    return () => month;
  }
  if (flags.since !== undefined) {
    if (given.length > 1) throw ConfigError.single(`--${given.find((f) => f !== 'since')}`, 'given with --since', fix);
    const ms = parseDurationFlag('--since', flags.since)!;
    return (now) => ({ ...instantsPeriod(new Date(now.getTime() - ms), now), label: `last ${flags.since}` });
  }
  if (flags.from !== undefined || flags.to !== undefined) {
    const missing = flags.from === undefined ? '--from' : flags.to === undefined ? '--to' : null;
    if (missing)
      throw ConfigError.single(missing, 'missing', `give both --from and --to, e.g. --from 2026-11-01 --to 2026-12-01`);
    const period = instantsPeriod(parseInstant('--from', flags.from)!, parseInstant('--to', flags.to)!);
    return () => period;
  }
  return (now) => ({ ...instantsPeriod(new Date(now.getTime() - DEFAULT_SINCE_MS), now), label: 'last 30d' });
}

/**
 * The compliance report over a period: per policy and purpose, reconciled with the audit trail.
 * Read-only. Exit 0; with --strict, 1 when any policy needs attention or the chains are altered.
 */
export async function reportCommand(session: Session, options: ReportOptions): Promise<number> {
  const now = session.clock.now();
  const sources = await Promise.all(
    options.policies.map(async (policy) => ({ policy, store: await createStore(policy) })),
  );
  let report: ComplianceReport;
  try {
    report = await buildComplianceReport(session.control, sources, options.period(now), now);
  } finally {
    for (const { store } of sources) await store.close();
  }
  const render: Record<Format, (report: ComplianceReport) => string> = {
    table: formatReport,
    json: (r) => `${JSON.stringify(r, null, 2)}\n`,
    csv: formatCsv,
    html: complianceHtml,
  };
  session.io.stdout.write(render[options.format](report));
  const troubled = report.summary.attention > 0 || !report.chains.intact;
  return options.strict && troubled ? 1 : 0;
}

function formatReport(report: ComplianceReport): string {
  const rows = report.policies.map((p) => [
    p.policy,
    p.verdict,
    p.deleted,
    p.failed,
    `${p.failure_rate_percent}%`,
    p.end.held ?? '-',
    p.end.unclassified ?? '-',
    p.end.backlog ?? '-',
    seconds(p.end.oldest_overdue_seconds),
    p.sla_breaches,
    p.missed_runs.count,
    Object.values(p.governance).reduce((sum, count) => sum + (count ?? 0), 0),
    p.reconciliation.findings.length,
  ]);
  const { period, chains, summary } = report;
  const lines = [
    `compliance report ${period.label}: ${when(period.from)} to ${when(period.to)} (end excluded)`,
    '',
    table(
      [
        'policy',
        'verdict',
        'deleted',
        'failed',
        'fail%',
        'held',
        'unclassified',
        'backlog',
        'oldest overdue',
        'sla breaches',
        'missed',
        'governance',
        'findings',
      ],
      rows,
    ),
  ];
  for (const p of report.policies.filter((candidate) => candidate.purposes.length > 1)) {
    const purposes = p.purposes.map((f) => [f.purpose, f.deleted, f.failed, f.kept, f.pending]);
    lines.push('', `${p.policy} by purpose:`, table(['purpose', 'deleted', 'failed', 'kept', 'pending'], purposes));
  }
  for (const p of report.policies.filter((candidate) => candidate.verdict === 'attention')) {
    lines.push('', `${p.policy} needs attention:`, ...p.reasons.map((reason) => `  - ${reason}`));
  }
  lines.push(
    '',
    chains.intact
      ? `audit chains intact since ${when(chains.since)} (${chains.verified_records} records, ${chains.verified_batches} row batches)`
      : `audit chains ALTERED: ${chains.problem_count} problem(s); first: ${chains.first_problem}`,
    `${summary.compliant} compliant, ${summary.attention} need attention, ${summary.disabled} disabled; ${summary.findings} reconciliation finding(s)`,
  );
  return `${lines.join('\n')}\n`;
}

const CSV_HEADER = [
  'policy',
  'purpose',
  'verdict',
  'deleted',
  'failed',
  'failure_rate_percent',
  'held',
  'unclassified',
  'backlog',
  'oldest_overdue_seconds',
  'sla_breaches',
  'missed_runs',
  'governance_actions',
  'findings',
];

/** One row per policy (purpose `*`), then one per purpose with what the audit trail knows of it. */
function formatCsv(report: ComplianceReport): string {
  const cell = (value: string | number | null) => {
    const text = value === null ? '' : String(value);
    return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const rows: Array<Array<string | number | null>> = [];
  for (const p of report.policies) {
    rows.push([
      p.policy,
      '*',
      p.verdict,
      p.deleted,
      p.failed,
      p.failure_rate_percent,
      p.end.held,
      p.end.unclassified,
      p.end.backlog,
      p.end.oldest_overdue_seconds,
      p.sla_breaches,
      p.missed_runs.count,
      Object.values(p.governance).reduce((sum, count) => sum + (count ?? 0), 0),
      p.reconciliation.findings.length,
    ]);
    for (const f of p.purposes) {
      rows.push([p.policy, f.purpose, null, f.deleted, f.failed, null, null, null, null, null, null, null, null, null]);
    }
  }
  return `${[CSV_HEADER, ...rows].map((row) => row.map(cell).join(',')).join('\n')}\n`;
}
