import type { AuditRecord, ControlStore } from '../core/control.ts';
import type { Store } from '../core/store.ts';
import type { ActiveRun } from './start.ts';

/**
 * Resolves write-ahead intents whose outcome is unknown (invariant 2): a crash between the intent
 * and its resolution, or a batch delete that threw midway. The store is the source of truth:
 * an item still present was not deleted (`abandoned`); one that is gone was (`deleted`). A
 * `compress` intent whose original is gone was compressed (its original goes only once the
 * compressed copy is complete); one whose original is still there is `abandoned` (redone later).
 */
const CHUNK = 1000;

export interface RecoveryResult {
  deleted: number;
  compressed: number;
  abandoned: number;
}

async function resolveByPresence(store: Store, control: ControlStore, records: AuditRecord[]): Promise<RecoveryResult> {
  const result: RecoveryResult = { deleted: 0, compressed: 0, abandoned: 0 };
  for (let start = 0; start < records.length; start += CHUNK) {
    const chunk = records.slice(start, start + CHUNK);
    const present = await store.present(chunk.map((record) => record.key));
    const resolutions = chunk.map((record) => {
      const gone = record.action === 'compress' ? ('compressed' as const) : ('deleted' as const);
      const status = present.has(record.key) ? ('abandoned' as const) : gone;
      result[status] += 1;
      return { id: record.id, status };
    });
    await control.resolveStaleIntents(resolutions);
  }
  return result;
}

/**
 * Live runs, under the lease (no other live run of the policy can be going on): earlier runs
 * still `running` crashed; their history is closed and their pending intents resolved.
 */
export async function recoverEarlierRuns(run: ActiveRun): Promise<void> {
  const { control, store } = run.deps;
  const { policy, context, log } = run;
  const crashed = await control.closeCrashedRuns(policy.name, context.runId);
  if (crashed.length > 0) log.warn('crashed_runs_closed', { runs: crashed });
  const pending = await control.pendingIntents(policy.name, context.runId);
  // Only the store an intent names can say whether its item is gone: a policy's runs may go
  // through two stores (its own, and `retention reconcile` over its linked files).
  const own = pending.filter((record) => record.store === store.location);
  const recovered = await resolveByPresence(store, control, own);
  const { deleted, compressed, abandoned } = recovered;
  // `compressed` only where a compress pass left intents: the line stays as it was for other policies.
  if (deleted + compressed + abandoned > 0)
    log.warn('intents_recovered', { deleted, ...(compressed > 0 ? { compressed } : {}), abandoned });
  if (own.length < pending.length)
    log.warn('intents_left', {
      count: pending.length - own.length,
      stores: [...new Set(pending.filter((record) => record.store !== store.location).map((record) => record.store))],
      reason: 'recorded against another store; resolved by the next run over it',
    });
}
