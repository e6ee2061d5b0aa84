import type { AuditIntent, Lease, NewHold } from '../core/control.ts';
import { ControlStoreError, LeaseLostError } from '../errors.ts';

/** What control store errors carry (lease, batch, holds), and the checks both implementations share. */
export function leaseContext(lease: Lease): Record<string, unknown> {
  return { policy: lease.policy, owner: lease.owner, token: lease.token };
}

export function leaseLost(lease: Lease, operation: string): LeaseLostError {
  return new LeaseLostError(
    `${operation}: the lease of "${lease.policy}" is no longer held with token ${lease.token}`,
    leaseContext(lease),
  );
}

/** A zero or negative ttl would hand out leases that are already expired. */
export function positiveTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0)
    throw new ControlStoreError(`lease ttl must be a positive number of milliseconds, got ${ttlMs}`, { ttlMs });
  return ttlMs;
}

export function batchContext(records: AuditIntent[]): Record<string, unknown> {
  return { runId: records[0]?.runId, policy: records[0]?.policy, count: records.length };
}

/** The subject of a hold write: the hold's key when there is one, the count when there are many. */
export function holdsContext(holds: NewHold[]): Record<string, unknown> {
  const policy = holds[0]?.policy ?? '*';
  return holds.length === 1 ? { policy, key: holds[0]!.key } : { policy, count: holds.length };
}
