import type { AuditRecord, ControlStore } from '../core/control.ts';
import type { Store } from '../core/store.ts';

/**
 * Resolves write-ahead intents whose outcome is unknown (invariant 2): a crash between the intent
 * and its resolution, or a batch delete that threw midway. The store is the source of truth:
 * an item still present was not deleted (`abandoned`); one that is gone was (`deleted`).
 */
const CHUNK = 1000;

export interface RecoveryResult {
  deleted: number;
  abandoned: number;
}

async function resolveByPresence(store: Store, control: ControlStore, records: AuditRecord[]): Promise<RecoveryResult> {
  const result: RecoveryResult = { deleted: 0, abandoned: 0 };
  for (let start = 0; start < records.length; start += CHUNK) {
    const chunk = records.slice(start, start + CHUNK);
    const present = await store.present(chunk.map((record) => record.key));
    const resolutions = chunk.map((record) => {
      const status = present.has(record.key) ? ('abandoned' as const) : ('deleted' as const);
      result[status] += 1;
      return { id: record.id, status };
    });
    await control.resolveStaleIntents(resolutions);
  }
  return result;
}

/** Pending intents of earlier runs of this policy (only possible after a crash). */
export async function recoverCrashedIntents(store: Store, control: ControlStore, policy: string, runId: string): Promise<RecoveryResult> {
  const pending = await control.pendingIntents(policy, runId);
  return resolveByPresence(store, control, pending);
}
