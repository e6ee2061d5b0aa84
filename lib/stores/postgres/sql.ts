import type { Cutoffs, Hold } from '../../core/types.ts';
import { latestCutoff } from '../../policy/plan.ts';

/**
 * Pure SQL builders of the rows store: shape + values in, `{ text, params }` out, no I/O.
 * Every identifier in a RowsShape was validated against the catalog and quoted by
 * `identifiers.ts` when the shape was built; every value travels as a bound parameter.
 * Parameter types are either cast to fixed types named here (`timestamptz[]`, `text[]`) or left
 * for PostgreSQL to infer from the column they are compared with (`t."id" = ANY($3)`), which is
 * how keys and filter values reach the column's own type without ever naming a type from config.
 */
export type FilterOp = '=' | '<>' | '<' | '<=' | '>' | '>=' | 'in' | 'is_null' | 'not_null';
export type FilterScalar = string | number | boolean;
export interface RowFilter {
  column: string;
  op: FilterOp;
  value?: FilterScalar | FilterScalar[];
}

export interface RowsShape {
  /** `"schema"."table"`, schema resolved from the catalog. */
  table: string;
  /** Quoted timestamp column. */
  ts: string;
  /** `timestamptz`; false: `timestamp without time zone`, read in `timeZone`. */
  zoned: boolean;
  timeZone: string;
  /** Quoted key columns; a unique index covers them. */
  key: string[];
  /** Per key column: timestamptz (its text is written in UTC, whatever the session's TimeZone). */
  zonedKey: boolean[];
  /** Quoted per-purpose column and its name as configured (the item attribute name). */
  by?: { column: string; name: string };
  /** An index on (by, timestamp, …) exists: sweeps and census go one purpose at a time (postgresRowsSegments.ts). */
  bySegments?: boolean;
  /** The one purpose value (or NULL) a segmented sweep's statements are restricted to: part of the scope and of the walk. */
  segment?: { value: string | null };
  filter: RowFilter[];
  partitioned: boolean;
  blob?: string;
  /** Quoted column holding the row's size in bytes (reported as Item.size and bytes freed). */
  size?: string;
  children: Array<{ table: string; column: string }>;
  /** Quoted archive table and its name for audit rows; same columns as the table (checked at open). */
  archive?: { table: string; name: string };
  /** Quoted columns a row copy carries (not generated): archive and restore insert these. */
  columns: string[];
  audit: boolean;
}

export interface Statement {
  text: string;
  params: unknown[];
}

/** Casts the builders may put on parameters: fixed type names only, never text from config. */
type ParamCast =
  | 'text'
  | 'text[]'
  | 'timestamptz'
  | 'timestamptz[]'
  | 'smallint'
  | 'smallint[]'
  | 'bigint'
  | 'bigint[]'
  | 'json';

const COMPARISON: Record<Exclude<FilterOp, 'in' | 'is_null' | 'not_null'>, string> = {
  '=': '=',
  '<>': '<>',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
};

/** Keys of one batch, parsed: `columns[c][i]` is the text of key column `c` of item `i`. */
export interface KeyBatch {
  keys: string[];
  columns: string[][];
}

/** Per-item values a deletion re-checks in SQL (invariant 1): the item's cutoff and scanned purpose. */
export interface DeleteBatch extends KeyBatch {
  /** ISO instants. */
  cutoffs: string[];
  purposes: Array<string | null>;
  rules: string[];
}

/** Who deletes, for `retention.row_audit`: written by the deleting statement itself. */
export interface RowAuditValues {
  policy: string;
  store: string;
  runId: string | null;
  actor: string | null;
  trigger: string | null;
}

/** One statement under construction: numbered parameters and the shape's SQL fragments. */
export class RowsSql {
  private readonly values: unknown[] = [];
  private zone: string | undefined;

  constructor(readonly shape: RowsShape) {}

  param(value: unknown, cast?: ParamCast): string {
    this.values.push(value);
    return `$${this.values.length}${cast ? `::${cast}` : ''}`;
  }

  statement(text: string): Statement {
    return { text, params: [...this.values] };
  }

  /** A timestamptz expression as a value of the column's own type, so the index can use it. */
  columnTime(instant: string): string {
    return this.inZone(instant);
  }

  /** A value of the column's type (or a `timestamp` literal) as timestamptz. */
  instant(columnValue: string): string {
    return this.inZone(columnValue);
  }

  /** The row's timestamp as timestamptz. */
  rowTime(): string {
    return this.instant(`t.${this.shape.ts}`);
  }

  /** `AT TIME ZONE` converts both ways: timestamptz → local timestamp, timestamp → timestamptz. */
  private inZone(expression: string): string {
    if (this.shape.zoned) return expression;
    this.zone ??= this.param(this.shape.timeZone, 'text');
    return `(${expression} AT TIME ZONE ${this.zone})`;
  }

  /** `t.ts < cutoff` where cutoff is a timestamptz expression; infinities are never eligible. */
  olderThan(instant: string): string {
    return `(t.${this.shape.ts} < ${this.columnTime(instant)} AND isfinite(t.${this.shape.ts}))`;
  }

  /**
   * The cutoff that applies to row `t`, as timestamptz: the rule for its purpose, else the
   * default; NULL (never eligible) when neither exists, exactly as `classify.cutoffFor`.
   */
  rowCutoff(cutoffs: Cutoffs, purpose = this.purpose(cutoffs)): string {
    return this.perPurpose(
      cutoffs,
      purpose,
      cutoffs.rules.map((rule) => rule.cutoff),
      cutoffs.fallback?.cutoff ?? null,
      'timestamptz',
    );
  }

  /** The row's purpose as text (`t.by::text`) when these cutoffs are per purpose. */
  purpose(cutoffs: Cutoffs): string | undefined {
    const by = this.byColumn(cutoffs);
    return by ? `t.${by}::text` : undefined;
  }

  /** `values[i]` for the rule whose value is `purpose`, else `fallback`: one lookup, any number of rules. */
  perPurpose(
    cutoffs: Cutoffs,
    purpose: string | undefined,
    values: unknown[],
    fallback: unknown,
    cast: 'timestamptz' | 'text' | 'smallint',
  ): string {
    const otherwise = this.param(fallback, cast);
    if (purpose === undefined) return otherwise;
    const purposes = this.param(
      cutoffs.rules.map((rule) => rule.value),
      'text[]',
    );
    return `COALESCE((${this.param(values, `${cast}[]`)})[array_position(${purposes}, ${purpose})], ${otherwise})`;
  }

  /** Eligible under the run's cutoffs; the latest cutoff first, as the index range bound. */
  eligible(cutoffs: Cutoffs): string {
    const byRow = this.olderThan(this.rowCutoff(cutoffs));
    if (!this.byColumn(cutoffs)) return byRow;
    return `${this.olderThan(this.param(latestCutoff(cutoffs), 'timestamptz'))} AND ${byRow}`;
  }

  /** `AND (keyset) > (cursor)`, or nothing from the start. */
  after(cursor: Cursor | undefined): string {
    return cursor
      ? ` AND (${keysetColumns(this.shape)}) > (${[cursor.ts, ...cursor.key].map((value) => this.param(value)).join(', ')})`
      : '';
  }

  /**
   * `walk_end`: the `walk`-th index entry after the cursor among rows older than the latest
   * cutoff, whatever their purpose, scope or holds: the farthest one statement looks. Without it
   * a statement looking for N eligible rows among few (most rows kept for years under another
   * purpose, a selective filter) walks the whole table at once (measured: 5 s for 4M rows, past
   * any statement timeout at a few tens of millions). None when fewer entries remain.
   */
  walkEndCte(cutoffs: Cutoffs, after: string, walk: number): string {
    const keys = this.shape.key.map((column, index) => `t.${column} AS key_${index}`).join(', ');
    return `walk_end AS (SELECT t.${this.shape.ts} AS ts_order, ${keys} ${this.walkRange(cutoffs, after)}
      ORDER BY ${keysetColumns(this.shape)} OFFSET ${this.param(walk - 1)} LIMIT 1)`;
  }

  /** `FROM … WHERE …`: the index entries a walk passes, eligible or not (older than the latest cutoff, in the segment, after the cursor). */
  walkRange(cutoffs: Cutoffs, after: string): string {
    return `FROM ${this.shape.table} AS t WHERE ${this.olderThan(this.param(latestCutoff(cutoffs), 'timestamptz'))}${this.inSegment()}${after}`;
  }

  /** `(keyset) <= (the row of cte)`; open-ended when the CTE is empty (`'infinity'` decides before the NULL keys). */
  upTo(cte: string): string {
    const upper = [
      `COALESCE((SELECT b.ts_order FROM ${cte} AS b), 'infinity')`,
      ...this.shape.key.map((_, index) => `(SELECT b.key_${index} FROM ${cte} AS b)`),
    ];
    return `(${keysetColumns(this.shape)}) <= (${upper.join(', ')})`;
  }

  /** `AND t.by = v` (or `IS NULL`) in a segmented sweep; nothing otherwise. An index range, unlike a filter. */
  inSegment(): string {
    const { segment, by } = this.shape;
    if (!segment || !by) return '';
    return segment.value === null
      ? ` AND t.${by.column} IS NULL`
      : ` AND t.${by.column} = ${this.param(segment.value)}`;
  }

  /** The policy's scope; `TRUE` without a filter. */
  filter(): string {
    const terms = this.shape.filter.map((filter) => {
      const column = `t.${filter.column}`;
      if (filter.op === 'is_null') return `${column} IS NULL`;
      if (filter.op === 'not_null') return `${column} IS NOT NULL`;
      if (filter.op === 'in') return `${column} = ANY(${this.param(filter.value)})`;
      return `${column} ${COMPARISON[filter.op]} ${this.param(filter.value)}`;
    });
    return `${terms.length === 0 ? 'TRUE' : terms.join(' AND ')}${this.inSegment()}`;
  }

  /** The row's key as reported in items and audit: the column's text, or a JSON array of texts. */
  keyText(alias = 't', columns = this.shape.key): string {
    const texts = columns.map((column, index) =>
      // A timestamptz's ::text follows the session's TimeZone; a key must read the same everywhere.
      this.shape.zonedKey[index]
        ? `to_char(${alias}.${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
        : `${alias}.${column}::text`,
    );
    return texts.length === 1 ? texts[0]! : `jsonb_build_array(${texts.join(', ')})::text`;
  }

  /**
   * Rows not protected by a hold (exact key, or key prefix) on their key or on their linked
   * file's key, as `classify.itemHold` decides; `TRUE` without holds.
   */
  notHeld(holds: Array<Pick<Hold, 'key' | 'prefix'>>): string {
    if (holds.length === 0) return 'TRUE';
    const exact = this.param(
      holds.filter((hold) => !hold.prefix).map((hold) => hold.key),
      'text[]',
    );
    const prefixes = this.param(
      holds.filter((hold) => hold.prefix).map((hold) => hold.key),
      'text[]',
    );
    const matches = (key: string) =>
      `${key} = ANY(${exact}) OR EXISTS (SELECT 1 FROM unnest(${prefixes}) AS held(prefix) WHERE starts_with(${key}, held.prefix))`;
    // A NULL file matches nothing: `IS TRUE` keeps the row's own match deciding.
    const linked = this.shape.blob ? ` OR (${matches(`t.${this.shape.blob}::text`)}) IS TRUE` : '';
    return `NOT (${matches(this.keyText())}${linked})`;
  }

  /**
   * `input`: the batch's items with their position (`ord`, 1-based); extra per-item arrays
   * become extra columns. Items are joined to rows by key text, after a typed index lookup.
   */
  input(keys: KeyBatch, extra: Array<{ name: string; values: unknown[]; cast: ParamCast }> = []): string {
    const columns = [this.param(keys.keys, 'text[]'), ...extra.map((column) => this.param(column.values, column.cast))];
    return `input AS (SELECT * FROM unnest(${columns.join(', ')}) WITH ORDINALITY AS i(key, ${extra.map((column) => `${column.name}, `).join('')}ord))`;
  }

  /**
   * FROM/WHERE joining `input AS i` to the rows `t` it names. One key column: `= ANY` of an
   * untyped array (PostgreSQL types it as the column's array type) drives one index scan, and
   * the key text pairs rows with items. Several: `json_populate_recordset(NULL::table, …)`
   * turns the texts into a typed row per item, joined on the key columns.
   */
  lookup(keys: KeyBatch, table = this.shape.table): { from: string; where: string } {
    const { key } = this.shape;
    if (key.length === 1) {
      // COLLATE "C": byte equality, and the merge join's sorts skip locale-aware comparisons.
      return {
        from: `input AS i JOIN ${table} AS t ON ${this.keyText()} = i.key COLLATE "C"`,
        where: `t.${key[0]} = ANY(${this.param(keys.columns[0])})`,
      };
    }
    const typed = keys.keys.map((_, item) =>
      Object.fromEntries(this.shape.key.map((column, index) => [unquote(column), keys.columns[index]![item]])),
    );
    const keyColumns = (alias: string) => `(${key.map((column) => `${alias}.${column}`).join(', ')})`;
    return {
      from: `input AS i JOIN json_populate_recordset(NULL::${table}, ${this.param(JSON.stringify(typed), 'json')}) WITH ORDINALITY AS k ON k.ordinality = i.ord JOIN ${table} AS t ON ${keyColumns('t')} = ${keyColumns('k')}`,
      where: 'TRUE',
    };
  }

  /** The rule column when these cutoffs are per purpose (validated at open to be the configured one). */
  private byColumn(cutoffs: Cutoffs): string | undefined {
    return cutoffs.by === undefined ? undefined : this.shape.by?.column;
  }
}

/** `"a""b"` → `a"b`: json_populate_recordset matches JSON keys to column names as stored. */
export function unquote(quoted: string): string {
  return quoted.slice(1, -1).replaceAll('""', '"');
}

/**
 * Key texts as items carry them → per-column texts. One key column: the text itself. Several:
 * the JSON array `keyText()` produces. A malformed key (by index) cannot name a row.
 */
export function parseKeys(shape: RowsShape, keys: string[]): { batch: KeyBatch; malformed: number[] } {
  const batch: KeyBatch = { keys: [], columns: shape.key.map(() => []) };
  const malformed: number[] = [];
  keys.forEach((key, index) => {
    const parts = keyParts(shape, key);
    if (!parts) {
      malformed.push(index);
      return;
    }
    batch.keys.push(key);
    for (const [column, part] of parts.entries()) batch.columns[column]!.push(part);
  });
  return { batch, malformed };
}

export function keyParts(shape: RowsShape, key: string): string[] | undefined {
  if (shape.key.length === 1) return [key];
  try {
    const parsed: unknown = JSON.parse(key);
    return Array.isArray(parsed) &&
      parsed.length === shape.key.length &&
      parsed.every((part) => typeof part === 'string')
      ? (parsed as string[])
      : undefined;
  } catch {
    return undefined;
  }
}

/** `, t.size::float8 AS size` when the shape has a size column (float8: a JS number, not a string). */
export function sizeColumn(shape: RowsShape, alias = 't'): string {
  return shape.size ? `, ${alias}.${shape.size}::float8 AS size` : '';
}

/** Key-ordered columns of the keyset: `(t.ts, t.k1, …)`. */
export function keysetColumns(shape: RowsShape, alias = 't'): string {
  return [shape.ts, ...shape.key].map((column) => `${alias}.${column}`).join(', ');
}

/** Position after a row: its timestamp exactly as the column holds it, and its key column texts. */
export interface Cursor {
  ts: string;
  key: string[];
}

/** Index entries one statement may walk past (see `walkEndCte`): 10 batches' worth, at most 25,000 (≈ 40 ms). */
export function walkLimit(limit: number): number {
  return Math.min(WALK_MAX, Math.max(10 * limit, WALK_MIN));
}
const WALK_MIN = 1_000;
const WALK_MAX = 25_000;

/**
 * A page in keyset order from strictly after `cursor`, holding only rows eligible under
 * `cutoffs` (the engine re-filters anyway), within the walk (`walkEndCte`). One row past the
 * page tells "done" without a second round trip; `walk_end` (JSON, on every row, or on the one
 * row of NULLs an empty page returns) says where the walk stopped when it did. The cursor values
 * are untyped: PostgreSQL reads them as the columns' types.
 */
export function scanStatement(
  shape: RowsShape,
  cutoffs: Cutoffs,
  cursor: Cursor | undefined,
  limit: number,
): Statement {
  const sql = new RowsSql(shape);
  const after = sql.after(cursor);
  const by = cutoffs.by === undefined || !shape.by ? '' : `, t.${shape.by.column}::text AS purpose`;
  const linked = shape.blob ? `, t.${shape.blob}::text AS linked` : '';
  const raw = shape.zoned ? '' : `, to_jsonb(t.${shape.ts}) #>> '{}' AS ts_raw`;
  const keyColumns = shape.key.map((_, index) => `key_${index}`);
  return sql.statement(
    `WITH ${sql.walkEndCte(cutoffs, after, walkLimit(limit))}
     SELECT (SELECT jsonb_build_object('ts', to_jsonb(b.ts_order) #>> '{}', 'key', ${sql.keyText('b', keyColumns)}) FROM walk_end AS b) AS walk_end, page.*
       FROM (SELECT 1) AS one LEFT JOIN LATERAL (
             SELECT ${sql.keyText()} AS key, to_jsonb(${sql.rowTime()}) #>> '{}' AS ts${raw}${by}${linked}${sizeColumn(shape)}
               FROM ${shape.table} AS t
              WHERE ${sql.eligible(cutoffs)} AND ${sql.filter()}${after} AND ${sql.upTo('walk_end')}
              ORDER BY ${keysetColumns(shape)} LIMIT ${sql.param(limit + 1)}) AS page ON TRUE`,
  );
}

/** Rows in scope, counted up to `cap` (`LIMIT` bounds the work, not just the answer). */
export function countInScopeStatement(shape: RowsShape, cap: number): Statement {
  const sql = new RowsSql(shape);
  return sql.statement(
    `SELECT count(*)::bigint AS count FROM (SELECT 1 FROM ${shape.table} AS t WHERE ${sql.filter()} LIMIT ${sql.param(cap)}) AS scoped`,
  );
}

/**
 * Eligible rows counted up to `cap`, oldest first along the index: how many are unheld, how
 * many a hold keeps, and the largest overdue time (`cutoff - timestamp`) among the unheld.
 */
export function countEligibleStatement(shape: RowsShape, cutoffs: Cutoffs, holds: Hold[], cap: number): Statement {
  const sql = new RowsSql(shape);
  return sql.statement(
    `SELECT count(*) FILTER (WHERE NOT overdue.held)::bigint AS count, count(*) FILTER (WHERE overdue.held)::bigint AS held,
            COALESCE(max(extract(epoch FROM overdue.cutoff - overdue.ts)) FILTER (WHERE NOT overdue.held), 0)::float8 AS oldest_overdue_seconds
       FROM (SELECT ${sql.rowTime()} AS ts, ${sql.rowCutoff(cutoffs)} AS cutoff, NOT (${sql.notHeld(holds)}) AS held FROM ${shape.table} AS t
              WHERE ${sql.eligible(cutoffs)} AND ${sql.filter()}
              ORDER BY t.${shape.ts} LIMIT ${sql.param(cap)}) AS overdue`,
  );
}

/** Positions (`ord`) of the keys that name an existing row. */
export function presentStatement(shape: RowsShape, keys: KeyBatch): Statement {
  const sql = new RowsSql(shape);
  const { from, where } = sql.lookup(keys);
  return sql.statement(`WITH ${sql.input(keys)} SELECT i.ord FROM ${from} WHERE ${where}`);
}

/**
 * Whether a row in scope matches `hold` on its key or its linked file (the very test `notHeld`
 * applies when deleting), and one row's keys as an example for the operator. Neither column is
 * indexed for this: the caller bounds it with a statement timeout.
 */
export function holdMatchStatement(shape: RowsShape, hold: Pick<Hold, 'key' | 'prefix'>): Statement {
  const sql = new RowsSql(shape);
  const linked = shape.blob ? `t.${shape.blob}::text` : 'NULL::text';
  return sql.statement(
    `SELECT EXISTS (SELECT 1 FROM ${shape.table} AS t WHERE ${sql.filter()} AND NOT (${sql.notHeld([hold])})) AS matched,
            (SELECT jsonb_build_object('key', ${sql.keyText()}, 'linked', ${linked}) FROM ${shape.table} AS t WHERE ${sql.filter()} LIMIT 1) AS example`,
  );
}
