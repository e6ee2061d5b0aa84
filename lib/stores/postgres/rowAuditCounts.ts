import type { AuditCount, AuditCountQuery } from '../../core/control.ts';
import type { SqlClient } from '../../sql/client.ts';

/** The period counts read one policy's batches in creation order (added to `ROW_AUDIT_DDL`). */
export const ROW_AUDIT_COUNTS_INDEX =
  'CREATE INDEX IF NOT EXISTS row_audit_policy_created ON retention.row_audit (policy, created_at)';

/**
 * One policy's `retention.row_audit` in a period, counted as the control store counts its records
 * (`ControlStore.auditCounts`): rows per run, action, rule and day. A batch under one rule counts
 * its `row_count` without expanding; a partition drop is one batch holding its row count; only
 * batches under several rules are expanded, to their per-row rule indexes (as
 * `row_audit_entries` resolves them), never to their keys.
 */
export async function countRowAudit(sql: SqlClient, policy: string, query: AuditCountQuery): Promise<AuditCount[]> {
  if (query.policy !== policy) return [];
  const rows = await sql.query<Omit<AuditCount, 'count'> & { count: string }>(
    `WITH batches AS (
       SELECT COALESCE(run_id, '') AS run_id, action, row_count, rules, rule_of,
              CASE WHEN action = 'restore' THEN 'restored' ELSE 'deleted' END AS status,
              to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day
         FROM retention.row_audit WHERE policy = $1 AND created_at >= $2 AND created_at < $3
     ), counted AS (
       SELECT run_id, action, status, rules[1] AS rule, day, row_count AS n
         FROM batches WHERE cardinality(rules) = 1 OR action = 'partition_drop'
       UNION ALL
       SELECT b.run_id, b.action, b.status,
              b.rules[COALESCE(b.rule_of[o], CASE WHEN cardinality(b.rules) = b.row_count THEN o ELSE 1 END)], b.day, 1
         FROM batches AS b CROSS JOIN LATERAL generate_series(1, b.row_count) AS o
        WHERE cardinality(b.rules) > 1 AND b.action <> 'partition_drop'
     )
     SELECT run_id AS "runId", action, status, rule, day, sum(n) AS count
       FROM counted GROUP BY 1, 2, 3, 4, 5 ORDER BY 5, 1, 2, 3, 4`,
    [policy, query.from, query.to],
  );
  return rows.map((row) => ({ ...row, count: Number(row.count) }));
}
