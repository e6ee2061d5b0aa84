import { durationMs } from '../../core/durations.ts';
import type { StoreMaintenance } from '../../core/store.ts';
import type { MaintenanceOutcome } from '../../core/types.ts';
import { describeCause, SqlError } from '../../errors.ts';
import type { SqlExecutor } from '../../sql/client.ts';
import type { TableAccess } from './capabilities.ts';

/** Less than this left of the budget: not started (a VACUUM cut at once frees nothing). */
const MIN_VACUUM_MS = 1_000;
/** PostgreSQL's `query_canceled`: what a statement_timeout raises. */
const QUERY_CANCELED = '57014';

/**
 * The weekly VACUUM of the runbooks, done when it is due: after a live run that deleted at least
 * `vacuum.minDeletedFraction` of the rows in its scope, `VACUUM (ANALYZE)` the table (its
 * partitions with it), outside the deleting transactions and never FULL (no exclusive lock:
 * readers and writers go on). It runs on one connection with `statement_timeout` set to what is
 * left of the budget, so the budget still holds. A role that does not own the table cannot vacuum
 * it (PostgreSQL only warns and does nothing): that is reported, not attempted.
 */
export function rowsMaintenance(access: TableAccess): StoreMaintenance | undefined {
  const { vacuum } = access.config;
  if (!vacuum) return undefined;
  return {
    async afterRun({ deleted, inScope, timeLeftMs }) {
      if (deleted === 0 || deleted < vacuum.minDeletedFraction * inScope) return undefined;
      const started = Date.now();
      const outcome = (fields: Omit<MaintenanceOutcome, 'action' | 'durationSeconds'>): MaintenanceOutcome => ({
        action: 'vacuum',
        ...fields,
        durationSeconds: Math.round(Date.now() - started) / 1000,
      });
      return access.guarded('vacuum', async ({ sql, shape }) => {
        const target = shape.table;
        const before = await deadTuples(sql, target);
        if (!before.owned)
          return outcome({
            target,
            status: 'skipped',
            reason:
              'the role is not the table owner, which VACUUM needs (run it as the owner, or let autovacuum do it)',
            deadTuplesBefore: before.dead,
            deadTuplesAfter: before.dead,
          });
        if (timeLeftMs < MIN_VACUUM_MS)
          return outcome({
            target,
            status: 'skipped',
            reason: 'no budget left for it',
            deadTuplesBefore: before.dead,
            deadTuplesAfter: before.dead,
          });
        const cut = await sql.session(async (connection) => {
          await connection.query(`SET statement_timeout = ${Math.floor(timeLeftMs)}`);
          await connection.query(`SET lock_timeout = ${durationMs(access.config.lockTimeout)}`);
          try {
            await connection.query(`VACUUM (ANALYZE) ${target}`);
            return undefined;
          } catch (error) {
            if (error instanceof SqlError && error.context.sqlState === QUERY_CANCELED) return error;
            throw error;
          } finally {
            await connection.query('RESET statement_timeout');
            await connection.query('RESET lock_timeout');
          }
        });
        const after = await deadTuples(sql, target);
        return outcome({
          target,
          status: cut ? 'timed_out' : 'done',
          ...(cut ? { reason: `stopped at the budget: ${describeCause(cut)}` } : {}),
          deadTuplesBefore: before.dead,
          deadTuplesAfter: after.dead,
        });
      });
    },
  };
}

/** Dead tuples over the table and its partitions, and whether this role owns the table. */
async function deadTuples(sql: SqlExecutor, table: string): Promise<{ dead: number | null; owned: boolean }> {
  const [row] = await sql.query<{ dead: string | null; owned: boolean }>(
    `SELECT (SELECT sum(s.n_dead_tup) FROM pg_stat_all_tables AS s
              WHERE s.relid = c.oid OR s.relid IN (SELECT relid FROM pg_partition_tree(c.oid))) AS dead,
            pg_has_role(c.relowner, 'USAGE') AS owned
       FROM pg_class AS c WHERE c.oid = $1::regclass`,
    [table],
  );
  return { dead: row?.dead == null ? null : Number(row.dead), owned: row?.owned ?? false };
}
