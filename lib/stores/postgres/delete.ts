import type { DeleteOptions, DeleteOutcome, Store } from '../../core/store.ts';
import type { EligibleItem } from '../../core/types.ts';
import { describeCause, SqlError, StoreError } from '../../errors.ts';
import type { SqlClient, SqlExecutor } from '../../sql/client.ts';
import { mayProceed } from '../common.ts';
import { type DeleteBatch, parseKeys, type RowAuditValues, type RowsShape } from './sql.ts';
import { childDeleteStatement, deleteStatement, lockStatement, remainingStatement } from './writeSql.ts';

/**
 * One batch of row deletions = one transaction with `SET LOCAL statement_timeout/lock_timeout`.
 * Plain rows: ONE statement selects, re-checks, locks (SKIP LOCKED), deletes, archives and
 * audits. With linked files or explicit children, the rows are locked first, then each file is
 * deleted through the blob store BEFORE its row (a failed file keeps its row), then children,
 * then the rows: a row is never deleted while its file or children remain.
 *
 * Locked rows are reported `kept` (error: locked), not `failed`: the row is in use, which is
 * expected and usually means it is being changed (often to something no longer eligible); it
 * stays eligible and is retried by the next run, the backlog and oldest-overdue measures still
 * count it, so a row locked for too long shows up as compliance lag, while `failed` would
 * charge normal application traffic to the failure-rate SLA.
 */
export interface RowsDeleteContext {
  sql: SqlClient;
  shape: RowsShape;
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  /** Absent: `audit: false`. */
  audit: RowAuditValues | undefined;
  blobStore: Store | undefined;
  errorContext: Record<string, unknown>;
}

/** Failures that concern this batch only (retried next run), not the store as a whole. */
const BATCH_SQLSTATES: Record<string, string> = {
  '57014': 'statement timeout',
  '55P03': 'lock timeout',
  '40P01': 'deadlock',
  '40001': 'serialization failure',
  '23503': 'still referenced by a foreign key',
};

/** Why `error` failed this batch only (undefined: a failure of the store itself, to throw). */
export function batchFailureReason(error: unknown): string | undefined {
  return error instanceof SqlError ? BATCH_SQLSTATES[String(error.context.sqlState)] : undefined;
}

const LOCKED = 'locked by another transaction; retried next run';
const NO_LONGER_ELIGIBLE = 'changed since the scan (timestamp, purpose or scope): no longer eligible';

/**
 * `options.beforeRequest` (the engine's lease check) runs before the transaction and before each
 * request for linked files: once it throws, nothing more is sent, and the rows not attempted (all
 * of them, or those whose file was not sent) get no outcome, which the engine records as such.
 */
export async function deleteRows(
  context: RowsDeleteContext,
  items: EligibleItem[],
  options: DeleteOptions = {},
): Promise<DeleteOutcome[]> {
  const { shape } = context;
  const { batch: keys, malformed } = parseKeys(
    shape,
    items.map((item) => item.key),
  );
  const outcomes: DeleteOutcome[] = malformed.map((index) => ({
    key: items[index]!.key,
    status: 'failed',
    error: `not a key of ${shape.table}`,
  }));
  const valid = items.filter((_, index) => !malformed.includes(index));
  if (valid.length === 0) return outcomes;
  if (!mayProceed(options.beforeRequest)) return outcomes;
  const batch: DeleteBatch = {
    ...keys,
    // ISO strings: cheaper for the driver to send than Dates, and the parameter is cast to timestamptz[].
    cutoffs: valid.map((item) => item.cutoff.toISOString()),
    purposes: valid.map((item) => (shape.by ? (item.attributes?.[shape.by.name] ?? null) : null)),
    rules: valid.map((item) => item.rule),
  };
  const decided = new Map<number, DeleteOutcome>();
  /** Files deleted for rows not yet deleted: said in the error if the transaction then fails. */
  const deletedFiles = new Map<number, string>();
  /** Rows whose file was never sent for deletion (the lease check stopped the blob store): no outcome. */
  const unattempted = new Set<number>();
  const settle = (ord: number, outcome: Omit<DeleteOutcome, 'key'>) =>
    decided.set(ord, { key: valid[ord - 1]!.key, ...outcome });
  try {
    await context.sql.transaction(async (tx) => {
      await tx.query(`SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)`, [
        String(context.statementTimeoutMs),
        String(context.lockTimeoutMs),
      ]);
      const deleted =
        shape.blob || shape.children.length > 0
          ? await lockFirst(context, tx, batch, valid, { settle, deletedFiles, unattempted, options })
          : await run(tx, deleteStatement(shape, batch, { lock: true, ...auditOption(context) }));
      for (const row of deleted)
        settle(Number(row.ord), {
          status: 'deleted',
          ...(row.size === undefined || row.size === null ? {} : { bytes: row.size }),
        });
      const rest = valid.map((_, index) => index + 1).filter((ord) => !decided.has(ord) && !unattempted.has(ord));
      if (rest.length === 0) return;
      const remaining = await run<{ ord: string; eligible: boolean }>(tx, remainingStatement(shape, batch, rest));
      for (const row of remaining)
        settle(Number(row.ord), { status: 'kept', error: row.eligible ? LOCKED : NO_LONGER_ELIGIBLE });
      for (const ord of rest) if (!decided.has(ord)) settle(ord, { status: 'missing' });
    });
  } catch (error) {
    const reason = batchFailureReason(error);
    if (reason === undefined) {
      throw new StoreError(
        `deleting ${valid.length} rows from ${shape.table} failed: ${describeCause(error)}`,
        { ...context.errorContext, key: valid[0]?.key },
        { cause: error },
      );
    }
    // Rolled back: no row went. Files deleted before the failure stay deleted (see the audit notes).
    const attempted = valid.flatMap((item, index) => (unattempted.has(index + 1) ? [] : [{ item, ord: index + 1 }]));
    return [
      ...outcomes,
      ...attempted.map(({ item, ord }) => ({
        key: item.key,
        status: 'failed' as const,
        error: `${reason}: ${describeCause(error)}${fileNote(deletedFiles.get(ord))}`,
      })),
    ];
  }
  return [...outcomes, ...decided.values()];
}

function auditOption(context: RowsDeleteContext): { audit?: RowAuditValues } {
  return context.audit ? { audit: context.audit } : {};
}

type DeletedRow = { ord: string; size?: number | null };

function run<R = DeletedRow>(tx: SqlExecutor, statement: { text: string; params: unknown[] }): Promise<R[]> {
  return tx.query<R>(statement.text, statement.params);
}

function fileNote(file: string | undefined): string {
  return file === undefined ? '' : `; its linked file ${file} was already deleted (the row goes next run)`;
}

/**
 * Lock the eligible rows, delete their files, then children, then the rows that lost nothing
 * they must keep. Returns the deleted positions; files that failed or were kept are settled.
 */
async function lockFirst(
  context: RowsDeleteContext,
  tx: SqlExecutor,
  batch: DeleteBatch,
  items: EligibleItem[],
  track: {
    settle: (ord: number, outcome: Omit<DeleteOutcome, 'key'>) => void;
    deletedFiles: Map<number, string>;
    unattempted: Set<number>;
    options: DeleteOptions;
  },
): Promise<DeletedRow[]> {
  const { settle, deletedFiles, unattempted } = track;
  const { shape } = context;
  const lockedRows = await run<{ ord: string; blob_key: string | null; item_ts: Date }>(
    tx,
    lockStatement(shape, batch),
  );
  // Holds were matched against the file the scan saw: a row pointing at another file since then
  // is kept (its new file may be held), and the next run decides on what it points at now.
  const locked = lockedRows.filter((row) => {
    const scanned = items[Number(row.ord) - 1]!.linkedKey ?? null;
    if (scanned === row.blob_key) return true;
    settle(Number(row.ord), {
      status: 'kept',
      error: `linked file changed since the scan (${scanned ?? 'none'} → ${row.blob_key ?? 'none'}); retried next run`,
    });
    return false;
  });
  const files = await deleteLinkedFiles(
    context,
    locked.map((row) => ({ ...row, item: items[Number(row.ord) - 1]! })),
    track.options,
  );
  const proceed: number[] = [];
  const fileStatus: Array<string | null> = items.map(() => null);
  for (const row of locked) {
    const ord = Number(row.ord);
    const file = row.blob_key === null ? undefined : files.get(row.blob_key);
    if (row.blob_key !== null && file === undefined) {
      // Never sent: the row stays, with its file.
      unattempted.add(ord);
    } else if (file === undefined || file.status === 'deleted' || file.status === 'missing') {
      proceed.push(ord);
      fileStatus[ord - 1] = file?.status ?? null;
      if (file?.status === 'deleted') deletedFiles.set(ord, row.blob_key!);
    } else if (file.status === 'kept') {
      settle(ord, { status: 'kept', error: youngFile(row.blob_key!, items[ord - 1]!.cutoff, file.error) });
    } else {
      settle(ord, {
        status: 'failed',
        error: `linked file ${row.blob_key} could not be deleted, row kept: ${file.error ?? 'unknown error'}`,
      });
    }
  }
  if (proceed.length === 0) return [];
  for (const child of shape.children) await run(tx, childDeleteStatement(shape, child, batch, proceed));
  return run(tx, deleteStatement(shape, batch, { lock: false, only: proceed, fileStatus, ...auditOption(context) }));
}

/**
 * Why a row stays with its file: the file's own store found it modified at or after the row's
 * cutoff. That is young data under invariant 1, whatever the row's age: the row and the file are
 * both kept, and stay eligible (backlog) until the file is older than the cutoff.
 */
function youngFile(file: string, cutoff: Date, detail: string | undefined): string {
  return `linked file ${file} modified after the cutoff ${cutoff.toISOString()}${detail ? ` (${detail})` : ''}; row and file kept`;
}

/** One blob-store call for the batch's distinct files; a throw fails every file of the batch. */
async function deleteLinkedFiles(
  context: RowsDeleteContext,
  rows: Array<{ blob_key: string | null; item_ts: Date; item: EligibleItem }>,
  options: DeleteOptions,
): Promise<Map<string, DeleteOutcome>> {
  const byFile = new Map<string, EligibleItem>();
  for (const row of rows) {
    // The file goes under its row's retention: the row's timestamp and cutoff, so a blob store
    // that re-checks (fs: mtime ≥ cutoff → kept) never deletes a file newer than the cutoff.
    const { linkedKey: _row, ...item } = row.item;
    if (row.blob_key !== null && !byFile.has(row.blob_key))
      byFile.set(row.blob_key, { ...item, key: row.blob_key, timestamp: row.item_ts });
  }
  if (byFile.size === 0 || !context.blobStore) return new Map();
  try {
    const outcomes = await context.blobStore.delete([...byFile.values()], options);
    return new Map(outcomes.map((outcome) => [outcome.key, outcome]));
  } catch (error) {
    return new Map([...byFile.keys()].map((key) => [key, { key, status: 'failed', error: describeCause(error) }]));
  }
}
