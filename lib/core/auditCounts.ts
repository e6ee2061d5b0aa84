import type { AuditCount, AuditCountQuery, AuditRecord } from './control.ts';

/**
 * Groups records as `ControlStore.auditCounts` answers (run, action, status, rule, UTC day of
 * creation), for backends that count by reading (DynamoDB, the in-memory fakes). Records outside
 * the query's policy or period are passed over.
 */
export class AuditCounter {
  private readonly groups = new Map<string, AuditCount>();

  constructor(private readonly query: AuditCountQuery) {}

  add(record: AuditRecord): void {
    const created = record.createdAt.getTime();
    if (record.policy !== this.query.policy) return;
    if (created < this.query.from.getTime() || created >= this.query.to.getTime()) return;
    const day = record.createdAt.toISOString().slice(0, 10);
    const group = { runId: record.runId, action: record.action, status: record.status, rule: record.rule, day };
    const key = JSON.stringify([group.runId, group.action, group.status, group.rule, group.day]);
    const counted = this.groups.get(key) ?? { ...group, count: 0 };
    counted.count += 1;
    this.groups.set(key, counted);
  }

  /** By day, then run, action, status and rule, as PostgreSQL orders them. */
  counts(): AuditCount[] {
    const order = (count: AuditCount) =>
      [count.day, count.runId, count.action, count.status, count.rule].join('\u0000');
    return [...this.groups.values()].sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  }
}

/** Every record in `records`, counted. */
export function countRecords(records: Iterable<AuditRecord>, query: AuditCountQuery): AuditCount[] {
  const counter = new AuditCounter(query);
  for (const record of records) counter.add(record);
  return counter.counts();
}
