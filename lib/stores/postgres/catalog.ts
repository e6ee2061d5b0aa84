import { ConfigError, type ErrorContext, type InputIssue, SqlError } from '../../errors.ts';
import type { SqlExecutor } from '../../sql/client.ts';
import { quoteIdent } from '../../sql/identifiers.ts';
import {
  type Column,
  columnsOf,
  type IndexInfo,
  indexesOf,
  isIssue,
  leadingIndex,
  lookupTable,
  partitionKey,
  type ReferencingKey,
  type Relation,
  referencingKeys,
} from './catalogQueries.ts';
import { type RowFilter, type RowsShape, RowsSql } from './sql.ts';
import type { CopyTable } from './writeSql.ts';

/**
 * Start-of-run checks of a rows policy against PostgreSQL's catalog: every configured name must
 * exist with a usable type, so a typo is a ConfigError naming the field (exit 2) before anything
 * is touched, never an SQL error in the middle of a run. The result is the shape the SQL
 * builders use: names as the catalog spells them, quoted once, here. `path(field)` turns a field
 * of the policy (`table`, `filter[0].column`) into the path the operator wrote.
 */
export interface RowsTableRequest {
  table: string;
  timestamp: string;
  timeZone?: string;
  key?: string[];
  by?: string;
  filter: RowFilter[];
  children: Array<{ table: string; column: string }>;
  blob?: string;
  size?: string;
  archive?: string;
  allowSeqScan: boolean;
  audit: boolean;
}

/** Found at start, not fatal: for the operator (`log.warn(code, …)`). */
export interface RowsWarning {
  code:
    | 'cascade_without_index'
    | 'foreign_key_blocks_delete'
    | 'child_without_index'
    | 'not_archived'
    | 'partition_drop_disabled'
    | 'purpose_without_index';
  message: string;
  fix?: string;
}

/** The table as found, to check copy tables (backup, archive) against later. */
export interface SourceTable {
  relation: Relation;
  columns: Map<string, Column>;
}

export interface InspectedTable {
  shape: RowsShape;
  source: SourceTable;
  warnings: RowsWarning[];
  /** Why whole partitions cannot be dropped; undefined when they can. */
  partitionDropBlocked?: string;
}

type FieldPath = (field: string) => string;
type ChildTable = Relation & { column: string; indexed: boolean };

const NUMERIC_TYPES = new Set(['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision']);
const TIMESTAMP_ZONED: Record<string, boolean> = {
  'timestamp with time zone': true,
  'timestamp without time zone': false,
};

export async function inspectRowsTable(
  sql: SqlExecutor,
  request: RowsTableRequest,
  path: FieldPath,
  context: ErrorContext,
): Promise<InspectedTable> {
  const table = await lookupTable(sql, request.table, path('table'));
  if (isIssue(table)) throw new ConfigError([table], context);
  const columns = await columnsOf(sql, table.oid);
  const issues: InputIssue[] = [];
  const column = (name: string, field: string): Column | undefined => {
    const found = columns.get(name);
    if (!found)
      issues.push({
        path: path(field),
        message: `column "${name}" does not exist in ${table.name}`,
        fix: `existing columns: ${[...columns.keys()].join(', ')}`,
      });
    return found;
  };

  const ts = column(request.timestamp, 'timestamp');
  const zoned = ts ? TIMESTAMP_ZONED[ts.type] : true;
  if (ts && zoned === undefined)
    issues.push({
      path: path('timestamp'),
      message: `column "${ts.name}" is ${ts.type}, not a timestamp`,
      fix: 'use a timestamptz column, or a timestamp column with "timeZone"',
    });
  if (request.timeZone !== undefined && zoned)
    issues.push({
      path: path('timeZone'),
      message: `"${request.timestamp}" is timestamptz, which carries its own zone`,
      fix: 'remove timeZone (it applies to timestamp without time zone)',
    });
  if (request.by === 'prefix')
    issues.push({
      path: path('retention.by'),
      message: '"prefix" matches key prefixes of blobs',
      fix: 'name the column that holds the purpose, e.g. "purpose_code"',
    });
  else if (request.by !== undefined) column(request.by, 'retention.by');
  for (const [index, filter] of request.filter.entries()) column(filter.column, `filter[${index}].column`);
  if (request.blob !== undefined) column(request.blob, 'blob.column');
  const size = request.size === undefined ? undefined : column(request.size, 'size');
  if (size && !NUMERIC_TYPES.has(size.type))
    issues.push({
      path: path('size'),
      message: `column "${size.name}" is ${size.type}, not a number of bytes`,
      fix: 'name an integer or numeric column',
    });

  const indexes = await indexesOf(sql, table.oid);
  const key = keyColumns(request, columns, indexes, path, issues);
  if (ts && !request.allowSeqScan && !leadingIndex(indexes, ts.attnum)) {
    issues.push({
      path: path('timestamp'),
      message: `no index on ${table.name} starts with "${ts.name}": every batch would scan the table`,
      fix: `CREATE INDEX CONCURRENTLY ON ${table.quoted} (${[ts.name, ...key.map((c) => c.name)].map(quoteIdent).join(', ')}); or set "allowSeqScan": true`,
    });
  }
  const children = await childTables(sql, request, key, path, issues);
  const archive =
    request.archive === undefined
      ? undefined
      : await copyTable(sql, request.archive, path('archive.table'), { relation: table, columns });
  if (archive && 'path' in archive) issues.push(archive);
  if (issues.length > 0 || !ts || zoned === undefined) throw new ConfigError(issues, context);

  const shape: RowsShape = {
    table: table.quoted,
    ts: quoteIdent(ts.name),
    zoned,
    timeZone: request.timeZone ?? 'UTC',
    key: key.map((c) => quoteIdent(c.name)),
    zonedKey: key.map((c) => TIMESTAMP_ZONED[c.type] === true),
    ...(request.by !== undefined ? { by: { column: quoteIdent(request.by), name: request.by } } : {}),
    bySegments: request.by !== undefined && byIndex(indexes, columns.get(request.by)?.attnum, ts.attnum),
    filter: request.filter.map((filter) => ({ ...filter, column: quoteIdent(filter.column) })),
    partitioned: table.kind === 'p',
    ...(request.blob !== undefined ? { blob: quoteIdent(request.blob) } : {}),
    ...(request.size !== undefined ? { size: quoteIdent(request.size) } : {}),
    children: children.map((child) => ({ table: child.quoted, column: quoteIdent(child.column) })),
    ...(archive && !('path' in archive) ? { archive } : {}),
    columns: [...columns.values()].filter((c) => !c.generated).map((c) => quoteIdent(c.name)),
    audit: request.audit,
  };
  const valueIssues = await probeValues(sql, shape, request, path);
  if (valueIssues.length > 0) throw new ConfigError(valueIssues, context);

  const referencing = await referencingKeys(sql, table.oid);
  const warnings = foreignKeyWarnings(table, referencing, request, children);
  if (shape.by && !shape.bySegments) {
    warnings.push({
      code: 'purpose_without_index',
      message: `${table.name}: per-purpose retention reads every row older than the shortest retention on each run (no index starts with "${request.by}", "${ts.name}")`,
      fix: `CREATE INDEX CONCURRENTLY ON ${table.quoted} (${[request.by!, ts.name, ...key.map((c) => c.name)].map(quoteIdent).join(', ')}): each purpose is then swept over its own due rows`,
    });
  }
  const partitionDropBlocked = await partitionDropBlocker(sql, table, ts, request, referencing);
  if (partitionDropBlocked && table.kind === 'p') {
    warnings.push({
      code: 'partition_drop_disabled',
      message: `${table.name}: expired partitions are deleted row by row because ${partitionDropBlocked}`,
    });
  }
  return {
    shape,
    source: { relation: table, columns },
    warnings,
    ...(partitionDropBlocked ? { partitionDropBlocked } : {}),
  };
}

/**
 * The configured key, or the primary key. It must name one row: NOT NULL columns covered by a
 * valid, immediate unique index (which is also what `ON CONFLICT DO NOTHING` of restore uses).
 */
function keyColumns(
  request: RowsTableRequest,
  columns: Map<string, Column>,
  indexes: IndexInfo[],
  path: FieldPath,
  issues: InputIssue[],
): Column[] {
  const byNumber = new Map([...columns.values()].map((c) => [c.attnum, c]));
  const unique = indexes.filter(
    (index) => index.is_unique && index.valid && index.immediate && !index.partial && !index.columns.includes(0),
  );
  if (request.key === undefined) {
    const primary = unique.find((index) => index.is_primary);
    if (!primary)
      issues.push({
        path: path('key'),
        message: 'the table has no primary key',
        fix: 'set "key" to the columns of a unique index, e.g. ["id"]',
      });
    return primary ? primary.columns.map((attnum) => byNumber.get(attnum)!) : [];
  }
  const key: Column[] = [];
  request.key.forEach((name, index) => {
    const found = columns.get(name);
    if (!found)
      issues.push({
        path: path(`key[${index}]`),
        message: `column "${name}" does not exist`,
        fix: `existing columns: ${[...columns.keys()].join(', ')}`,
      });
    else if (!found.not_null)
      issues.push({
        path: path(`key[${index}]`),
        message: `column "${name}" is nullable`,
        fix: 'key columns must be NOT NULL',
      });
    else key.push(found);
  });
  if (key.length !== request.key.length) return [];
  const numbers = new Set(key.map((c) => c.attnum));
  if (!unique.some((index) => index.columns.every((attnum) => numbers.has(attnum)))) {
    issues.push({
      path: path('key'),
      message: `no unique index covers (${request.key.join(', ')}): a key must name one row`,
      fix: 'use the primary key (omit "key") or the columns of a unique index',
    });
  }
  return key;
}

/** Explicit children: each table and column exists, and the column has the key's type (one key column). */
async function childTables(
  sql: SqlExecutor,
  request: RowsTableRequest,
  key: Column[],
  path: FieldPath,
  issues: InputIssue[],
): Promise<ChildTable[]> {
  if (request.children.length === 0) return [];
  if (key.length > 1) {
    issues.push({
      path: path('children'),
      message: 'children reference a row by one key column, and this key has several',
      fix: 'set "key" to one unique column, or use ON DELETE CASCADE',
    });
    return [];
  }
  const children: ChildTable[] = [];
  for (const [index, child] of request.children.entries()) {
    const found = await lookupTable(sql, child.table, path(`children[${index}].table`));
    if (isIssue(found)) {
      issues.push(found);
      continue;
    }
    const column = (await columnsOf(sql, found.oid)).get(child.column);
    const field = path(`children[${index}].column`);
    if (!column)
      issues.push({
        path: field,
        message: `column "${child.column}" does not exist in ${found.name}`,
        fix: 'name the column that holds the key',
      });
    else if (key[0] && column.type !== key[0].type)
      issues.push({
        path: field,
        message: `${found.name}.${child.column} is ${column.type} but the key "${key[0].name}" is ${key[0].type}`,
        fix: 'name the column that holds the key',
      });
    else
      children.push({
        ...found,
        column: child.column,
        indexed: leadingIndex(await indexesOf(sql, found.oid), column.attnum),
      });
  }
  return children;
}

/** A btree index on (purpose, timestamp, …): one index range per purpose. */
function byIndex(indexes: IndexInfo[], by: number | undefined, ts: number): boolean {
  return (
    by !== undefined &&
    indexes.some(
      (index) =>
        index.valid && !index.partial && index.method === 'btree' && index.columns[0] === by && index.columns[1] === ts,
    )
  );
}

/** The column of a backup table saying when each copy was made (filled by its default). */
export const COPIED_AT = 'retention_copied_at';

/**
 * A table for copies of rows (archive, backup): it receives every column of a row, so each must
 * exist there with the same type; extra columns (e.g. `archived_at DEFAULT now()`) are fine.
 */
export async function copyTable(
  sql: SqlExecutor,
  name: string,
  field: string,
  source: SourceTable,
  options: { prunable?: boolean } = {},
): Promise<CopyTable | InputIssue> {
  const found = await lookupTable(sql, name, field);
  if (isIssue(found)) return found;
  if (found.oid === source.relation.oid)
    return { path: field, message: 'names the table itself', fix: 'name another table with the same columns' };
  const copied = await columnsOf(sql, found.oid);
  // Backups are pruned after keepFor, by the time each copy was made.
  const copiedAt = copied.get(COPIED_AT);
  if (options.prunable && copiedAt?.type !== 'timestamp with time zone') {
    return {
      path: field,
      message: `${found.name} has no ${COPIED_AT} timestamptz column, so copies older than keepFor cannot be pruned`,
      fix: `ALTER TABLE ${found.quoted} ADD COLUMN ${COPIED_AT} timestamptz NOT NULL DEFAULT now()`,
    };
  }
  const problems = [...source.columns.values()]
    .filter((column) => !column.generated)
    .flatMap((column) => {
      const target = copied.get(column.name);
      if (!target) return [`no column "${column.name}"`];
      return target.type === column.type ? [] : [`"${column.name}" is ${target.type}, not ${column.type}`];
    });
  if (problems.length > 0) {
    return {
      path: field,
      message: `${found.name} cannot hold rows of ${source.relation.name}: ${problems.join('; ')}`,
      fix: `create it with: CREATE TABLE ${found.quoted} (LIKE ${source.relation.quoted})`,
    };
  }
  return { table: found.quoted, name: found.name };
}

/** Each filter value must parse as its column's type: probed with `LIMIT 0`, so no row is read. */
async function probeValues(
  sql: SqlExecutor,
  shape: RowsShape,
  request: RowsTableRequest,
  path: FieldPath,
): Promise<InputIssue[]> {
  const issues: InputIssue[] = [];
  const probe = async (
    field: string,
    text: string,
    params: unknown[],
    message: (cause: string) => string,
    fix: string,
  ): Promise<void> => {
    try {
      await sql.query(text, params);
    } catch (error) {
      if (!(error instanceof SqlError)) throw error;
      issues.push({ path: path(field), message: message(describeSqlCause(error)), fix });
    }
  };
  for (const [index, filter] of shape.filter.entries()) {
    const single = new RowsSql({ ...shape, filter: [filter] });
    const statement = single.statement(`SELECT 1 FROM ${shape.table} AS t WHERE ${single.filter()} LIMIT 0`);
    const configured = request.filter[index]!;
    await probe(
      `filter[${index}].value`,
      statement.text,
      statement.params,
      (cause) => `${JSON.stringify(configured.value)} cannot be compared with column "${configured.column}" (${cause})`,
      "use a value of the column's type",
    );
  }
  if (!shape.zoned) {
    await probe(
      'timeZone',
      'SELECT now() AT TIME ZONE $1',
      [shape.timeZone],
      () => `"${shape.timeZone}" is not a time zone PostgreSQL knows`,
      'use an IANA name such as "UTC" or "Europe/Paris"',
    );
  }
  return issues;
}

/** PostgreSQL's own words, without the driver and statement prefix SqlError adds. */
function describeSqlCause(error: SqlError): string {
  return error.cause instanceof Error ? error.cause.message : error.message;
}

const ON_DELETE: Record<string, string> = {
  a: 'NO ACTION',
  r: 'RESTRICT',
  c: 'CASCADE',
  n: 'SET NULL',
  d: 'SET DEFAULT',
};

/**
 * Foreign keys pointing at the table. Each deleted row makes PostgreSQL look up (and for
 * CASCADE / SET NULL, change) the referencing rows: without an index on the referencing columns
 * that is a scan of the child table per row (measured: 290× slower). A NO ACTION / RESTRICT key
 * whose table is not in `children` fails the batch whenever one of its rows is referenced.
 */
function foreignKeyWarnings(
  table: Relation,
  keys: ReferencingKey[],
  request: RowsTableRequest,
  children: ChildTable[],
): RowsWarning[] {
  const explicit = new Set(children.map((child) => child.oid));
  const warnings: RowsWarning[] = [];
  for (const key of keys) {
    const where = `${key.child}(${key.columns.join(', ')}) references ${table.name} (${key.name}, ON DELETE ${ON_DELETE[key.onDelete] ?? key.onDelete})`;
    if (!key.indexed) {
      warnings.push({
        code: 'cascade_without_index',
        message: `${where} without an index on the referencing columns: every deleted row scans ${key.child}`,
        fix: `CREATE INDEX CONCURRENTLY ON ${key.child} (${key.columns.map(quoteIdent).join(', ')})`,
      });
    }
    if ((key.onDelete === 'a' || key.onDelete === 'r') && !explicit.has(key.childOid)) {
      warnings.push({
        code: 'foreign_key_blocks_delete',
        message: `${where}: a referenced row cannot be deleted, so its whole batch fails`,
        fix: `list ${key.child} in "children", or make the key ON DELETE CASCADE`,
      });
    }
    if (request.archive !== undefined && key.onDelete === 'c') {
      warnings.push({
        code: 'not_archived',
        message: `${where}: cascaded rows are deleted but not archived`,
        fix: 'restore brings back the parent rows only',
      });
    }
  }
  for (const child of children.filter((candidate) => !candidate.indexed)) {
    warnings.push({
      code: 'child_without_index',
      message: `${child.name}: no index starts with "${child.column}", so each batch scans the table`,
      fix: `CREATE INDEX CONCURRENTLY ON ${child.quoted} (${quoteIdent(child.column)})`,
    });
  }
  return warnings;
}

/**
 * Whole partitions may be dropped only when the table is range-partitioned on the timestamp
 * column alone and a drop skips no per-row work: files to delete, explicit children, rows
 * elsewhere that reference these (DETACH refuses while a foreign key points at the table).
 */
async function partitionDropBlocker(
  sql: SqlExecutor,
  table: Relation,
  ts: Column,
  request: RowsTableRequest,
  referencing: ReferencingKey[],
): Promise<string | undefined> {
  if (table.kind !== 'p') return 'the table is not partitioned';
  const key = await partitionKey(sql, table.oid);
  if (key?.strategy !== 'r' || key.columns.length !== 1 || key.columns[0] !== ts.attnum)
    return `it is not range-partitioned on "${ts.name}" alone`;
  if (request.blob !== undefined) return 'each row has a linked file to delete';
  if (request.children.length > 0) return 'explicit children are deleted row by row';
  if (referencing.length > 0) return 'foreign keys reference it';
  return undefined;
}
