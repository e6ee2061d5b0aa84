import { clipError } from '../../core/attention.ts';
import type { AttentionItem, FailureStreakUpdate } from '../../core/control.ts';
import type { SqlClient } from '../../sql/client.ts';

/**
 * Failure streaks in `retention.attention` (migration 4): the rules of core/attention.ts
 * `nextStreaks` in two statements, whatever the number of keys, in one transaction.
 */
const COLUMNS =
  'policy, key, failures, first_failed_at, last_failed_at, last_run_id, last_error, dismissed_by, dismissed_reason, dismissed_at';

interface AttentionRow {
  policy: string;
  key: string;
  failures: number;
  first_failed_at: Date;
  last_failed_at: Date;
  last_run_id: string;
  last_error: string;
  dismissed_by: string | null;
  dismissed_reason: string | null;
  dismissed_at: Date | null;
}

const toAttentionItem = (row: AttentionRow): AttentionItem => ({
  policy: row.policy,
  key: row.key,
  failures: Number(row.failures),
  firstFailedAt: row.first_failed_at,
  lastFailedAt: row.last_failed_at,
  lastRunId: row.last_run_id,
  lastError: row.last_error,
  dismissed:
    row.dismissed_by === null
      ? null
      : { by: row.dismissed_by, reason: row.dismissed_reason ?? '', at: row.dismissed_at ?? row.last_failed_at },
});

export async function noteStreaks(sql: SqlClient, update: FailureStreakUpdate): Promise<void> {
  const failed = new Map(update.failed.map((failure) => [failure.key, clipError(failure.error)]));
  const failedKeys = [...failed.keys()];
  const settled = update.settled.filter((key) => !failed.has(key));
  if (failedKeys.length === 0 && settled.length === 0 && !update.wholePass) return;
  await sql.transaction(async (tx) => {
    await tx.query(
      `DELETE FROM retention.attention
        WHERE policy = $1 AND NOT (key = ANY($2::text[])) AND ($3::boolean OR key = ANY($4::text[]))`,
      [update.policy, failedKeys, update.wholePass, settled],
    );
    if (failedKeys.length === 0) return;
    // A run noted twice counts once: the row already carries its run id.
    await tx.query(
      `INSERT INTO retention.attention AS streak
         (policy, key, failures, first_failed_at, last_failed_at, last_run_id, last_error)
       SELECT $1, failed.key, 1, now(), now(), $2, failed.error
         FROM unnest($3::text[], $4::text[]) AS failed (key, error)
       ON CONFLICT (policy, key) DO UPDATE
         SET failures = streak.failures + 1, last_failed_at = now(), last_run_id = EXCLUDED.last_run_id,
             last_error = EXCLUDED.last_error
         WHERE streak.last_run_id <> EXCLUDED.last_run_id`,
      [update.policy, update.runId, failedKeys, [...failed.values()]],
    );
  });
}

export async function selectStreaks(sql: SqlClient, policy: string, minFailures: number): Promise<AttentionItem[]> {
  const rows = await sql.query<AttentionRow>(
    `SELECT ${COLUMNS} FROM retention.attention
      WHERE policy = $1 AND failures >= $2 ORDER BY failures DESC, key COLLATE "C"`,
    [policy, minFailures],
  );
  return rows.map(toAttentionItem);
}

export async function dismissStreak(
  sql: SqlClient,
  request: { policy: string; key: string; by: string; reason: string },
): Promise<AttentionItem | null> {
  const rows = await sql.query<AttentionRow>(
    `UPDATE retention.attention SET dismissed_by = $3, dismissed_reason = $4, dismissed_at = now()
      WHERE policy = $1 AND key = $2 RETURNING ${COLUMNS}`,
    [request.policy, request.key, request.by, request.reason],
  );
  return rows[0] ? toAttentionItem(rows[0]) : null;
}
