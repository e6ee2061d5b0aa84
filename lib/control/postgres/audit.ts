import type { AuditIntent, AuditQuery, AuditRecord, AuditResolution, AuditStatus } from '../../core/control.ts';
import type { SqlExecutor } from '../../sql/client.ts';
import { AUDIT_COLUMNS, type AuditRow, toAuditRecord } from './records.ts';

/**
 * The audit trail's statements. Every batch is ONE statement whatever its size (10,000 intents
 * = one round trip): rows travel as one array parameter per column and `unnest` zips them.
 */
export type AuditEntry = AuditIntent & { status: AuditStatus; error?: string };

/** Pending entries are intents (unresolved); any other status is recorded already resolved. */
export async function insertAuditEntries(sql: SqlExecutor, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const column = <T>(pick: (entry: AuditEntry) => T): T[] => entries.map(pick);
  await sql.query(
    `INSERT INTO retention.audit (run_id, policy, store, key, item_timestamp, size, rule, cutoff, actor, trigger, action, status, error, resolved_at)
     SELECT run_id, policy, store, key, item_timestamp, size, rule, cutoff, actor, trigger, action, status, error,
            CASE WHEN status = 'pending' THEN NULL ELSE now() END
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::text[],
                   $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
         AS batch (run_id, policy, store, key, item_timestamp, size, rule, cutoff, actor, trigger, action, status, error)`,
    [
      column((entry) => entry.runId),
      column((entry) => entry.policy),
      column((entry) => entry.store),
      column((entry) => entry.key),
      column((entry) => entry.itemTimestamp),
      column((entry) => entry.size ?? null),
      column((entry) => entry.rule),
      column((entry) => entry.cutoff),
      column((entry) => entry.actor),
      column((entry) => entry.trigger),
      column((entry) => entry.action),
      column((entry) => entry.status),
      column((entry) => entry.error ?? null),
    ],
  );
}

/**
 * A run resolves its own `pending` intents, and its `abandoned` ones: a run that took over while
 * this one stalled found the item still present and said so, then this one deleted it. The
 * record must say what happened. Any other resolution is never overwritten.
 */
export async function resolveRunIntents(
  sql: SqlExecutor,
  runId: string,
  resolutions: AuditResolution[],
): Promise<void> {
  if (resolutions.length === 0) return;
  await sql.query(
    `UPDATE retention.audit
        SET status = resolution.status, error = resolution.error, resolved_at = now()
       FROM unnest($2::text[], $3::text[], $4::text[]) AS resolution (key, status, error)
      WHERE audit.run_id = $1 AND audit.key = resolution.key AND audit.status IN ('pending', 'abandoned')`,
    [runId, resolutions.map((r) => r.key), resolutions.map((r) => r.status), resolutions.map((r) => r.error ?? null)],
  );
}

/** Same rule as above: a record resolved meanwhile (by a concurrent recovery) keeps its first resolution. */
export async function resolveIntentsById(
  sql: SqlExecutor,
  resolutions: Array<{ id: number; status: Exclude<AuditStatus, 'pending'> }>,
): Promise<void> {
  if (resolutions.length === 0) return;
  await sql.query(
    `UPDATE retention.audit SET status = resolution.status, resolved_at = now()
       FROM unnest($1::bigint[], $2::text[]) AS resolution (id, status)
      WHERE audit.id = resolution.id AND audit.status = 'pending'`,
    [resolutions.map((r) => r.id), resolutions.map((r) => r.status)],
  );
}

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
