import type { EligibleItem } from '../engine/types.ts';
import { describeCause, SqlError } from '../errors.ts';
import type { SqlClient } from '../sql/client.ts';
import { quoteIdent } from '../sql/identifiers.ts';
import { COPIED_AT } from './postgresCatalog.ts';
import { parseKeys, type RowAuditValues, type RowsShape } from './postgresRowsSql.ts';
import { backupStatement, restoreStatement, type CopyTable } from './postgresRowsWriteSql.ts';
import type { BackupOutcome, RestoreOutcome } from './types.ts';

/**
 * Backup and restore of rows through a copy table (`backup.to`, or the archive table of an
 * `archive` policy): a table with the same columns, e.g. `CREATE TABLE … (LIKE documents)`;
 * a backup table also says when each copy was made (`retention_copied_at`), for pruning.
 */
/** A row that cannot be copied is not deleted (the engine drops it from the batch): `ok: false`. */
export async function backupRows(table: { sql: SqlClient; shape: RowsShape }, copy: CopyTable, items: EligibleItem[]): Promise<BackupOutcome[]> {
  const { batch } = parseKeys(table.shape, items.map((item) => item.key));
  let copied: Set<string>;
  try {
    const statement = backupStatement(table.shape, copy, batch);
    copied = new Set((await table.sql.query<{ key: string }>(statement.text, statement.params)).map((row) => row.key));
  } catch (error) {
    if (!(error instanceof SqlError)) throw error;
    return items.map((item) => ({ key: item.key, ok: false, error: `copy to ${copy.name} failed: ${describeCause(error)}` }));
  }
  return items.map((item) => (copied.has(item.key) ? { key: item.key, ok: true } : { key: item.key, ok: false, error: `no such row in ${table.shape.table}` }));
}

export async function restoreRows(table: { sql: SqlClient; shape: RowsShape }, copy: CopyTable, keys: string[], audit: RowAuditValues | undefined): Promise<RestoreOutcome[]> {
  const { batch, malformed } = parseKeys(table.shape, keys);
  const outcomes: RestoreOutcome[] = malformed.map((index) => ({ key: keys[index]!, status: 'failed', error: `not a key of ${table.shape.table}` }));
  if (batch.keys.length === 0) return outcomes;
  const statement = restoreStatement(table.shape, copy, batch, audit);
  const rows = await table.sql.query<{ ord: string; present: boolean; copied: boolean; restored: boolean }>(statement.text, statement.params);
  for (const row of rows) {
    // A row that exists (now, or appeared during the insert) wins over its copy.
    const status = row.restored ? 'restored' : row.present || row.copied ? 'exists' : 'no_backup';
    outcomes.push({ key: batch.keys[Number(row.ord) - 1]!, status });
  }
  return outcomes;
}


/** Deletes the copies made before `olderThan`, in one statement (backup tables are not in use by the application). */
export async function pruneCopies(sql: SqlClient, copy: CopyTable, olderThan: Date): Promise<number> {
  const [row] = await sql.query<{ pruned: number }>(`WITH gone AS (DELETE FROM ${copy.table} WHERE ${quoteIdent(COPIED_AT)} < $1 RETURNING 1) SELECT count(*)::int AS pruned FROM gone`, [olderThan]);
  return row?.pruned ?? 0;
}
