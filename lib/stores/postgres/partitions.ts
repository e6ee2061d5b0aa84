import type { PartitionDropOptions, PartitionOutcome } from '../../core/store.ts';
import type { Cutoffs, Hold } from '../../core/types.ts';
import { describeCause, StoreError } from '../../errors.ts';
import { latestCutoff } from '../../policy/plan.ts';
import type { SqlExecutor } from '../../sql/client.ts';
import { quoteIdent } from '../../sql/identifiers.ts';
import { batchFailureReason, type RowsDeleteContext } from './delete.ts';
import { rowAuditCte } from './rowAudit.ts';
import { type RowsShape, RowsSql, type Statement } from './sql.ts';

/**
 * Partition pushdown: a partition of a table range-partitioned on the timestamp column whose
 * upper bound is at or before the latest cutoff holds only rows past SOME cutoff. It goes
 * whole (DETACH + DROP, after copying to the archive if one is configured) when no row in it
 * is kept for any reason: a longer per-purpose retention, no rule and no default, outside the
 * filter, or a hold. That is checked under a SHARE lock (no row can change meanwhile) by one
 * EXISTS that stops at the first such row; rows are counted only for partitions that go.
 * Everything else (the boundary partition) is left to the batched sweep.
 *
 * Each partition is its own transaction with `lock_timeout`: DETACH needs an ACCESS EXCLUSIVE
 * lock on the parent, and a lock request queued behind a long transaction would block every
 * query on the table; with the timeout the partition is skipped and retried next run.
 */
interface Candidate {
  schema: string;
  name: string;
  upper: Date;
}

export async function dropExpiredPartitions(
  context: RowsDeleteContext,
  cutoffs: Cutoffs,
  holds: Hold[],
  options: PartitionDropOptions = {},
): Promise<PartitionOutcome[]> {
  const { sql, shape } = context;
  const outcomes: PartitionOutcome[] = [];
  for (const candidate of await query<Candidate>(sql, candidatesStatement(shape, cutoffs))) {
    if (options.beforeEach && !(await options.beforeEach())) break;
    const partition = `${quoteIdent(candidate.schema)}.${quoteIdent(candidate.name)}`;
    const described = { partition: `${candidate.schema}.${candidate.name}`, upperBound: candidate.upper };
    try {
      const outcome = options.dryRun
        ? await inspect(sql, shape, partition, cutoffs, holds)
        : await sql.transaction(async (tx) => {
            await tx.query(`SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)`, [
              String(context.statementTimeoutMs),
              String(context.lockTimeoutMs),
            ]);
            // SHARE: writers wait (or time out), readers go on; nothing can make a row ineligible meanwhile.
            await tx.query(`LOCK TABLE ${partition} IN SHARE MODE`);
            const inspected = await inspect(tx, shape, partition, cutoffs, holds);
            if (inspected.status === 'skipped') return inspected;
            if (shape.archive)
              await tx.query(
                `INSERT INTO ${shape.archive.table} (${shape.columns.join(', ')}) OVERRIDING SYSTEM VALUE SELECT ${shape.columns.join(', ')} FROM ${partition}`,
              );
            await tx.query(`ALTER TABLE ${shape.table} DETACH PARTITION ${partition}`);
            await tx.query(`DROP TABLE ${partition}`);
            if (context.audit) await auditDrop(tx, shape, context, described, inspected.rows, cutoffs);
            return { status: 'dropped' as const, rows: inspected.rows };
          });
      outcomes.push({
        ...described,
        ...outcome,
        ...(outcome.status !== 'skipped' && shape.archive ? { archivedTo: shape.archive.name } : {}),
      });
    } catch (error) {
      const reason = batchFailureReason(error);
      if (reason === undefined)
        throw new StoreError(
          `dropping partition ${described.partition} failed: ${describeCause(error)}`,
          { ...context.errorContext, partition: described.partition },
          { cause: error },
        );
      outcomes.push({ ...described, rows: 0, status: 'skipped', reason: `${reason}: ${describeCause(error)}` });
    }
  }
  return outcomes;
}

type Inspected = { status: 'would_drop'; rows: number } | { status: 'skipped'; rows: number; reason: string };

async function inspect(
  sql: SqlExecutor,
  shape: RowsShape,
  partition: string,
  cutoffs: Cutoffs,
  holds: Hold[],
): Promise<Inspected> {
  const [kept] = await query<{ kept: boolean }>(sql, keptRowExistsStatement(shape, partition, cutoffs, holds));
  if (kept?.kept)
    return {
      status: 'skipped',
      rows: 0,
      reason: 'holds rows that are kept (longer retention, no rule, outside the filter, or held)',
    };
  const [counted] = await query<{ rows: string }>(sql, {
    text: `SELECT count(*)::bigint AS rows FROM ${partition}`,
    params: [],
  });
  return { status: 'would_drop', rows: Number(counted?.rows ?? 0) };
}

/**
 * Leaf partitions directly under the table whose upper bound is at or before the latest
 * cutoff, oldest first. The bound is read back from `pg_get_expr` (a literal in this session's
 * DateStyle, parsed in the same session); MAXVALUE and DEFAULT partitions have none.
 */
function candidatesStatement(shape: RowsShape, cutoffs: Cutoffs): Statement {
  const sql = new RowsSql(shape);
  const literal = `substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']*)''\\)')`;
  const upper = shape.zoned ? `${literal}::timestamptz` : sql.instant(`${literal}::timestamp`);
  return sql.statement(
    `SELECT n.nspname AS schema, c.relname AS name, bound.upper
       FROM pg_partition_tree(${sql.param(shape.table, 'text')}::regclass) AS tree
       JOIN pg_class c ON c.oid = tree.relid JOIN pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL (SELECT ${upper} AS upper) AS bound
      WHERE tree.isleaf AND tree.level = 1 AND bound.upper <= ${sql.param(latestCutoff(cutoffs), 'timestamptz')}
      ORDER BY bound.upper`,
  );
}

/** Some row the sweep would not delete. `IS NOT TRUE`: a NULL (no rule, NULL column) is kept too. */
function keptRowExistsStatement(shape: RowsShape, partition: string, cutoffs: Cutoffs, holds: Hold[]): Statement {
  const sql = new RowsSql(shape);
  return sql.statement(
    `SELECT EXISTS (SELECT 1 FROM ${partition} AS t WHERE (${sql.eligible(cutoffs)} AND ${sql.filter()} AND ${sql.notHeld(holds)}) IS NOT TRUE) AS kept`,
  );
}

async function auditDrop(
  tx: SqlExecutor,
  shape: RowsShape,
  context: RowsDeleteContext,
  partition: { partition: string; upperBound: Date },
  rows: number,
  cutoffs: Cutoffs,
): Promise<void> {
  const sql = new RowsSql(shape);
  const cte = rowAuditCte(
    sql,
    context.audit!,
    { action: 'partition_drop', status: 'dropped', archivedTo: shape.archive?.name ?? null },
    {
      from: '(VALUES (1)) AS one (n)',
      // One entry: the partition, with the number of rows it held.
      key: sql.param(partition.partition, 'text'),
      itemTimestamp: sql.param(partition.upperBound, 'timestamptz'),
      why: {
        rule: sql.param('partition entirely past the cutoffs', 'text'),
        cutoff: sql.param(latestCutoff(cutoffs), 'timestamptz'),
      },
      rowCount: sql.param(rows, 'bigint'),
    },
  );
  const statement = sql.statement(`WITH ${cte} SELECT 1`);
  await tx.query(statement.text, statement.params);
}

function query<R>(sql: SqlExecutor, statement: Statement): Promise<R[]> {
  return sql.query<R>(statement.text, statement.params);
}
