import type { RetentionConfig } from '../config/schema.ts';
import {
  AUDIT_ACTIONS,
  AUDIT_STATUSES,
  type AuditAction,
  type AuditQuery,
  type AuditRecord,
  type AuditStatus,
} from '../core/control.ts';
import { governanceView } from '../core/governance.ts';
import { ConfigError, clip } from '../errors.ts';
import { auditView, readAuditPage, type TrailPage } from '../reports/auditTrail.ts';
import { createStore } from '../stores/registry.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { instantOf, parsePositiveInt, parseTimeFlag, type TimeFlag } from './flags.ts';
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

const ACTIONS: readonly AuditAction[] = AUDIT_ACTIONS;
const OUTCOMES: readonly AuditStatus[] = AUDIT_STATUSES;

export interface AuditFlags {
  run?: string;
  policy?: string[];
  key?: string;
  action?: string;
  outcome?: string;
  since?: string;
  until?: string;
  limit?: string;
  offset?: string;
  json?: boolean;
}

export interface AuditOptions {
  query: Omit<AuditQuery, 'since' | 'until'> & { offset: number };
  since?: TimeFlag;
  until?: TimeFlag;
  json: boolean;
  /** The flags as given, to print the command for the next page. */
  flags: AuditFlags;
}

function oneOf<T extends string>(flag: string, value: string | undefined, known: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if ((known as readonly string[]).includes(value)) return value as T;
  throw ConfigError.single(flag, `${JSON.stringify(clip(value))} is not one of them`, `one of: ${known.join(', ')}`);
}

/** Checked before the control store opens: a selection, the policy against the config, the limit. */
export function parseAuditFlags(config: RetentionConfig, flags: AuditFlags): AuditOptions {
  const selections = [flags.run, flags.policy?.length, flags.key, flags.action, flags.outcome, flags.since];
  if (!selections.some(Boolean)) {
    throw ConfigError.single(
      '--run',
      'say which records',
      'pass --run <id>, --policy <name>, --key <key>, --action <name>, --outcome <status> and/or --since <time>',
    );
  }
  const policy = flags.policy?.[0];
  if (policy) selectPolicies(config, [policy], false);
  const action = oneOf('--action', flags.action, ACTIONS);
  const status = oneOf('--outcome', flags.outcome, OUTCOMES);
  const since = parseTimeFlag('--since', flags.since);
  const until = parseTimeFlag('--until', flags.until);
  const query = {
    ...(flags.run ? { runId: flags.run } : {}),
    ...(policy ? { policy } : {}),
    ...(flags.key ? { key: flags.key } : {}),
    ...(action ? { action } : {}),
    ...(status ? { status } : {}),
    limit: parsePositiveInt('--limit', flags.limit) ?? 1000,
    offset: flags.offset === '0' ? 0 : (parsePositiveInt('--offset', flags.offset) ?? 0),
  };
  return { query, ...(since ? { since } : {}), ...(until ? { until } : {}), json: flags.json ?? false, flags };
}

/**
 * The audit trail: who deleted what, when, and why (rule and cutoff), what failed and with
 * which error, and what operators did (governance actions). One page at a time: when more
 * records match, the command says how to get the next page instead of dropping them.
 */
export async function auditCommand(session: Session, options: AuditOptions): Promise<number> {
  const { query, json } = options;
  const now = session.clock.now();
  const window = {
    ...(options.since ? { since: instantOf(options.since, now) } : {}),
    ...(options.until ? { until: instantOf(options.until, now) } : {}),
  };
  // Stores that keep their own trail (rows deleted in one statement) are read too: the run's
  // policy, the one asked for, or every policy.
  const wanted = query.policy ?? (query.runId ? (await session.control.getRun(query.runId))?.policy : undefined);
  const policies = session.config.policies.filter((policy) => wanted === undefined || policy.name === wanted);
  const sources = await Promise.all(
    policies.map(async (policy) => ({ policy: policy.name, store: await createStore(policy) })),
  );
  let page: TrailPage;
  try {
    page = await readAuditPage(session.control, sources, { ...query, ...window });
  } finally {
    for (const { store } of sources) await store.close();
  }
  const views = page.records.map(auditView);
  if (json) session.io.stdout.write(`${JSON.stringify(views, null, 2)}\n`);
  else session.io.stdout.write(`${auditTable(page.records)}\n${page.records.length} record(s)\n`);
  if (page.more) {
    const next = nextPageCommand(options.flags, window, query.offset + page.records.length);
    (json ? session.io.stderr : session.io.stdout).write(`more: ${next}\n`);
  }
  for (const { policy, error } of page.unreachable)
    session.io.stderr.write(`error: policy ${policy}: its own audit trail could not be read: ${error}\n`);
  return page.unreachable.length > 0 ? 1 : 0;
}

function auditTable(records: AuditRecord[]): string {
  return table(
    [
      'when',
      'action',
      'status',
      'policy',
      'key',
      'item time',
      'rule or reason',
      'cutoff',
      'actor',
      'run',
      'error or detail',
    ],
    records.map((record) => {
      const governance = governanceView(record);
      return [
        when(record.resolvedAt ?? record.createdAt),
        record.action,
        record.status,
        record.policy,
        record.key,
        governance ? '-' : when(record.itemTimestamp),
        record.rule,
        governance ? '-' : when(record.cutoff),
        record.actor,
        record.runId || '-',
        record.error ?? '',
      ];
    }),
  );
}

/** The same command, `offset` records in; a window given as a duration (`--since 24h`) as the instants it meant. */
function nextPageCommand(flags: AuditFlags, window: { since?: Date; until?: Date }, offset: number): string {
  const quoted = (value: string) => (/^[\w./:@=+-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`);
  const given: Array<[string, string | undefined]> = [
    ['--run', flags.run],
    ['--policy', flags.policy?.[0]],
    ['--key', flags.key],
    ['--action', flags.action],
    ['--outcome', flags.outcome],
    ['--since', window.since?.toISOString()],
    ['--until', window.until?.toISOString()],
    ['--limit', flags.limit],
  ];
  const args = given.flatMap(([flag, value]) => (value === undefined ? [] : [flag, quoted(value)]));
  return ['retention audit', ...args, '--offset', String(offset), ...(flags.json ? ['--json'] : [])].join(' ');
}
