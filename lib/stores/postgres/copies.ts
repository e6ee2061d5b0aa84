import type { BackupOutcome, BackupRef, RestoreOutcome, Store, StoreBackups } from '../../core/store.ts';
import type { EligibleItem } from '../../core/types.ts';
import { describeCause, SqlError } from '../../errors.ts';
import type { SqlClient } from '../../sql/client.ts';
import { quoteIdent } from '../../sql/identifiers.ts';
import { COPIED_AT } from './catalog.ts';
import { linkedFileStatuses } from './rowAudit.ts';
import { parseKeys, type RowAuditValues, type RowsShape } from './sql.ts';
import { backupStatement, type CopyTable, linkedCopiesStatement, restoreStatement } from './writeSql.ts';

/**
 * Backup and restore of rows through a copy table (`backup.to`, or the archive table of an
 * `archive` policy): a table with the same columns, e.g. `CREATE TABLE … (LIKE documents)`;
 * a backup table also says when each copy was made (`retention_copied_at`), for pruning.
 */
/** A row that cannot be copied is not deleted (the engine drops it from the batch): `ok: false`. */
export async function backupRows(
  table: { sql: SqlClient; shape: RowsShape },
  copy: CopyTable,
  items: EligibleItem[],
): Promise<BackupOutcome[]> {
  const { batch } = parseKeys(
    table.shape,
    items.map((item) => item.key),
  );
  let copied: Set<string>;
  try {
    const statement = backupStatement(table.shape, copy, batch);
    copied = new Set((await table.sql.query<{ key: string }>(statement.text, statement.params)).map((row) => row.key));
  } catch (error) {
    if (!(error instanceof SqlError)) throw error;
    return items.map((item) => ({
      key: item.key,
      ok: false,
      error: `copy to ${copy.name} failed: ${describeCause(error)}`,
    }));
  }
  return items.map((item) =>
    copied.has(item.key)
      ? { key: item.key, ok: true }
      : { key: item.key, ok: false, error: `no such row in ${table.shape.table}` },
  );
}

export async function restoreRows(
  table: { sql: SqlClient; shape: RowsShape },
  copy: CopyTable,
  keys: string[],
  audit: RowAuditValues | undefined,
): Promise<RestoreOutcome[]> {
  const { batch, malformed } = parseKeys(table.shape, keys);
  const outcomes: RestoreOutcome[] = malformed.map((index) => ({
    key: keys[index]!,
    status: 'failed',
    error: `not a key of ${table.shape.table}`,
  }));
  if (batch.keys.length === 0) return outcomes;
  const statement = restoreStatement(table.shape, copy, batch, audit);
  const rows = await table.sql.query<{ ord: string; present: boolean; copied: boolean; restored: boolean }>(
    statement.text,
    statement.params,
  );
  for (const row of rows) {
    // A row that exists (now, or appeared during the insert) wins over its copy.
    const status = row.restored ? 'restored' : row.present || row.copied ? 'exists' : 'no_backup';
    outcomes.push({ key: batch.keys[Number(row.ord) - 1]!, status });
  }
  return outcomes;
}

/** The blob store of a policy's linked files, its backups, and where they go (`blob.backupTo`). */
export interface LinkedFiles {
  store: Store;
  backups: StoreBackups;
  backupTo: string;
}

/**
 * Rows with linked files are copied together with their files (invariant 11: what is deleted
 * together comes back together). Each file goes to the blob store's own backup (`backupTo`,
 * under the policy and run, as for blob policies); a row is copied only once its file is, and a
 * row whose file could not be copied is not deleted (`ok: false`). A file already gone is
 * nothing to copy: its row is copied alone, and its deletion records the file `missing`.
 */
export async function backupRowsWithFiles(
  table: { sql: SqlClient; shape: RowsShape },
  copy: CopyTable,
  items: EligibleItem[],
  files: LinkedFiles,
  ref: BackupRef,
): Promise<BackupOutcome[]> {
  const linked = [...new Set(items.flatMap((item) => (item.linkedKey === undefined ? [] : [item.linkedKey])))];
  const present = linked.length > 0 ? await files.store.present(linked) : new Set<string>();
  const toCopy = items.filter((item) => item.linkedKey !== undefined && present.has(item.linkedKey));
  // One copy per file, under its row's timestamp and cutoff (as deleteRows deletes it).
  const byFile = new Map(
    toCopy.map((item) => [
      item.linkedKey!,
      { key: item.linkedKey!, timestamp: item.timestamp, cutoff: item.cutoff, rule: item.rule },
    ]),
  );
  const copied =
    byFile.size > 0 ? await files.backups.backup([...byFile.values()], { ...ref, to: files.backupTo }) : [];
  const failedFiles = new Map(
    copied.filter((outcome) => !outcome.ok).map((outcome) => [outcome.key, outcome.error ?? 'unknown error']),
  );
  const rowsToCopy = items.filter((item) => item.linkedKey === undefined || !failedFiles.has(item.linkedKey));
  const outcomes = rowsToCopy.length > 0 ? await backupRows(table, copy, rowsToCopy) : [];
  for (const item of items) {
    const error = item.linkedKey === undefined ? undefined : failedFiles.get(item.linkedKey);
    if (error !== undefined)
      outcomes.push({
        key: item.key,
        ok: false,
        error: `linked file ${item.linkedKey} could not be copied to ${files.backupTo}: ${error}`,
      });
  }
  return outcomes;
}

/**
 * Restores rows with their linked files: each file first (from the backup of the run that
 * deleted it), then only the rows whose file is back (or already there), so a row never comes
 * back pointing at nothing. A row whose file cannot come back stays deleted and is `failed`
 * with the file's outcome, for the operator to see and the CLI to exit non-zero on. Files the
 * run did not delete (recorded `missing`, or no file) are not looked for.
 */
export async function restoreRowsWithFiles(
  table: { sql: SqlClient; shape: RowsShape },
  copy: CopyTable,
  keys: string[],
  audit: RowAuditValues | undefined,
  files: LinkedFiles,
  ref: BackupRef,
): Promise<RestoreOutcome[]> {
  const { batch, malformed } = parseKeys(table.shape, keys);
  const statement = linkedCopiesStatement(table.shape, copy, batch);
  const links =
    batch.keys.length > 0
      ? await table.sql.query<{ ord: string; present: boolean; file: string | null }>(statement.text, statement.params)
      : [];
  const recorded = audit
    ? await linkedFileStatuses(table.sql, audit.policy, ref.runId, batch.keys)
    : new Map<string, string | null>();
  // key → the file that must come back before it (rows that exist now are left to restoreRows: `exists`).
  const needs = new Map<string, string>();
  for (const link of links) {
    const key = batch.keys[Number(link.ord) - 1]!;
    if (!link.present && link.file !== null && recorded.get(key) !== 'missing') needs.set(key, link.file);
  }
  const fileOutcomes = new Map<string, RestoreOutcome>();
  const wanted = [...new Set(needs.values())];
  if (wanted.length > 0)
    for (const outcome of await files.backups.restore({ ...ref, to: files.backupTo }, wanted))
      fileOutcomes.set(outcome.key, outcome);
  const notBack: RestoreOutcome[] = [];
  const rowKeys = keys.filter((key, index) => {
    const file = needs.get(key);
    if (malformed.includes(index) || file === undefined) return true;
    const outcome = fileOutcomes.get(file);
    if (outcome?.status === 'restored' || outcome?.status === 'exists') return true;
    const why = outcome ? `${outcome.status}${outcome.error ? `: ${outcome.error}` : ''}` : 'no outcome';
    notBack.push({
      key,
      status: 'failed',
      error: `linked file ${file} could not be restored from ${files.backupTo} (${why}); row not restored`,
    });
    return false;
  });
  return [...(rowKeys.length > 0 ? await restoreRows(table, copy, rowKeys, audit) : []), ...notBack];
}

/** Deletes the copies made before `olderThan`, in one statement (backup tables are not in use by the application). */
export async function pruneCopies(sql: SqlClient, copy: CopyTable, olderThan: Date): Promise<number> {
  const [row] = await sql.query<{ pruned: number }>(
    `WITH gone AS (DELETE FROM ${copy.table} WHERE ${quoteIdent(COPIED_AT)} < $1 RETURNING 1) SELECT count(*)::int AS pruned FROM gone`,
    [olderThan],
  );
  return row?.pruned ?? 0;
}
