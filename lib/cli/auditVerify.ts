import type { RetentionConfig } from '../config/schema.ts';
import type { StoreAuditChain } from '../core/chain.ts';
import type { Store } from '../core/store.ts';
import { ConfigError } from '../errors.ts';
import { CONTROL_TRAIL, type VerifyReport, verifyAuditTrails } from '../reports/auditVerify.ts';
import { createStore } from '../stores/registry.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { parseDurationFlag, parseInstant } from './flags.ts';
import { table, when } from './format.ts';

/** `retention audit verify` exits with this when any record was changed, removed or reordered. */
export const EXIT_AUDIT_ALTERED = 5;

/** With `audit`'s own flags, which commander parses for it wherever they stand (refused here but the two shared). */
export interface AuditVerifyFlags {
  policy?: string[];
  since?: string;
  json?: boolean;
  run?: string;
  key?: string;
  limit?: string;
  action?: string;
  outcome?: string;
  until?: string;
  offset?: string;
}

export interface AuditVerifyOptions {
  policies?: string[];
  /** A duration back from now (`7d`) or an instant (`2026-01-01`). */
  since?: { ms: number } | { at: Date };
  json: boolean;
}

/** Checked before the control store opens: the policies against the config, `--since`. */
export function parseAuditVerifyFlags(config: RetentionConfig, flags: AuditVerifyFlags): AuditVerifyOptions {
  for (const flag of ['run', 'key', 'limit', 'action', 'outcome', 'until', 'offset'] as const) {
    if (flags[flag] !== undefined)
      throw ConfigError.single(
        `--${flag}`,
        'not an option of audit verify',
        'verify takes --policy, --since and --json',
      );
  }
  const policies = flags.policy?.length ? selectPolicies(config, flags.policy, false).map((p) => p.name) : undefined;
  return {
    ...(policies ? { policies } : {}),
    ...(flags.since === undefined ? {} : { since: parseSince(flags.since) }),
    json: flags.json ?? false,
  };
}

function parseSince(value: string): { ms: number } | { at: Date } {
  if (/^\d+\s*[a-z]+$/i.test(value.trim())) return { ms: parseDurationFlag('--since', value)! };
  try {
    return { at: parseInstant('--since', value)! };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw ConfigError.single(
      '--since',
      `${JSON.stringify(value)} is neither a duration nor a date`,
      'e.g. --since 7d or --since 2026-01-01',
    );
  }
}

/**
 * Recomputes the audit chains (invariant 13): the control store's, and the trails stores keep
 * themselves (rows: `retention.row_audit`) of the configured policies. 0: intact; 5: something
 * was changed, removed or reordered (the first one named); 1: the check could not be done.
 */
export async function auditVerifyCommand(session: Session, options: AuditVerifyOptions): Promise<number> {
  const since =
    options.since === undefined
      ? undefined
      : 'at' in options.since
        ? options.since.at
        : new Date(session.clock.now().getTime() - options.since.ms);
  const policies = session.config.policies.filter((p) => !options.policies || options.policies.includes(p.name));
  const stores: Store[] = [];
  let report: VerifyReport;
  try {
    const storeChains: Array<{ policy: string; chain: StoreAuditChain }> = [];
    for (const policy of policies) {
      const store = await createStore(policy);
      stores.push(store);
      if (store.audit?.chain) storeChains.push({ policy: policy.name, chain: store.audit.chain });
    }
    report = await verifyAuditTrails(session.control, storeChains, {
      ...(options.policies ? { policies: options.policies } : {}),
      ...(since ? { since } : {}),
    });
  } finally {
    for (const store of stores) await store.close();
  }
  session.io.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatVerify(report, session));
  return report.intact ? 0 : EXIT_AUDIT_ALTERED;
}

function formatVerify(report: VerifyReport, session: Session): string {
  const lines = [
    table(
      ['trail', 'policy', 'links', 'records', 'head', 'not chained'],
      report.trails.map((trail) => [
        trail.trail === CONTROL_TRAIL ? `control store (${session.controlLocation})` : trail.trail,
        trail.chain,
        trail.links,
        trail.records ?? '-',
        trail.head.seq === 0 ? '-' : `seq ${trail.head.seq} ${trail.head.hash.slice(0, 12)}`,
        trail.unchained,
      ]),
    ),
  ];
  for (const trail of report.trails) {
    for (const [run, count] of Object.entries(trail.repaired ?? {}))
      lines.push(`note: ${trail.chain}: ${count} record(s) of run ${run} re-chained after an interrupted write`);
    if (trail.awaitingRepair?.length)
      lines.push(
        `note: ${trail.chain}: a write of run(s) ${trail.awaitingRepair.join(', ')} was interrupted; ` +
          'the next live run of the policy re-chains it',
      );
  }
  const scope = report.since ? ` written since ${when(report.since)}` : '';
  const { records, entries, batches } = report.verified;
  const counted = `${records} record(s) in ${entries} entries and ${batches} row batch(es)${scope}`;
  const unchained = report.unchained.records + report.unchained.batches;
  const before =
    unchained > 0
      ? ` (${report.unchained.records} record(s) and ${report.unchained.batches} batch(es) predate the chains)`
      : '';
  if (report.intact) return `${lines.join('\n')}\nintact: ${counted} verified${before}\n`;
  const first = report.problems[0]!;
  lines.push(
    `ALTERED: ${first.trail}, policy ${first.chain}: ${first.message}`,
    `${report.problemCount} problem(s); ${counted} checked${before}`,
    ...report.problems
      .slice(1, 20)
      .map((problem) => `  ${problem.kind}: ${problem.trail}, ${problem.chain}: ${problem.message}`),
  );
  return `${lines.join('\n')}\n`;
}
