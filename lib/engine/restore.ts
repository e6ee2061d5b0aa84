import type { PolicyConfig } from '../config/schema.ts';
import { chunks } from '../core/async.ts';
import type { ControlStore } from '../core/control.ts';
import type { RestoreOutcome, Store } from '../core/store.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { readAuditTrail } from '../reports/auditTrail.ts';

/**
 * Puts back what a run deleted, from the backup that run made. Every restored item gets an
 * audit record (`action: restore`), so the trail shows both the deletion and its undoing, and a
 * hold: a restored item keeps its original timestamp, so without one the next run would delete
 * it again. Removing the hold (`retention hold remove <id>`) lets retention apply again.
 */
export interface RestoreRequest {
  runId: string;
  /** Only these keys; default: every item the run deleted. */
  keys?: string[];
}

export interface RestoreSummary {
  runId: string;
  policy: string;
  outcomes: RestoreOutcome[];
}

/** Keys per `backups.restore` call (and per audit and hold write). */
const RESTORE_CHUNK = 1_000;

export async function restoreRun(
  request: RestoreRequest,
  deps: {
    control: ControlStore;
    policies: PolicyConfig[];
    storeFor: (policy: PolicyConfig) => Promise<Store>;
    actor: string;
    log: Logger;
  },
): Promise<RestoreSummary> {
  const run = await deps.control.getRun(request.runId);
  if (!run) throw ConfigError.single('--run', `no run with id "${request.runId}"`, 'list runs with: retention history');
  const policy = deps.policies.find((candidate) => candidate.name === run.policy);
  if (!policy)
    throw ConfigError.single(
      '--run',
      `run ${request.runId} belongs to policy "${run.policy}", which is not in this config`,
      'pass the config that defines it',
    );
  // Rows moved to an archive table come back from it, like backups.
  const copiesAt = policy.backup?.to ?? (policy.class === 'rows' ? policy.archive?.table : undefined);
  if (copiesAt === undefined) {
    throw ConfigError.single(
      '--run',
      `policy "${policy.name}" has no backup configured, so run ${request.runId} kept no copies`,
      'nothing can be restored from the tool; use your own backups',
    );
  }
  const store = await deps.storeFor(policy);
  const { backups } = store;
  if (!backups)
    throw ConfigError.single(
      '--run',
      `the ${store.kind} store cannot restore`,
      'restore from the backup location by hand',
    );

  const deleted = (await readAuditTrail(deps.control, [store], { runId: request.runId, limit: 1_000_000 })).filter(
    (record) => record.action === 'delete' && record.status === 'deleted',
  );
  const byKey = new Map(deleted.map((record) => [record.key, record]));
  const keys = request.keys ?? [...byKey.keys()];
  const unknown = keys.filter((key) => !byKey.has(key));
  if (unknown.length > 0) {
    throw ConfigError.single(
      '--key',
      `run ${request.runId} did not delete ${unknown.map((key) => `"${key}"`).join(', ')}`,
      `see what it deleted: retention audit --run ${request.runId}`,
    );
  }

  await store.open();
  const ref = { to: copiesAt, policy: policy.name, runId: request.runId };
  const reason = `restored from run ${request.runId}; remove this hold to let retention apply again`;
  const outcomes: RestoreOutcome[] = [];
  try {
    // Chunked so no call carries the keys of a whole run (a rows run can delete millions). Each
    // chunk is held BEFORE it is restored: a failure after the restore (audit, network) must not
    // leave items back without their hold, for the next run to delete again. Holds of keys that
    // did not come back are removed.
    for (const chunk of chunks(keys, RESTORE_CHUNK)) {
      const holds = await deps.control.addHolds(
        chunk.map((key) => ({ policy: policy.name, key, prefix: false, reason, createdBy: deps.actor })),
      );
      const chunkOutcomes = await backups.restore(ref, chunk);
      outcomes.push(...chunkOutcomes);
      const restoredKeys = new Set(
        chunkOutcomes.filter((outcome) => outcome.status === 'restored').map((outcome) => outcome.key),
      );
      await deps.control.recordEvents(
        [...restoredKeys].map((key) => {
          const record = byKey.get(key)!;
          return {
            runId: request.runId,
            policy: policy.name,
            store: store.location,
            key,
            itemTimestamp: record.itemTimestamp,
            ...(record.size !== undefined && record.size !== null ? { size: record.size } : {}),
            rule: record.rule,
            cutoff: record.cutoff,
            actor: deps.actor,
            trigger: 'manual' as const,
            action: 'restore' as const,
            status: 'restored' as const,
          };
        }),
      );
      for (const hold of holds) if (!restoredKeys.has(hold.key)) await deps.control.removeHold(hold.id);
    }
  } finally {
    await store.close();
  }
  deps.log.info('run_restored', {
    correlation_id: request.runId,
    policy: policy.name,
    restored: outcomes.filter((outcome) => outcome.status === 'restored').length,
    not_restored: outcomes
      .filter((outcome) => outcome.status !== 'restored')
      .map((outcome) => ({ key: outcome.key, status: outcome.status, error: outcome.error })),
  });
  return { runId: request.runId, policy: policy.name, outcomes };
}
