import type { RetentionConfig } from '../config/schema.ts';
import type { AuditRecord } from '../core/control.ts';
import { ConfigError } from '../errors.ts';
import { readAuditTrail } from '../reports/auditTrail.ts';
import { createStore } from '../stores/registry.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { parsePositiveInt } from './flags.ts';
import { bytes, seconds, table, when } from './format.ts';

export interface HistoryOptions {
  policy?: string;
  limit: number;
  json: boolean;
}

/** Checked before the control store opens: the policy against the config, the limit. */
export function parseHistoryFlags(
  config: RetentionConfig,
  flags: { policy?: string[]; limit?: string; json?: boolean },
): HistoryOptions {
  const policy = flags.policy?.[0];
  if (policy) selectPolicies(config, [policy], false);
  const limit = parsePositiveInt('--limit', flags.limit) ?? 20;
  return { ...(policy ? { policy } : {}), limit, json: flags.json ?? false };
}

/** Cleanup history: recent runs, newest first. */
export async function historyCommand(session: Session, flags: HistoryOptions): Promise<number> {
  const runs = await session.control.listRuns({
    ...(flags.policy ? { policy: flags.policy } : {}),
    limit: flags.limit,
  });
  if (flags.json) {
    session.io.stdout.write(
      `${JSON.stringify(
        runs.map((run) => run.report ?? run),
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  session.io.stdout.write(
    `${table(
      ['run', 'policy', 'started', 'status', 'deleted', 'held', 'failed', 'freed', 'duration', 'sla'],
      runs.map((run) => [
        run.runId,
        run.policy,
        when(run.startedAt),
        `${run.status}${run.dryRun ? ' (dry run)' : ''}`,
        run.report?.deleted ?? '-',
        run.report?.held ?? '-',
        run.report?.failed ?? '-',
        run.report ? bytes(run.report.bytesFreed) : '-',
        seconds(run.report?.durationSeconds ?? null),
        run.report?.sla.status ?? '-',
      ]),
    )}\n`,
  );
  return 0;
}

export interface AuditOptions {
  query: { runId?: string; policy?: string; key?: string; limit: number };
  json: boolean;
}

/** Checked before the control store opens: a selection, the policy against the config, the limit. */
export function parseAuditFlags(
  config: RetentionConfig,
  flags: { run?: string; policy?: string[]; key?: string; limit?: string; json?: boolean },
): AuditOptions {
  if (!flags.run && !flags.policy?.length && !flags.key) {
    throw ConfigError.single('--run', 'say which records', 'pass --run <id>, --policy <name> and/or --key <key>');
  }
  const policy = flags.policy?.[0];
  if (policy) selectPolicies(config, [policy], false);
  const query = {
    ...(flags.run ? { runId: flags.run } : {}),
    ...(policy ? { policy } : {}),
    ...(flags.key ? { key: flags.key } : {}),
    limit: parsePositiveInt('--limit', flags.limit) ?? 1000,
  };
  return { query, json: flags.json ?? false };
}

/** The audit trail: who deleted what, when, and why (rule and cutoff). */
export async function auditCommand(session: Session, { query, json }: AuditOptions): Promise<number> {
  // Stores that keep their own trail (rows deleted in one statement) are read too: the run's
  // policy, the one asked for, or every policy.
  const wanted = query.policy ?? (query.runId ? (await session.control.getRun(query.runId))?.policy : undefined);
  const policies = session.config.policies.filter((policy) => wanted === undefined || policy.name === wanted);
  const stores = await Promise.all(policies.map((policy) => createStore(policy)));
  let records: AuditRecord[];
  try {
    records = await readAuditTrail(session.control, stores, query);
  } finally {
    for (const store of stores) await store.close();
  }
  if (json) {
    session.io.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
    return 0;
  }
  session.io.stdout.write(
    `${table(
      ['when', 'action', 'status', 'policy', 'key', 'item time', 'rule', 'cutoff', 'actor', 'run'],
      records.map((record) => [
        when(record.resolvedAt ?? record.createdAt),
        record.action,
        record.status,
        record.policy,
        record.key,
        when(record.itemTimestamp),
        record.rule,
        when(record.cutoff),
        record.actor,
        record.runId,
      ]),
    )}\n${records.length} record(s)\n`,
  );
  return 0;
}
