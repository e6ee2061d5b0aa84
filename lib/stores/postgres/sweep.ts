import type { Cutoffs, EligibleItem, Hold } from '../../core/types.ts';
import { SqlError } from '../../errors.ts';
import { cutoffFor } from '../../policy/classify.ts';
import type { SqlClient } from '../../sql/client.ts';
import { rowAuditCte } from './rowAudit.ts';
import {
  type Cursor,
  keyParts,
  keysetColumns,
  type RowAuditValues,
  type RowsShape,
  RowsSql,
  type Statement,
  walkLimit,
} from './sql.ts';
import { removeTargets } from './writeSql.ts';

/**
 * The fused batch: the next `limit` eligible, unheld rows in keyset order are deleted, archived
 * and audited in ONE statement, with a keyset cursor so the walk never revisits dead index
 * entries. Eligibility is decided by the same predicate and cutoffs as the scan the engine
 * classifies (per-purpose rules, default, filter, holds), in the statement that deletes, so
 * nothing can change in between (invariant 1, without a separate re-check).
 *
 * Two statements, chosen per batch:
 * - `range` (first choice): find the batch's last row (the limit-th eligible one along the
 *   index), then DELETE the key range up to it with the same predicate. One index range scan
 *   that deletes as it goes, like an unbatched DELETE restricted to a window; rows updated
 *   meanwhile are re-checked against the whole predicate (EvalPlanQual). It waits for rows
 *   another transaction holds, so it runs with a short lock wait (RANGE_LOCK_WAIT_MS).
 *
 * Both look at most `walkLimit` index entries past the cursor (`walk_end`): when eligible rows
 * are few among many kept ones (per-purpose retention with purposes kept for years), a batch
 * ends short at the walk's end instead of walking the whole table in one statement.
 * - `skip_locked`: the issue's recipe (`ctid = ANY(ARRAY(SELECT … LIMIT n FOR UPDATE SKIP
 *   LOCKED))`): rows in use are skipped and left for the next run. Locking every row first
 *   costs a second write per row (measured: the range statement does the batch in ~60 % of the
 *   time), so it is used once the range statement met a row in use: that batch is rolled back
 *   whole and redone this way, and so are the rest of the run's batches.
 *
 * For rows, invariant 2 is met by the audit rows this statement writes in the same transaction
 * (`retention.row_audit`, with the run id when bound): that is the batch's only record, read
 * back by `retention audit`. The engine sweeps in one statement only with `audit: true`.
 * Batches with linked files or explicit children cannot be one statement: use scan + delete.
 */
export type SweepMode = 'range' | 'skip_locked';

export interface SweepQuery {
  cutoffs: Cutoffs;
  holds: Hold[];
  cursor?: Cursor;
  limit: number;
  /**
   * `rows`: every deleted row comes back (for `--list`). `summary`: only count, bytes and
   * position: sending 5,000 rows to the client costs more than deleting them, and
   * `retention.row_audit` already holds each row.
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
  /** Position after the batch (rows skipped as locked are behind it: next run). */
  cursor?: Cursor;
  done: boolean;
  mode: SweepMode;
}

/** How long the range statement waits for a row in use before the batch is redone with SKIP LOCKED. */
export const RANGE_LOCK_WAIT_MS = 100;

/** Rule texts exactly as the engine's classification writes them, per rule, then the default. */
function ruleTexts(cutoffs: Cutoffs): { perRule: string[]; fallback: string | null } {
  const describe = (value: string | null) =>
    cutoffFor(
      { key: '', timestamp: cutoffs.computedAt, attributes: cutoffs.by === undefined ? {} : { [cutoffs.by]: value } },
      cutoffs,
    )?.rule ?? null;
  return { perRule: cutoffs.rules.map((rule) => describe(rule.value)!), fallback: describe(null) };
}

/**
 * Why the rows of a batch went, for its audit row: the run's rule table (rule texts and cutoffs,
 * the default last) once, and each row's index into it when there is more than one rule.
 */
function ruleTable(
  sql: RowsSql,
  cutoffs: Cutoffs,
  purpose: string | undefined,
): { rules: string; cutoffs: string; ruleOf?: string } {
  const texts = ruleTexts(cutoffs);
  const rules = [...texts.perRule, ...(texts.fallback !== null ? [texts.fallback] : [])];
  const instants = [
    ...cutoffs.rules.map((rule) => rule.cutoff),
    ...(cutoffs.fallback ? [cutoffs.fallback.cutoff] : []),
  ];
  const table = { rules: sql.param(rules, 'text[]'), cutoffs: sql.param(instants, 'timestamptz[]') };
  if (rules.length === 1) return table;
  const indexes = cutoffs.rules.map((_, index) => index + 1);
  return {
    ...table,
    ruleOf: sql.perPurpose(cutoffs, purpose, indexes, texts.fallback !== null ? rules.length : null, 'smallint'),
  };
}

/**
 * `deleted` returns what the rest needs from the deleted rows themselves (RETURNING: exactly
 * the rows that went); archive and audit rows and the result are derived from it.
 */
export function sweepStatement(
  shape: RowsShape,
  query: SweepQuery,
  audit: RowAuditValues | undefined,
  mode: SweepMode,
): Statement {
  const sql = new RowsSql(shape);
  const { cutoffs } = query;
  const keyColumns = shape.key.map((_, index) => `key_${index}`);
  const keys = shape.key.map((column, index) => `t.${column} AS key_${index}`);
  const purpose = sql.purpose(cutoffs);
  const returning = [
    `t.${shape.ts} AS ts_order`,
    ...keys,
    ...(purpose ? [`${purpose} AS purpose`] : []),
    ...(shape.size ? [`t.${shape.size}::float8 AS size`] : []),
    ...(shape.archive ? ['t AS row_value'] : []),
  ];
  const after = sql.after(query.cursor);
  const eligible = `${sql.eligible(cutoffs)} AND ${sql.filter()} AND ${sql.notHeld(query.holds)}`;
  const candidates = `FROM ${shape.table} AS t WHERE ${eligible}${after}`;
  const key = sql.keyText('r', keyColumns);
  const position = (alias: string) =>
    `jsonb_build_object('ts', to_jsonb(${alias}.ts_order) #>> '{}', 'key', ${sql.keyText(alias, keyColumns)})`;
  const order = ['r.ts_order', ...keyColumns.map((column) => `r.${column}`)];
  const walk = walkLimit(query.limit);
  const walkEnd = sql.walkEndCte(cutoffs, after, walk);
  let ctes: string[];
  let last: string;
  let more: string;
  if (mode === 'range') {
    // The batch's last row: the limit-th eligible row within the walk, else the walk's end
    // (few eligible rows there: the batch is smaller and the next one starts after it). The
    // first branch stops reading once it has found it; the second runs only when it did not.
    // None when the rest holds fewer than `limit` eligible rows and `walk` entries: the range is
    // then open-ended (`upTo`).
    const walkColumns = ['w.ts_order', ...keyColumns.map((column) => `w.${column}`)].join(', ');
    ctes = [
      walkEnd,
      `bound AS (SELECT * FROM (
         (SELECT ${walkColumns} FROM (SELECT t.${shape.ts} AS ts_order, ${keys.join(', ')}, (${eligible}) IS TRUE AS ok
                                        ${sql.walkRange(cutoffs, after)}
                                       ORDER BY ${keysetColumns(shape)} LIMIT ${sql.param(walk)}) AS w
           WHERE w.ok ORDER BY ${walkColumns} OFFSET ${sql.param(query.limit - 1)} LIMIT 1)
         UNION ALL (SELECT * FROM walk_end)) AS b LIMIT 1)`,
      `deleted AS (DELETE ${candidates} AND ${sql.upTo('bound')} RETURNING ${returning.join(', ')})`,
    ];
    last = `(SELECT ${position('b')} FROM bound AS b)`;
    more = 'EXISTS (SELECT 1 FROM bound)';
  } else {
    ctes = [
      walkEnd,
      `target AS (SELECT t.ctid AS row_ref${shape.partitioned ? `, ${keys.join(', ')}` : ''} ${candidates} AND ${sql.upTo('walk_end')}
        ORDER BY ${keysetColumns(shape)} LIMIT ${sql.param(query.limit)} FOR UPDATE OF t SKIP LOCKED)`,
      removeTargets(shape, 'deleted', returning),
    ];
    // A full batch ends at its last row; a short one at the walk's end, if the walk stopped short.
    const limit = sql.param(query.limit);
    const lastDeleted = `(SELECT ${position('r')} FROM (SELECT * FROM deleted AS r ORDER BY ${order.map((column) => `${column} DESC`).join(', ')} LIMIT 1) AS r)`;
    last = `CASE WHEN count(*) = ${limit} THEN ${lastDeleted} ELSE COALESCE((SELECT ${position('b')} FROM walk_end AS b), ${lastDeleted}) END`;
    more = `count(*) = ${limit} OR EXISTS (SELECT 1 FROM walk_end)`;
  }
  if (shape.archive) {
    ctes.push(`archived AS (INSERT INTO ${shape.archive.table} (${shape.columns.join(', ')}) OVERRIDING SYSTEM VALUE
      SELECT ${shape.columns.map((column) => `(r.row_value).${column}`).join(', ')} FROM deleted AS r)`);
  }
  const rowPurpose = purpose ? 'r.purpose' : undefined;
  if (audit) {
    ctes.push(
      rowAuditCte(
        sql,
        audit,
        { action: 'delete', status: 'deleted', archivedTo: shape.archive?.name ?? null },
        {
          from: 'deleted AS r',
          key,
          itemTimestamp: sql.instant('r.ts_order'),
          why: ruleTable(sql, cutoffs, rowPurpose),
        },
      ),
    );
  }
  const summary = `SELECT count(*)::int AS deleted, ${shape.size ? 'COALESCE(sum(r.size), 0)' : '0'}::float8 AS bytes, ${last} AS last, ${more} AS more FROM deleted AS r`;
  if (query.detail === 'summary') return sql.statement(`WITH ${ctes.join(',\n')} ${summary}`);
  const texts = ruleTexts(cutoffs);
  const rule = sql.perPurpose(cutoffs, rowPurpose, texts.perRule, texts.fallback, 'text');
  return sql.statement(
    `WITH ${ctes.join(',\n')}, outcome AS (${summary})
     SELECT ${key} AS key, to_jsonb(${sql.instant('r.ts_order')}) #>> '{}' AS ts, ${sql.rowCutoff(cutoffs, rowPurpose)} AS cutoff, ${rule} AS rule,
            ${rowPurpose ?? 'NULL::text'} AS purpose${shape.size ? ', r.size' : ''}, o.deleted, o.bytes, o.last, o.more
       FROM outcome AS o LEFT JOIN deleted AS r ON TRUE ORDER BY ${order.join(', ')}`,
  );
}

interface SweepRow {
  deleted: number;
  bytes: number;
  last: { ts: string; key: string } | null;
  more: boolean;
  /** With `detail: 'rows'`: one row per deleted row (a single row of NULLs when none). */
  key?: string | null;
  ts?: string;
  cutoff?: Date;
  rule?: string;
  purpose?: string | null;
  size?: number | null;
}

/** SQLSTATEs of a statement that met a row another transaction holds (lock_timeout, deadlock). */
const ROW_IN_USE = new Set(['55P03', '40P01']);

/**
 * Runs one fused batch in its own transaction with the statement and lock timeouts: by key
 * range unless `mode` says rows in use were met before; a range batch that meets one is rolled
 * back whole and redone with SKIP LOCKED. The result says which statement did the batch.
 */
export async function sweepRows(
  sql: SqlClient,
  shape: RowsShape,
  query: SweepQuery,
  options: { statementTimeoutMs: number; lockTimeoutMs: number; audit: RowAuditValues | undefined; mode: SweepMode },
): Promise<SweepResult> {
  if (options.mode === 'range') {
    try {
      return await sweepOnce(
        sql,
        shape,
        query,
        options,
        'range',
        Math.max(1, Math.min(options.lockTimeoutMs, RANGE_LOCK_WAIT_MS)),
      );
    } catch (error) {
      if (!(error instanceof SqlError && ROW_IN_USE.has(String(error.context.sqlState)))) throw error;
    }
  }
  return sweepOnce(sql, shape, query, options, 'skip_locked', options.lockTimeoutMs);
}

async function sweepOnce(
  sql: SqlClient,
  shape: RowsShape,
  query: SweepQuery,
  options: { statementTimeoutMs: number; audit: RowAuditValues | undefined },
  mode: SweepMode,
  lockTimeoutMs: number,
): Promise<SweepResult> {
  const statement = sweepStatement(shape, query, options.audit, mode);
  const rows = await sql.transaction(async (tx) => {
    await tx.query(`SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)`, [
      String(options.statementTimeoutMs),
      String(lockTimeoutMs),
    ]);
    return tx.query<SweepRow>(statement.text, statement.params);
  });
  const outcome = rows[0]!;
  const by = query.cutoffs.by;
  const detail: SweptRow[] | undefined =
    query.detail === 'rows'
      ? rows
          .filter((row) => row.key !== null && row.key !== undefined)
          .map((row) => ({
            key: row.key!,
            timestamp: new Date(row.ts!),
            cutoff: row.cutoff!,
            rule: row.rule!,
            ...(by !== undefined ? { attributes: { [by]: row.purpose ?? null } } : {}),
            ...(row.size === undefined || row.size === null ? {} : { size: row.size, bytes: row.size }),
          }))
      : undefined;
  const cursor = outcome.last ? { ts: outcome.last.ts, key: keyParts(shape, outcome.last.key)! } : query.cursor;
  return {
    deleted: outcome.deleted,
    bytes: outcome.bytes,
    ...(detail ? { rows: detail } : {}),
    ...(cursor ? { cursor } : {}),
    done: !outcome.more,
    mode,
  };
}
