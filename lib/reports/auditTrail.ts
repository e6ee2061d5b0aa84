import type { AuditQuery, AuditRecord, ControlStore } from '../core/control.ts';
import type { Store } from '../core/store.ts';

/**
 * The audit trail as operators and restores read it: the control store's records plus the ones
 * stores keep themselves (rows deleted in one statement are recorded only in the database they
 * were deleted from, in the same transaction). One record per (run, action, key): the control
 * store's wins when both have it, since it carries outcomes and errors. Newest first.
 */
export async function readAuditTrail(
  control: ControlStore,
  stores: Store[],
  query: AuditQuery,
): Promise<AuditRecord[]> {
  const [recorded, ...kept] = await Promise.all([
    control.audit(query),
    ...stores.flatMap((store) => (store.audit ? [store.audit.trail(query)] : [])),
  ]);
  const identity = (record: AuditRecord) => `${record.runId}\u0000${record.action}\u0000${record.key}`;
  const seen = new Set(recorded!.map(identity));
  const merged = [...recorded!];
  for (const record of kept.flat()) {
    if (seen.has(identity(record))) continue;
    seen.add(identity(record));
    merged.push(record);
  }
  const at = (record: AuditRecord) => (record.resolvedAt ?? record.createdAt).getTime();
  return merged.sort((a, b) => at(b) - at(a)).slice(0, query.limit);
}
