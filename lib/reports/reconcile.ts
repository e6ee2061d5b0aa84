import type { AuditCount, RunRecord } from '../core/control.ts';

/**
 * Reconciliation of run history with the audit trail (pure). The report's `deleted` is the
 * audit trail's count; each run's history figure is checked against its own records, whole
 * (a run that crosses the period's edge is compared with all of its records), and every
 * difference is a finding naming the run, the two figures and where to look.
 */

/** What the audit trail holds of one policy: the control store's counts and the store's own (rows). */
export interface AuditSources {
  control: AuditCount[];
  /** `retention.row_audit` (rows with `audit: true`); null when the store keeps no trail. */
  store: AuditCount[] | null;
}

const DELETING_ACTIONS = new Set(['delete', 'partition_drop']);

/**
 * The control store mirrors a partition drop as one record whose rule reads `partition of N rows…`
 * (engine/partitions.ts); the store's trail counts the rows themselves.
 */
const PARTITION_ROWS = /^partition of (\d+) rows/;

function inRows(count: AuditCount): AuditCount {
  if (count.action !== 'partition_drop') return count;
  const rows = PARTITION_ROWS.exec(count.rule);
  return rows ? { ...count, count: count.count * Number(rows[1]) } : count;
}

export interface SourceDisagreement {
  runId: string;
  action: string;
  control: number;
  store: number;
}

/**
 * One count per record: for each (run, action) the control store's records when it has any (they
 * carry outcomes and errors, as `readAuditTrail` prefers them), else the store's. A run deleting
 * rows on the scan path is in both: the two must agree on what was deleted.
 */
export function mergeSources(sources: AuditSources): { counts: AuditCount[]; disagreements: SourceDisagreement[] } {
  const control = sources.control.map(inRows);
  const pair = (count: AuditCount) => `${count.runId}\u0000${count.action}`;
  const inControl = new Set(control.map(pair));
  const fromStore = (sources.store ?? []).filter((count) => !inControl.has(pair(count)));
  const disagreements: SourceDisagreement[] = [];
  const storePairs = new Set((sources.store ?? []).map(pair));
  for (const key of inControl) {
    if (!storePairs.has(key)) continue;
    const [runId, action] = key.split('\u0000') as [string, string];
    if (!DELETING_ACTIONS.has(action)) continue;
    const of = (counts: AuditCount[]) => deletedIn(counts.filter((count) => pair(count) === key));
    const [inTheControl, inTheStore] = [of(control), of(sources.store ?? [])];
    if (inTheControl !== inTheStore) disagreements.push({ runId, action, control: inTheControl, store: inTheStore });
  }
  return { counts: [...control, ...fromStore], disagreements };
}

/** Items deleted (rows for partition drops): records of a deleting action whose outcome is `deleted`. */
export function deletedIn(counts: AuditCount[]): number {
  return counts
    .filter((count) => count.status === 'deleted' && DELETING_ACTIONS.has(count.action))
    .reduce((sum, count) => sum + count.count, 0);
}

export interface RunCheck {
  run_id: string;
  status: RunRecord['status'] | 'unknown';
  started_at: string | null;
  /** What the run's report says it deleted; null without a report (crashed, in progress). */
  history_deleted: number | null;
  /** Its records with outcome `deleted`, all of them (also those outside the period). */
  audit_deleted: number;
}

export interface Reconciliation {
  /** The report's `deleted`: records with outcome `deleted` written in the period. */
  audit_deleted: number;
  /** What the reports of the runs started in the period say they deleted. */
  history_deleted: number;
  /** Runs compared, whole; those without a report are listed apart (their records are the only account). */
  runs_checked: number;
  unreported: RunCheck[];
  /** Every difference, each a sentence with the run and what to check. */
  findings: string[];
}

export interface ReconcileInput {
  policy: string;
  /** The live runs started in the period, and any other run that has records in it. */
  runs: RunRecord[];
  /** Each run's own records, whole (merged sources), by run id. */
  runCounts: Map<string, AuditCount[]>;
  /** The period's records (merged sources). */
  periodCounts: AuditCount[];
  disagreements: SourceDisagreement[];
  /** Runs started in the period (the others are here because they have records in it). */
  startedInPeriod: Set<string>;
}

export function reconcile(input: ReconcileInput): Reconciliation {
  const findings: string[] = [];
  const unreported: RunCheck[] = [];
  let checked = 0;
  const known = new Map(input.runs.map((run) => [run.runId, run]));
  // Runs of the period, and earlier ones only for their records in it.
  const runIds = new Set([...input.startedInPeriod, ...input.runCounts.keys()]);
  for (const runId of runIds) {
    const run = known.get(runId);
    const audit = deletedIn(input.runCounts.get(runId) ?? []);
    if (run?.dryRun) continue;
    if (!run) {
      if (audit > 0 && runId !== '')
        findings.push(
          `run ${runId}: ${audit} deletion(s) in the audit trail, but run history has no such run of ${input.policy}; ` +
            `see \`retention audit --run ${runId}\``,
        );
      continue;
    }
    const check: RunCheck = {
      run_id: runId,
      status: run.status,
      started_at: run.startedAt.toISOString(),
      history_deleted: run.report?.deleted ?? null,
      audit_deleted: audit,
    };
    if (check.history_deleted === null) {
      // In progress with nothing recorded yet is not worth a line; a crash always is.
      if (audit > 0 || run.status === 'crashed') unreported.push(check);
      continue;
    }
    checked += 1;
    if (check.history_deleted !== audit) {
      findings.push(
        `run ${runId}: history says ${check.history_deleted} deleted, the audit trail has ${audit} record(s) with outcome deleted; ` +
          `compare \`retention history --policy ${input.policy}\` with \`retention audit --run ${runId} --outcome deleted\``,
      );
    }
  }
  for (const { runId, action, control, store } of input.disagreements) {
    findings.push(
      `run ${runId}: the control store records ${control} ${action} deletion(s), retention.row_audit ${store}; ` +
        `see \`retention audit --run ${runId}\``,
    );
  }
  const history = input.runs
    .filter((run) => input.startedInPeriod.has(run.runId) && !run.dryRun)
    .reduce((sum, run) => sum + (run.report?.deleted ?? 0), 0);
  return {
    audit_deleted: deletedIn(input.periodCounts),
    history_deleted: history,
    runs_checked: checked,
    unreported,
    findings,
  };
}
