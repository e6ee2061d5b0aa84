import { rowAuditCte } from './rowAudit.ts';
import {
  type DeleteBatch,
  type KeyBatch,
  type RowAuditValues,
  type RowsShape,
  RowsSql,
  type Statement,
  sizeColumn,
} from './sql.ts';

/**
 * Pure builders of the statements that change rows: delete (with re-check, SKIP LOCKED, archive
 * and audit in one statement), the lock-first variant for batches with linked files or
 * children, backup copies, and restore from a copy (backup or archive table). Same rules as postgresRowsSql.ts: quoted identifiers
 * from the validated shape, every value a parameter.
 */

function deleteInput(sql: RowsSql, batch: DeleteBatch): string {
  return sql.input(batch, [
    { name: 'cutoff', values: batch.cutoffs, cast: 'timestamptz[]' },
    { name: 'purpose', values: batch.purposes, cast: 'text[]' },
    { name: 'rule', values: batch.rules, cast: 'text[]' },
  ]);
}

/**
 * Invariant 1 at delete time, per item: the row is still older than the cutoff the planner
 * gave it, still has the purpose that cutoff was computed for, and is still in scope. A row
 * updated since the scan (timestamp moved later, purpose changed) fails this and stays.
 */
function recheck(sql: RowsSql): string {
  const { by } = sql.shape;
  const purpose = by ? ` AND t.${by.column}::text IS NOT DISTINCT FROM i.purpose` : '';
  return `${sql.olderThan('i.cutoff')}${purpose} AND ${sql.filter()}`;
}

/**
 * `target`: the batch's rows that pass the re-check. `lock`: FOR UPDATE SKIP LOCKED (a row
 * another transaction holds is skipped, not waited for; EvalPlanQual re-applies the re-check to
 * the newest committed version of a row updated since this statement's snapshot). `only`:
 * rows this transaction already locked.
 */
function targetCte(sql: RowsSql, batch: DeleteBatch, options: { lock: boolean; only?: number[] }): string {
  const { shape } = sql;
  const { from, where } = sql.lookup(batch);
  const only = options.only ? ` AND i.ord = ANY(${sql.param(options.only, 'bigint[]')})` : '';
  const keys = shape.key.map((column, index) => `t.${column} AS key_${index}`).join(', ');
  const blob = shape.blob ? `t.${shape.blob}::text` : 'NULL::text';
  return `target AS (SELECT t.ctid AS row_ref, i.ord, ${sql.rowTime()} AS item_ts, ${blob} AS blob_key${sizeColumn(shape)}, ${keys}
      FROM ${from} WHERE ${where} AND ${recheck(sql)}${only}${options.lock ? ' FOR UPDATE OF t SKIP LOCKED' : ''})`;
}

/**
 * `removed` (the DELETE) and `deleted` (what it removed, with the target's columns). On a plain
 * table the rows go by ctid, `= ANY(ARRAY(…))`, which is always a TID scan (a join on ctid can be
 * planned as a hash join over a full scan); the rows are locked by this statement or
 * transaction, so their ctids cannot change. A ctid in a partitioned table names a row only
 * within its partition and a ctid lookup visits every partition, so there the key is used: it
 * includes the partition column (PostgreSQL requires that of unique indexes), so each probe
 * prunes to one partition.
 */
export function deletion(shape: RowsShape): string[] {
  const matched = shape.partitioned ? 'target.ord' : 't.ctid';
  const removed = removeTargets(shape, 'removed', [
    `${matched} AS matched`,
    ...(shape.archive ? ['t AS row_value'] : []),
  ]);
  return [
    removed,
    `deleted AS (SELECT target.*${shape.archive ? ', removed.row_value' : ''} FROM removed JOIN target ON ${shape.partitioned ? 'target.ord' : 'target.row_ref'} = removed.matched)`,
  ];
}

/**
 * `name AS (DELETE … RETURNING …)` of the rows in `target` (its `row_ref`, and `key_<i>` on a
 * partitioned table): by ctid on a plain table, by key on a partitioned one (see `deletion`).
 */
export function removeTargets(shape: RowsShape, name: string, returning: string[]): string {
  const keyMatch = `(${shape.key.map((column) => `t.${column}`).join(', ')}) = (${shape.key.map((_, index) => `target.key_${index}`).join(', ')})`;
  return shape.partitioned
    ? `${name} AS (DELETE FROM ${shape.table} AS t USING target WHERE ${keyMatch} RETURNING ${returning.join(', ')})`
    : `${name} AS (DELETE FROM ${shape.table} AS t WHERE t.ctid = ANY(ARRAY(SELECT row_ref FROM target)) RETURNING ${returning.join(', ')})`;
}

export interface DeleteOptions {
  /** false: the rows in `only` were locked by an earlier statement of this transaction. */
  lock: boolean;
  only?: number[];
  audit?: RowAuditValues;
  /** Per item (by position): what happened to its linked file, for the audit row. */
  fileStatus?: Array<string | null>;
}

/**
 * ONE statement: select + re-check + lock, delete, copy to the archive, write the audit rows.
 * Returns the positions (`ord`) of the deleted items.
 */
export function deleteStatement(shape: RowsShape, batch: DeleteBatch, options: DeleteOptions): Statement {
  const sql = new RowsSql(shape);
  const ctes = [deleteInput(sql, batch), targetCte(sql, batch, options), ...deletion(shape)];
  if (shape.archive) {
    ctes.push(`archived AS (INSERT INTO ${shape.archive.table} (${shape.columns.join(', ')}) OVERRIDING SYSTEM VALUE
      SELECT ${shape.columns.map((column) => `(r.row_value).${column}`).join(', ')} FROM deleted AS r)`);
  }
  if (options.audit) {
    // Only with a blob column: an unused parameter would have no type for PostgreSQL to infer.
    const files = shape.blob
      ? {
          linkedFile: 'r.blob_key',
          linkedFileStatus: options.fileStatus
            ? `(${sql.param(options.fileStatus, 'text[]')})[r.ord::int]`
            : 'NULL::text',
        }
      : {};
    ctes.push(
      rowAuditCte(
        sql,
        options.audit,
        { action: 'delete', status: 'deleted', archivedTo: shape.archive?.name ?? null },
        {
          from: 'deleted AS r JOIN input AS i ON i.ord = r.ord',
          key: 'i.key',
          itemTimestamp: 'r.item_ts',
          why: { rule: 'i.rule', cutoff: 'i.cutoff' },
          ...files,
        },
      ),
    );
  }
  return sql.statement(`WITH ${ctes.join(',\n')} SELECT r.ord${shape.size ? ', r.size' : ''} FROM deleted AS r`);
}

/** Locks the batch's eligible rows (SKIP LOCKED) and returns their linked file keys. */
export function lockStatement(shape: RowsShape, batch: DeleteBatch): Statement {
  const sql = new RowsSql(shape);
  return sql.statement(`WITH ${deleteInput(sql, batch)}, ${targetCte(sql, batch, { lock: true })}
    SELECT target.ord, target.blob_key, target.item_ts FROM target`);
}

/** Deletes the rows of an explicit child table that reference the locked rows `only`. */
export function childDeleteStatement(
  shape: RowsShape,
  child: { table: string; column: string },
  batch: DeleteBatch,
  only: number[],
): Statement {
  const sql = new RowsSql(shape);
  return sql.statement(`WITH ${deleteInput(sql, batch)}, ${targetCte(sql, batch, { lock: false, only })}
    DELETE FROM ${child.table} AS c USING target WHERE c.${child.column} = target.key_0`);
}

/** For items not deleted: which still exist, and whether they would still pass the re-check. */
export function remainingStatement(shape: RowsShape, batch: DeleteBatch, only: number[]): Statement {
  const sql = new RowsSql(shape);
  const { from, where } = sql.lookup(batch);
  return sql.statement(`WITH ${deleteInput(sql, batch)}
    SELECT i.ord, (${recheck(sql)}) IS TRUE AS eligible FROM ${from} WHERE ${where} AND i.ord = ANY(${sql.param(only, 'bigint[]')})`);
}

/** Copies the batch's rows into `copy` (the backup table); returns the keys copied. */
export function backupStatement(shape: RowsShape, copy: CopyTable, keys: KeyBatch): Statement {
  const sql = new RowsSql(shape);
  const { from, where } = sql.lookup(keys);
  return sql.statement(`WITH ${sql.input(keys)},
    copied AS (INSERT INTO ${copy.table} AS b (${shape.columns.join(', ')}) OVERRIDING SYSTEM VALUE
               SELECT ${shape.columns.map((column) => `t.${column}`).join(', ')} FROM ${from} WHERE ${where}
               RETURNING ${sql.keyText('b')} AS key)
    SELECT key FROM copied`);
}

/**
 * Per key, what a restore from `copy` would do with linked files: whether the row exists now
 * (then nothing is restored), and the linked file of the copy `restoreStatement` would insert
 * (the newest). Only for shapes with a blob column.
 */
export function linkedCopiesStatement(shape: RowsShape, copy: CopyTable, keys: KeyBatch): Statement {
  const sql = new RowsSql(shape);
  const current = sql.lookup(keys);
  const copied = sql.lookup(keys, copy.table);
  return sql.statement(`WITH ${sql.input(keys)},
    present AS (SELECT i.ord FROM ${current.from} WHERE ${current.where}),
    found AS (SELECT DISTINCT ON (i.ord) i.ord, t.${shape.blob}::text AS file FROM ${copied.from} WHERE ${copied.where} ORDER BY i.ord, t.${shape.ts} DESC)
    SELECT i.ord, p.ord IS NOT NULL AS present, f.file FROM input AS i LEFT JOIN present AS p ON p.ord = i.ord LEFT JOIN found AS f ON f.ord = i.ord`);
}

/** A table holding copies of rows (backup or archive), checked at open to have the table's columns. */
export interface CopyTable {
  table: string;
  name: string;
}

/**
 * Puts rows back from `copy`, in one statement: for a key with no row in the table, its newest
 * copy is inserted `ON CONFLICT DO NOTHING` (a row that appears meanwhile wins) and audited. The
 * copy stays, like the backups of other stores. Per position: whether the row existed, whether
 * a copy was found, and whether it was restored.
 */
export function restoreStatement(
  shape: RowsShape,
  copy: CopyTable,
  keys: KeyBatch,
  audit: RowAuditValues | undefined,
): Statement {
  const sql = new RowsSql(shape);
  const current = sql.lookup(keys);
  const copied = sql.lookup(keys, copy.table);
  const audited = audit
    ? `${rowAuditCte(
        sql,
        audit,
        { action: 'restore', status: 'restored', archivedTo: copy.name },
        {
          from: 'found AS f JOIN restored AS r ON r.key = f.key',
          key: 'f.key',
          itemTimestamp: 'f.item_ts',
          why: { rule: sql.param(`restored from ${copy.name}`, 'text'), cutoff: 'NULL::timestamptz' },
        },
      )},`
    : '';
  return sql.statement(`WITH ${sql.input(keys)},
    present AS (SELECT i.ord FROM ${current.from} WHERE ${current.where}),
    found AS (SELECT DISTINCT ON (i.ord) i.ord, i.key, t AS row_value, ${sql.rowTime()} AS item_ts
                FROM ${copied.from} WHERE ${copied.where} AND i.ord NOT IN (SELECT ord FROM present) ORDER BY i.ord, t.${shape.ts} DESC),
    restored AS (INSERT INTO ${shape.table} AS t (${shape.columns.join(', ')}) OVERRIDING SYSTEM VALUE
                 SELECT ${shape.columns.map((column) => `(f.row_value).${column}`).join(', ')} FROM found AS f
                 ON CONFLICT DO NOTHING RETURNING ${sql.keyText()} AS key),
    ${audited}
    outcome AS (SELECT i.ord, p.ord IS NOT NULL AS present, f.ord IS NOT NULL AS copied, r.key IS NOT NULL AS restored
                  FROM input AS i LEFT JOIN present AS p ON p.ord = i.ord LEFT JOIN found AS f ON f.ord = i.ord LEFT JOIN restored AS r ON r.key = i.key)
    SELECT * FROM outcome`);
}
