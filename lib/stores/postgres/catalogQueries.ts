import type { InputIssue } from '../../errors.ts';
import { ConfigError } from '../../errors.ts';
import type { SqlExecutor } from '../../sql/client.ts';
import { quoteIdent, quoteQualified } from '../../sql/identifiers.ts';

/**
 * Reads of PostgreSQL's catalog for the rows store's start-of-run checks (catalog.ts).
 * Names are looked up exactly as configured: `quoteQualified` makes `to_regclass` take them
 * literally (case-sensitive), and an unqualified name resolves through search_path.
 */
export interface Relation {
  oid: number;
  /** `"schema"."table"` as the catalog spells it. */
  quoted: string;
  /** `schema.table`, for messages and audit. */
  name: string;
  /** pg_class.relkind: `r` table, `p` partitioned table, … */
  kind: string;
}

export interface Column {
  attnum: number;
  name: string;
  /** format_type(): `timestamp with time zone`, `bigint`, `character varying(20)`, … */
  type: string;
  not_null: boolean;
  generated: boolean;
}

export interface IndexInfo {
  /** Key columns by attnum (INCLUDE columns left out); 0 is an expression. */
  columns: number[];
  is_unique: boolean;
  is_primary: boolean;
  partial: boolean;
  method: string;
  valid: boolean;
  /** Not deferrable: ON CONFLICT can use it. */
  immediate: boolean;
}

export interface ReferencingKey {
  name: string;
  child: string;
  childOid: number;
  /** pg_constraint.confdeltype: a NO ACTION, r RESTRICT, c CASCADE, n SET NULL, d SET DEFAULT. */
  onDelete: string;
  columns: string[];
  /** Some index starts with the referencing columns (in any order). */
  indexed: boolean;
}

const RELATION_KINDS: Record<string, string> = {
  v: 'view',
  m: 'materialized view',
  f: 'foreign table',
  S: 'sequence',
  i: 'index',
};

/** The table `name` names, or the issue to report under `field`. */
export async function lookupTable(sql: SqlExecutor, name: string, field: string): Promise<Relation | InputIssue> {
  let quoted: string;
  try {
    quoted = quoteQualified(name);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return { ...error.issues[0]!, path: field };
  }
  const rows = await sql.query<{ oid: string; schema: string; name: string; kind: string }>(
    `SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`,
    [quoted],
  );
  const found = rows[0];
  if (!found)
    return {
      path: field,
      message: `table "${name}" does not exist`,
      fix: 'check the schema and name (case-sensitive, as in the catalog)',
    };
  if (found.kind !== 'r' && found.kind !== 'p')
    return {
      path: field,
      message: `"${name}" is a ${RELATION_KINDS[found.kind] ?? 'relation'}, not a table`,
      fix: 'name a table',
    };
  return {
    oid: Number(found.oid),
    quoted: `${quoteIdent(found.schema)}.${quoteIdent(found.name)}`,
    name: `${found.schema}.${found.name}`,
    kind: found.kind,
  };
}

export function isIssue(value: Relation | InputIssue): value is InputIssue {
  return 'path' in value;
}

export async function columnsOf(sql: SqlExecutor, oid: number): Promise<Map<string, Column>> {
  const rows = await sql.query<Column>(
    `SELECT a.attnum, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null, a.attgenerated <> '' AS generated
       FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [oid],
  );
  return new Map(rows.map((row) => [row.name, row]));
}

export async function indexesOf(sql: SqlExecutor, oid: number): Promise<IndexInfo[]> {
  return sql.query<IndexInfo>(
    `SELECT (string_to_array(i.indkey::text, ' ')::int[])[1:i.indnkeyatts] AS columns, i.indisunique AS is_unique, i.indisprimary AS is_primary,
            i.indpred IS NOT NULL AS partial, am.amname AS method, i.indisvalid AS valid, i.indimmediate AS immediate
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam WHERE i.indrelid = $1`,
    [oid],
  );
}

/** A valid, complete btree index whose first column is `attnum`: it can range-scan and order by it. */
export function leadingIndex(indexes: IndexInfo[], attnum: number): boolean {
  return indexes.some(
    (index) => index.valid && !index.partial && index.method === 'btree' && index.columns[0] === attnum,
  );
}

/** Foreign keys pointing at the table (declared ones; the per-partition clones are left out). */
export async function referencingKeys(sql: SqlExecutor, oid: number): Promise<ReferencingKey[]> {
  return sql
    .query<ReferencingKey>(
      `SELECT con.conname AS name, con.conrelid::regclass::text AS child, con.conrelid::bigint AS "childOid", con.confdeltype::text AS "onDelete",
            ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.n) AS columns,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = con.conrelid AND i.indpred IS NULL
                      AND (SELECT array_agg(x ORDER BY x) FROM unnest((string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(con.conkey)]) AS x)
                        = (SELECT array_agg(x ORDER BY x) FROM unnest(con.conkey) AS x)) AS indexed
       FROM pg_constraint con WHERE con.confrelid = $1 AND con.contype = 'f' AND con.conparentid = 0 ORDER BY con.conname`,
      [oid],
    )
    .then((rows) => rows.map((row) => ({ ...row, childOid: Number(row.childOid) })));
}

/** `range` on exactly these attnums, or what else the table is partitioned by; undefined: not partitioned. */
export async function partitionKey(
  sql: SqlExecutor,
  oid: number,
): Promise<{ strategy: string; columns: number[] } | undefined> {
  const [key] = await sql.query<{ strategy: string; columns: number[] }>(
    `SELECT p.partstrat::text AS strategy, string_to_array(p.partattrs::text, ' ')::int[] AS columns FROM pg_partitioned_table p WHERE p.partrelid = $1`,
    [oid],
  );
  return key;
}
