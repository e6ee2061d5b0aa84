import type { AuditQuery, AuditRecord } from '../../core/control.ts';
import type { SqlClient } from '../../sql/client.ts';
import { chainedInsertCtes, ensureChainHead, ROW_AUDIT_CHAIN_DDL } from './rowAuditChain.ts';
import { ROW_AUDIT_COUNTS_INDEX } from './rowAuditCounts.ts';
import type { RowAuditValues, RowsSql } from './sql.ts';

/**
 * Audit of row deletions inside the target database (`retention.row_audit`).
 *
 * Guarantees (copied to docs/architecture.md):
 * - With `audit: true` (the default), the statement that deletes rows also inserts their audit
 *   record (a data-modifying CTE of the same statement: one `row_audit` row per batch listing
 *   every row), so a row deletion commits if and only if its audit record commits, with the
 *   same transaction id (`txid`). This holds when the control store is unreachable after the
 *   commit, when the control store is another database, and when the deleting transaction rolls
 *   back (then neither exists). Partition drops and restores are audited the same way.
 * - Batches the engine deletes in one statement (rows without linked files or children) are
 *   recorded HERE ONLY: copying 5,000 records per batch into the control store cost more than
 *   the deletion itself. `retention audit` and `retention restore` read this trail through
 *   `selectRowAudit` and merge it with the control store's (the run's report there has the counts).
 * - Batches deleted by scan + delete (linked files, children) also get the engine's write-ahead
 *   `pending` intent per row in the control store BEFORE the delete, resolved after; a crash in
 *   between leaves `pending` intents that the next run resolves with `present()`. Readers see one
 *   record per (run, action, key): the control store's, which carries errors and outcomes.
 * - What the in-database audit cannot cover: a linked file deleted before its row's
 *   transaction rolls back. The control-store intent of that row is then resolved `failed`
 *   with the error, the row stays, and the next run finds the file `missing` (done) and deletes
 *   the row; the file deletion itself is recorded by the control-store intent only.
 * - Rows removed by `ON DELETE CASCADE` foreign keys are not audited row by row (PostgreSQL
 *   removes them inside the same statement); their parent's audit row covers them.
 */

/**
 * One audit row per batch (statement), the per-row values in aligned arrays: writing 5,000
 * rows of audit costs more than deleting 5,000 rows, and one row with arrays costs a fraction
 * of it (measured: ~25-40 ms vs ~6 ms per 5,000 on the bench machine). Why each row went is
 * either one rule and cutoff per row (`rules[i]`, `cutoffs[i]`), or, for a batch swept under
 * the run's rules, the rule table once (`rules`, `cutoffs`) and each row's index into it
 * (`rule_of[i]`; NULL when the table has one rule): 5,000 copies of the same rule text and
 * cutoff were a third of the audit's cost. The key and timestamp arrays are stored
 * uncompressed (`STORAGE EXTERNAL`): compressing them on the deleting path cost more than the
 * bytes saved. `retention.row_audit_entries` unnests a batch back to one row per deleted row.
 */
const ENTRY_RULE_INDEX =
  'COALESCE(a.rule_of[entry.ord], CASE WHEN cardinality(a.rules) = a.row_count THEN entry.ord ELSE 1 END)';
const ROW_AUDIT_DDL = [
  'CREATE SCHEMA IF NOT EXISTS retention',
  `CREATE TABLE IF NOT EXISTS retention.row_audit (
    id bigserial PRIMARY KEY,
    run_id text,
    policy text NOT NULL,
    store text NOT NULL,
    actor text NOT NULL,
    trigger text,
    action text NOT NULL,
    status text NOT NULL,
    row_count bigint NOT NULL,
    keys text[] NOT NULL,
    item_timestamps timestamptz[] NOT NULL,
    rules text[] NOT NULL,
    cutoffs timestamptz[] NOT NULL,
    archived_to text,
    linked_files text[],
    linked_file_statuses text[],
    txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  'ALTER TABLE retention.row_audit ADD COLUMN IF NOT EXISTS rule_of smallint[]',
  'ALTER TABLE retention.row_audit ALTER COLUMN keys SET STORAGE EXTERNAL, ALTER COLUMN item_timestamps SET STORAGE EXTERNAL',
  'CREATE INDEX IF NOT EXISTS row_audit_run ON retention.row_audit (run_id)',
  ROW_AUDIT_COUNTS_INDEX,
  `CREATE OR REPLACE VIEW retention.row_audit_entries AS
    SELECT a.id AS batch_id, a.run_id, a.policy, a.store, a.actor, a.trigger, a.action, a.status, a.archived_to, a.txid, a.created_at,
           entry.key, entry.item_timestamp, a.rules[${ENTRY_RULE_INDEX}] AS rule, a.cutoffs[${ENTRY_RULE_INDEX}] AS cutoff,
           entry.linked_file, entry.linked_file_status
      FROM retention.row_audit AS a
     CROSS JOIN LATERAL unnest(a.keys, a.item_timestamps, COALESCE(a.linked_files, '{}'), COALESCE(a.linked_file_statuses, '{}'))
           WITH ORDINALITY AS entry (key, item_timestamp, linked_file, linked_file_status, ord)`,
];

/** Distinct from the control schema's migration lock: the two may share a database. */
const ROW_AUDIT_LOCK_KEY = 0x7265_7472; // "retr"

/**
 * Idempotent and safe to run concurrently (`IF NOT EXISTS` races are serialised by the lock);
 * also makes the policy's chain head (rowAuditChain.ts).
 */
export async function ensureRowAuditTable(sql: SqlClient, policy: string): Promise<void> {
  await sql.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [ROW_AUDIT_LOCK_KEY]);
    for (const statement of [...ROW_AUDIT_DDL, ...ROW_AUDIT_CHAIN_DDL]) await tx.query(statement);
    await ensureChainHead(tx, policy);
  });
}

export type RowAuditAction = 'delete' | 'restore' | 'partition_drop';

/** Per-row SQL expressions over the rows (`from`) the audit row is aggregated from. */
export interface RowAuditSource {
  from: string;
  key: string;
  itemTimestamp: string;
  /**
   * Why: the row's rule text and cutoff, or the rule table of the batch (SQL arrays) with each
   * row's 1-based index into it (`ruleOf`; absent when the table has one rule).
   */
  why: { rule: string; cutoff: string } | { rules: string; cutoffs: string; ruleOf?: string };
  /** Default: the number of rows aggregated. */
  rowCount?: string;
  linkedFile?: string;
  linkedFileStatus?: string;
}

/** The columns of a batch as `audit_batch` holds them, in the order its SELECT lists them. */
const BATCH_COLUMNS = [
  'id',
  'run_id',
  'policy',
  'store',
  'actor',
  'trigger',
  'action',
  'status',
  'row_count',
  'keys',
  'item_timestamps',
  'rules',
  'cutoffs',
  'rule_of',
  'archived_to',
  'linked_files',
  'linked_file_statuses',
  'txid',
  'created_at',
];

/**
 * Data-modifying CTEs for the statement that changes the rows: one audit row for all of them
 * (none when there are none), chained to the policy's previous batch (rowAuditChain.ts). The
 * aggregates of one query level see the rows in the same order, so the arrays stay aligned.
 * The id, transaction id and time are taken here, not by column defaults, because the batch's
 * hash covers them.
 */
export function rowAuditCte(
  sql: RowsSql,
  values: RowAuditValues,
  entry: { action: RowAuditAction; status: string; archivedTo: string | null },
  source: RowAuditSource,
): string {
  const actor = `COALESCE(${sql.param(values.actor, 'text')}, 'db:' || current_user)`;
  const { why } = source;
  const [rules, cutoffs, ruleOf] =
    'rule' in why
      ? [`array_agg(${why.rule})`, `array_agg(${why.cutoff})`, 'NULL::smallint[]']
      : [why.rules, why.cutoffs, why.ruleOf ? `array_agg(${why.ruleOf})` : 'NULL::smallint[]'];
  const [files, fileStatuses] = source.linkedFile
    ? [`array_agg(${source.linkedFile})`, `array_agg(${source.linkedFileStatus ?? 'NULL::text'})`]
    : ['NULL::text[]', 'NULL::text[]'];
  const batch = `audit_batch AS (SELECT nextval('retention.row_audit_id_seq') AS id, ${sql.param(values.runId, 'text')} AS run_id,
           ${sql.param(values.policy, 'text')} AS policy, ${sql.param(values.store, 'text')} AS store, ${actor} AS actor,
           ${sql.param(values.trigger, 'text')} AS trigger, ${sql.param(entry.action, 'text')} AS action,
           ${sql.param(entry.status, 'text')} AS status, ${source.rowCount ?? 'count(*)'} AS row_count,
           array_agg(${source.key}) AS keys, array_agg(${source.itemTimestamp}) AS item_timestamps,
           ${rules} AS rules, ${cutoffs} AS cutoffs, ${ruleOf} AS rule_of, ${sql.param(entry.archivedTo, 'text')} AS archived_to,
           ${files} AS linked_files, ${fileStatuses} AS linked_file_statuses,
           pg_current_xact_id()::text::bigint AS txid, now() AS created_at
      FROM ${source.from} HAVING count(*) > 0)`;
  return [batch, ...chainedInsertCtes(BATCH_COLUMNS)].join(',\n');
}

interface RowAuditEntry {
  batch_id: string;
  run_id: string | null;
  policy: string;
  store: string;
  actor: string;
  trigger: AuditRecord['trigger'] | null;
  action: AuditRecord['action'];
  created_at: Date;
  key: string;
  item_timestamp: Date;
  rule: string;
  cutoff: Date;
  linked_file: string | null;
}

/** A row_audit entry's status, as records report it: written only for what happened. */
const ENTRY_STATUS = `CASE WHEN a.action = 'restore' THEN 'restored' ELSE 'deleted' END`;

/**
 * One policy's entries of `retention.row_audit`, newest first, as audit records (`source` names
 * the batch). A key filter tests the arrays before unnesting, so only batches holding it expand;
 * it matches a row's key or its linked file's (invariant 9: the key an operator sees).
 */
export async function selectRowAudit(sql: SqlClient, policy: string, query: AuditQuery): Promise<AuditRecord[]> {
  const rows = await sql.query<RowAuditEntry>(
    `SELECT a.id AS batch_id, a.run_id, a.policy, a.store, a.actor, a.trigger, a.action, a.created_at,
            entry.key, entry.item_timestamp, a.rules[${ENTRY_RULE_INDEX}] AS rule, a.cutoffs[${ENTRY_RULE_INDEX}] AS cutoff,
            entry.linked_file
       FROM retention.row_audit AS a
      CROSS JOIN LATERAL unnest(a.keys, a.item_timestamps, COALESCE(a.linked_files, '{}'))
            WITH ORDINALITY AS entry (key, item_timestamp, linked_file, ord)
      WHERE a.policy = $1 AND ($2::text IS NULL OR a.run_id = $2)
        AND ($3::text IS NULL OR ($3 = ANY(a.keys) AND entry.key = $3) OR ($3 = ANY(a.linked_files) AND entry.linked_file = $3))
        AND ($5::text IS NULL OR a.action = $5) AND ($6::text IS NULL OR ${ENTRY_STATUS} = $6)
        AND ($7::timestamptz IS NULL OR a.created_at >= $7) AND ($8::timestamptz IS NULL OR a.created_at < $8)
      ORDER BY a.id DESC, entry.item_timestamp DESC, entry.key DESC LIMIT $4`,
    [
      policy,
      query.runId ?? null,
      query.key ?? null,
      query.limit,
      query.action ?? null,
      query.status ?? null,
      query.since ?? null,
      query.until ?? null,
    ],
  );
  return rows.map((row) => ({
    id: Number(row.batch_id),
    runId: row.run_id ?? '',
    policy: row.policy,
    store: row.store,
    key: row.key,
    itemTimestamp: row.item_timestamp,
    rule: row.rule,
    cutoff: row.cutoff,
    actor: row.actor,
    trigger: row.trigger ?? 'manual',
    action: row.action,
    // Written only for what happened: deletions (rows and whole partitions) and restores.
    status: row.action === 'restore' ? 'restored' : 'deleted',
    createdAt: row.created_at,
    resolvedAt: row.created_at,
    error: null,
    source: `retention.row_audit#${row.batch_id}`,
    ...(row.linked_file === null ? {} : { linkedKey: row.linked_file }),
  }));
}

/**
 * What one run recorded of the linked files of `keys` when it deleted their rows (`deleted`,
 * or `missing`: already gone, so the run deleted no file), by key. Empty without `audit: true`.
 */
export async function linkedFileStatuses(
  sql: SqlClient,
  policy: string,
  runId: string,
  keys: string[],
): Promise<Map<string, string | null>> {
  const rows = await sql.query<{ key: string; linked_file_status: string | null }>(
    `SELECT key, linked_file_status FROM retention.row_audit_entries WHERE policy = $1 AND run_id = $2 AND action = 'delete' AND key = ANY($3::text[])`,
    [policy, runId, keys],
  );
  return new Map(rows.map((row) => [row.key, row.linked_file_status]));
}
