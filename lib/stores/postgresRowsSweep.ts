import { cutoffFor } from '../engine/classify.ts';
import type { Cutoffs, EligibleItem, Hold } from '../engine/types.ts';
import type { SqlClient } from '../sql/client.ts';
import { rowAuditCte } from './postgresRowsAudit.ts';
import { keyParts, keysetColumns, RowsSql, type Cursor, type RowAuditValues, type RowsShape, type Statement } from './postgresRowsSql.ts';
import { removeTargets } from './postgresRowsWriteSql.ts';

/**
 * The fused batch: select the next `limit` eligible, unheld rows in keyset order, lock them
 * (SKIP LOCKED), delete them, archive and audit them — ONE statement, the shape the issue asks
 * for (`ctid = ANY(ARRAY(SELECT … ORDER BY … LIMIT n))`, with a keyset cursor so the walk never
 * revisits dead index entries). Eligibility is decided by the same predicate and cutoffs as the
 * scan the engine classifies (per-purpose rules, default, filter, holds), in the statement that
 * deletes, so nothing can change in between (invariant 1, without a separate re-check).
 *
 * For rows, invariant 2 is met by the audit rows this statement writes in the same transaction
 * (`retention.row_audit`, with the run id when bound): that is the batch's only record, read
 * back by `retention audit`. Without `audit: true` the engine asks for the rows and records them
 * in the control store after the commit (a crash in between loses records: keep audit on).
 * Batches with linked files or explicit children cannot be one statement: use scan + delete.
 */
export interface SweepQuery {
  cutoffs: Cutoffs;
  holds: Hold[];
  cursor?: Cursor;
  limit: number;
  /**
   * `rows`: every deleted row comes back (for `--list`, or a control-store record per row when
   * audit is off). `summary`: only count, bytes and position: sending 5,000 rows to the client
   * costs more than deleting them, and `retention.row_audit` already holds each row.
   */
  detail: 'rows' | 'summary';
}

export interface SweptRow extends EligibleItem {
  /** From the `size` column, when configured. */
  bytes?: number;
}

export interface SweepResult {
  deleted: number;
  bytes: number;
  /** With `detail: 'rows'`. */
  rows?: SweptRow[];
  /** Position after the last row deleted (rows skipped as locked are behind it: next run). */
  cursor?: Cursor;
  done: boolean;
}

/** Rule texts exactly as the engine's classification writes them, per rule, then the default. */
function ruleTexts(cutoffs: Cutoffs): { perRule: string[]; fallback: string | null } {
  const describe = (value: string | null) => cutoffFor({ key: '', timestamp: cutoffs.computedAt, attributes: cutoffs.by === undefined ? {} : { [cutoffs.by]: value } }, cutoffs)?.rule ?? null;
  return { perRule: cutoffs.rules.map((rule) => describe(rule.value)!), fallback: describe(null) };
}

/**
 * `target` carries only what locating and deleting need (ctid; the key on a partitioned table);
 * `deleted` takes the rest from the deleted rows themselves (RETURNING: exactly the rows that
 * went), and the texts for audit rows and results are derived from that.
 */
export function sweepStatement(shape: RowsShape, query: SweepQuery, audit: RowAuditValues | undefined): Statement {
  const sql = new RowsSql(shape);
  const { cutoffs } = query;
  const after = query.cursor ? ` AND (${keysetColumns(shape)}) > (${[query.cursor.ts, ...query.cursor.key].map((value) => sql.param(value)).join(', ')})` : '';
  const keyColumns = shape.key.map((_, index) => `key_${index}`);
  const keys = shape.key.map((column, index) => `t.${column} AS key_${index}`);
  const purpose = sql.purpose(cutoffs);
  const ctes = [
    `target AS (SELECT t.ctid AS row_ref${shape.partitioned ? `, ${keys.join(', ')}` : ''}
       FROM ${shape.table} AS t
      WHERE ${sql.eligible(cutoffs)} AND ${sql.filter()} AND ${sql.notHeld(query.holds)}${after}
      ORDER BY ${keysetColumns(shape)} LIMIT ${sql.param(query.limit)}
      FOR UPDATE OF t SKIP LOCKED)`,
    removeTargets(shape, 'deleted', [
      `t.${shape.ts} AS ts_order`,
      ...keys,
      ...(purpose ? [`${purpose} AS purpose`] : []),
      ...(shape.size ? [`t.${shape.size}::float8 AS size`] : []),
      ...(shape.archive ? ['t AS row_value'] : []),
    ]),
  ];
  const rowPurpose = purpose ? 'r.purpose' : undefined;
  // Built only where used: a parameter no expression refers to has no type PostgreSQL can infer.
  const perRow = () => {
    const texts = ruleTexts(cutoffs);
    return { time: sql.instant('r.ts_order'), cutoff: sql.rowCutoff(cutoffs, rowPurpose), rule: sql.perPurpose(cutoffs, rowPurpose, texts.perRule, texts.fallback, 'text') };
  };
  const key = sql.keyText('r', keyColumns);
  if (shape.archive) {
    ctes.push(`archived AS (INSERT INTO ${shape.archive.table} (${shape.columns.join(', ')}) OVERRIDING SYSTEM VALUE
      SELECT ${shape.columns.map((column) => `(r.row_value).${column}`).join(', ')} FROM deleted AS r)`);
  }
  if (audit) {
    const row = perRow();
    ctes.push(rowAuditCte(sql, audit, { action: 'delete', status: 'deleted', archivedTo: shape.archive?.name ?? null }, { from: 'deleted AS r', key, itemTimestamp: row.time, rule: row.rule, cutoff: row.cutoff }));
  }
  const order = ['r.ts_order', ...keyColumns.map((column) => `r.${column}`)];
  // The texts of the last row only: ordering by the raw columns first keeps them off the other 4,999.
  const last = `(SELECT jsonb_build_object('ts', to_jsonb(r.ts_order) #>> '{}', 'key', ${key}) FROM (SELECT * FROM deleted AS r ORDER BY ${order.map((column) => `${column} DESC`).join(', ')} LIMIT 1) AS r)`;
  const detailed = (row: ReturnType<typeof perRow>) =>
    `SELECT ${key} AS key, to_jsonb(${row.time}) #>> '{}' AS ts, ${row.cutoff} AS cutoff, ${row.rule} AS rule, ${rowPurpose ?? 'NULL::text'} AS purpose${shape.size ? ', r.size' : ''}, ${last} AS last
       FROM deleted AS r ORDER BY ${order.join(', ')}`;
  const result =
    query.detail === 'summary'
      ? `SELECT count(*)::int AS deleted, ${shape.size ? 'COALESCE(sum(r.size), 0)' : '0'}::float8 AS bytes, ${last} AS last FROM deleted AS r`
      : detailed(perRow());
  return sql.statement(`WITH ${ctes.join(',\n')} ${result}`);
}

interface SummaryRow {
  deleted: number;
  bytes: number;
  last: { ts: string; key: string } | null;
}

interface DetailRow {
  key: string;
  ts: string;
  cutoff: Date;
  rule: string;
  purpose: string | null;
  size?: number | null;
  last: { ts: string; key: string };
}

/** Runs one fused batch in its own transaction with the statement and lock timeouts. */
export async function sweepRows(sql: SqlClient, shape: RowsShape, query: SweepQuery, options: { statementTimeoutMs: number; lockTimeoutMs: number; audit: RowAuditValues | undefined }): Promise<SweepResult> {
  const statement = sweepStatement(shape, query, options.audit);
  const rows = await sql.transaction(async (tx) => {
    await tx.query(`SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)`, [String(options.statementTimeoutMs), String(options.lockTimeoutMs)]);
    return tx.query<SummaryRow & DetailRow>(statement.text, statement.params);
  });
  const by = query.cutoffs.by;
  const detail: SweptRow[] | undefined =
    query.detail === 'rows'
      ? rows.map((row) => ({
          key: row.key,
          timestamp: new Date(row.ts),
          cutoff: row.cutoff,
          rule: row.rule,
          ...(by !== undefined ? { attributes: { [by]: row.purpose } } : {}),
          ...(row.size === undefined || row.size === null ? {} : { size: row.size, bytes: row.size }),
        }))
      : undefined;
  const deleted = detail ? detail.length : (rows[0]?.deleted ?? 0);
  const bytes = detail ? detail.reduce((sum, row) => sum + (row.bytes ?? 0), 0) : (rows[0]?.bytes ?? 0);
  const last = rows.at(-1)?.last ?? null;
  const cursor = last ? { ts: last.ts, key: keyParts(shape, last.key)! } : query.cursor;
  return { deleted, bytes, ...(detail ? { rows: detail } : {}), ...(cursor ? { cursor } : {}), done: deleted < query.limit };
}
