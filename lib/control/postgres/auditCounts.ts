import type { AuditCount, AuditCountQuery } from '../../core/control.ts';
import type { SqlExecutor } from '../../sql/client.ts';

/**
 * The index the period counts read: one policy's records in creation order. Without it a
 * monthly report reads every record the policy ever had (through `audit_policy_key`).
 */
export const AUDIT_COUNTS_INDEX = 'CREATE INDEX audit_policy_created ON retention.audit (policy, created_at)';

/** One statement, grouped in the database: a month of a busy policy is a few thousand groups, not its records. */
export async function countAudit(sql: SqlExecutor, query: AuditCountQuery): Promise<AuditCount[]> {
  const rows = await sql.query<Omit<AuditCount, 'count'> & { count: string }>(
    `SELECT run_id AS "runId", action, status, rule, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
            count(*) AS count
       FROM retention.audit
      WHERE policy = $1 AND created_at >= $2 AND created_at < $3
      GROUP BY 1, 2, 3, 4, 5
      ORDER BY 5, 1, 2, 3, 4`,
    [query.policy, query.from, query.to],
  );
  return rows.map((row) => ({ ...row, count: Number(row.count) }));
}
