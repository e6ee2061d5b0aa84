import type { AuditIntent, AuditQuery, AuditRecord, AuditResolution, AuditStatus } from '../../core/control.ts';
import type { SqlClient, SqlExecutor } from '../../sql/client.ts';
import { insertChained, resolveChained } from './chain.ts';
import { AUDIT_COLUMNS, type AuditRow, toAuditRecord } from './records.ts';

/**
 * The audit trail's statements. Every batch is one transaction of a fixed few statements
 * whatever its size (10,000 intents = the same round trips as 1): rows travel as one array
 * parameter per column and `unnest` zips them. Each is chained (chain.ts): its records' states
 * are appended to their policy's chain in the same transaction.
 */
export type AuditEntry = AuditIntent & { status: AuditStatus; error?: string };

/** Pending entries are intents (unresolved); any other status is recorded already resolved. */
export async function insertAuditEntries(sql: SqlClient, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const chains = [...new Set(entries.map((entry) => entry.policy))];
  await sql.transaction((tx) =>
    insertChained(
      tx,
      (ids, now) => {
        // Written with the times the digests are computed from: the database's `now()` of this
        // transaction, as read (whole milliseconds), so the stored record is exactly what was chained.
        const records: AuditRecord[] = entries.map((entry, index) => ({
          ...entry,
          id: ids[index]!,
          createdAt: now,
          resolvedAt: entry.status === 'pending' ? null : now,
          error: entry.error ?? null,
        }));
        const column = <T>(pick: (record: AuditRecord) => T): T[] => records.map(pick);
        return {
          records,
          insert: {
            cte: `inserted AS (INSERT INTO retention.audit (id, run_id, policy, store, key, item_timestamp, size, rule, cutoff, actor, trigger, action, status, error, created_at, resolved_at)
              SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bigint[],
                                   $8::text[], $9::timestamptz[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
                                   $15::timestamptz[], $16::timestamptz[]))`,
            params: [
              column((record) => record.id),
              column((record) => record.runId),
              column((record) => record.policy),
              column((record) => record.store),
              column((record) => record.key),
              column((record) => record.itemTimestamp),
              column((record) => record.size ?? null),
              column((record) => record.rule),
              column((record) => record.cutoff),
              column((record) => record.actor),
              column((record) => record.trigger),
              column((record) => record.action),
              column((record) => record.status),
              column((record) => record.error),
              column((record) => record.createdAt),
              column((record) => record.resolvedAt),
            ],
          },
        };
      },
      chains,
      entries.length,
    ),
  );
}

/**
 * A run resolves its own `pending` intents, and its `abandoned` ones: a run that took over while
 * this one stalled found the item still present and said so, then this one deleted it. The
 * record must say what happened. Any other resolution is never overwritten.
 */
export async function resolveRunIntents(sql: SqlClient, runId: string, resolutions: AuditResolution[]): Promise<void> {
  if (resolutions.length === 0) return;
  const keys = resolutions.map((r) => r.key);
  await sql.transaction((tx) =>
    resolveChained(
      tx,
      {
        chains: 'SELECT policy AS chain FROM retention.audit WHERE run_id = $2 AND key = ANY($3::text[])',
        params: [runId, keys],
      },
      async (now) =>
        (
          await tx.query<AuditRow>(
            `UPDATE retention.audit
                SET status = resolution.status, error = resolution.error, resolved_at = $5
               FROM unnest($2::text[], $3::text[], $4::text[]) AS resolution (key, status, error)
              WHERE audit.run_id = $1 AND audit.key = resolution.key AND audit.status IN ('pending', 'abandoned')
             RETURNING ${qualified('audit')}`,
            [runId, keys, resolutions.map((r) => r.status), resolutions.map((r) => r.error ?? null), now],
          )
        ).map(toAuditRecord),
    ),
  );
}

/** Same rule as above: a record resolved meanwhile (by a concurrent recovery) keeps its first resolution. */
export async function resolveIntentsById(
  sql: SqlClient,
  resolutions: Array<{ id: number; status: Exclude<AuditStatus, 'pending'> }>,
): Promise<void> {
  if (resolutions.length === 0) return;
  const ids = resolutions.map((r) => r.id);
  await sql.transaction((tx) =>
    resolveChained(
      tx,
      { chains: 'SELECT policy AS chain FROM retention.audit WHERE id = ANY($2::bigint[])', params: [ids] },
      async (now) =>
        (
          await tx.query<AuditRow>(
            `UPDATE retention.audit SET status = resolution.status, resolved_at = $3
               FROM unnest($1::bigint[], $2::text[]) AS resolution (id, status)
              WHERE audit.id = resolution.id AND audit.status = 'pending'
             RETURNING ${qualified('audit')}`,
            [ids, resolutions.map((r) => r.status), now],
          )
        ).map(toAuditRecord),
    ),
  );
}

/** The audit columns of `table` (an UPDATE … FROM returns those of every table otherwise ambiguous). */
const qualified = (table: string): string =>
  AUDIT_COLUMNS.split(', ')
    .map((column) => `${table}.${column}`)
    .join(', ');

/** Oldest first: the order they were written in, which is the order to resolve them. */
export async function selectPendingIntents(
  sql: SqlExecutor,
  policy: string,
  exceptRunId?: string,
): Promise<AuditRecord[]> {
  const rows = await sql.query<AuditRow>(
    `SELECT ${AUDIT_COLUMNS} FROM retention.audit
      WHERE policy = $1 AND status = 'pending' AND ($2::text IS NULL OR run_id <> $2) ORDER BY id`,
    [policy, exceptRunId ?? null],
  );
  return rows.map(toAuditRecord);
}

/** Newest first; absent filters match everything. The time filters read when the record was last written. */
export async function selectAudit(sql: SqlExecutor, query: AuditQuery): Promise<AuditRecord[]> {
  const rows = await sql.query<AuditRow>(
    `SELECT ${AUDIT_COLUMNS} FROM retention.audit
      WHERE ($1::text IS NULL OR run_id = $1) AND ($2::text IS NULL OR policy = $2) AND ($3::text IS NULL OR key = $3)
        AND ($5::text IS NULL OR action = $5) AND ($6::text IS NULL OR status = $6)
        AND ($7::timestamptz IS NULL OR COALESCE(resolved_at, created_at) >= $7)
        AND ($8::timestamptz IS NULL OR COALESCE(resolved_at, created_at) < $8)
      ORDER BY id DESC LIMIT $4`,
    [
      query.runId ?? null,
      query.policy ?? null,
      query.key ?? null,
      query.limit,
      query.action ?? null,
      query.status ?? null,
      query.since ?? null,
      query.until ?? null,
    ],
  );
  return rows.map(toAuditRecord);
}
