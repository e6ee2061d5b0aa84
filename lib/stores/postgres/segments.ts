import type { Cutoffs } from '../../core/types.ts';
import type { SqlClient } from '../../sql/client.ts';
import type { Cursor, RowAuditValues, RowsShape } from './sql.ts';
import { type SweepMode, type SweepQuery, type SweepResult, sweepRows } from './sweep.ts';

/**
 * Per-purpose retention, one purpose at a time. A documents table is mostly rows kept for years
 * (Legal 7y, Medical 10y) with a few due after days: walking the timestamp index reads every row
 * older than the shortest retention on every run. With an index on (purpose, timestamp, key),
 * each purpose is a segment of its own — the rows of one purpose value, older than that
 * purpose's cutoff — swept and counted as one index range, so a run reads what is due.
 *
 * Segments: one per rule value; with a default, one per other value present (found with one
 * index probe per distinct value) and one for NULL. A segment is the rows store's shape
 * restricted to one purpose value (part of its scope and of every index walk), with the run's
 * cutoffs restricted to that purpose's rule (or to the default): the same statements,
 * predicates and audit texts as the timestamp walk.
 */
export interface Segment {
  purpose: string | null;
  shape: RowsShape;
  cutoffs: Cutoffs;
}

/** Past this many distinct values the column is no purpose code: sweep by timestamp instead. */
const MAX_SEGMENTS = 1_000;

/** Segments in sweep order (by purpose, NULL last); undefined when the table has no (purpose, timestamp) index. */
export async function purposeSegments(
  sql: SqlClient,
  shape: RowsShape,
  cutoffs: Cutoffs,
): Promise<Segment[] | undefined> {
  const by = shape.by;
  if (!by || !shape.bySegments || cutoffs.by === undefined) return undefined;
  const segment = (purpose: string | null, restricted: Omit<Cutoffs, 'computedAt' | 'by'>): Segment => ({
    purpose,
    shape: { ...shape, bySegments: false, segment: { value: purpose } },
    cutoffs: { computedAt: cutoffs.computedAt, by: cutoffs.by, ...restricted },
  });
  const segments = cutoffs.rules.map((rule) => segment(rule.value, { rules: [rule] }));
  const { fallback } = cutoffs;
  if (fallback) {
    const ruled = new Set(cutoffs.rules.map((rule) => rule.value));
    const present = await distinctValues(sql, shape.table, by.column);
    if (present === undefined) return undefined;
    for (const value of present) if (!ruled.has(value)) segments.push(segment(value, { rules: [], fallback }));
    segments.push(segment(null, { rules: [], fallback }));
  }
  return segments.sort((a, b) => comparePurpose(a.purpose, b.purpose));
}

/** A loose index scan: one probe per distinct value, at most MAX_SEGMENTS + 1. */
async function distinctValues(sql: SqlClient, table: string, column: string): Promise<string[] | undefined> {
  const rows = await sql.query<{ value: string }>(
    `WITH RECURSIVE present (value, n) AS (
       (SELECT t.${column}, 1 FROM ${table} AS t WHERE t.${column} IS NOT NULL ORDER BY t.${column} LIMIT 1)
       UNION ALL
       SELECT (SELECT t.${column} FROM ${table} AS t WHERE t.${column} > p.value ORDER BY t.${column} LIMIT 1), p.n + 1
         FROM present AS p WHERE p.value IS NOT NULL AND p.n <= $1)
     SELECT value::text AS value FROM present WHERE value IS NOT NULL`,
    [MAX_SEGMENTS],
  );
  return rows.length > MAX_SEGMENTS ? undefined : rows.map((row) => row.value);
}

/** NULL sorts last. */
function comparePurpose(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

/** Position in a segmented sweep: the segment's purpose and, within it, the keyset position. */
export interface SegmentCursor {
  purpose: string | null;
  position?: Cursor;
}

/**
 * One call of a segmented sweep: the next statement of the current segment (one statement per
 * call, so the engine checks budget and lease between any two, empty segments included).
 */
export async function sweepSegments(
  sql: SqlClient,
  segments: Segment[],
  query: Omit<SweepQuery, 'cutoffs' | 'cursor'> & { cursor?: SegmentCursor },
  options: { statementTimeoutMs: number; lockTimeoutMs: number; audit: RowAuditValues | undefined; mode: SweepMode },
): Promise<Omit<SweepResult, 'cursor'> & { cursor?: SegmentCursor }> {
  const { cursor, ...rest } = query;
  const index = cursor ? segments.findIndex((segment) => comparePurpose(segment.purpose, cursor.purpose) >= 0) : 0;
  const segment = segments[index];
  if (!segment)
    return { deleted: 0, bytes: 0, ...(rest.detail === 'rows' ? { rows: [] } : {}), done: true, mode: options.mode };
  const position = segment.purpose === cursor?.purpose ? cursor.position : undefined;
  const { cursor: after, ...result } = await sweepRows(
    sql,
    segment.shape,
    { ...rest, cutoffs: segment.cutoffs, ...(position ? { cursor: position } : {}) },
    options,
  );
  if (!result.done) return { ...result, cursor: { purpose: segment.purpose, ...(after ? { position: after } : {}) } };
  const next = segments[index + 1];
  return { ...result, ...(next ? { cursor: { purpose: next.purpose } } : {}), done: !next };
}
