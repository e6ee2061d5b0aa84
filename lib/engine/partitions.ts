import type { PolicyConfig } from '../config/schema.ts';
import type { ControlStore } from '../core/control.ts';
import type { Logger } from '../observe/log.ts';
import type { Store } from '../core/store.ts';
import type { Budget } from './budget.ts';
import type { Fence } from './fence.ts';
import { latestCutoff } from '../policy/plan.ts';
import type { Tally } from './report.ts';
import type { Cutoffs, Hold, Trigger } from '../core/types.ts';

/**
 * Partition pushdown, before the batched sweep: partitions entirely past the cutoffs go whole.
 * The store writes each drop's audit row in the dropping transaction (with its row count); here it
 * is mirrored into the control store's trail as one `partition_drop` record per partition. Fence
 * and budget are checked before each partition, as before every batch.
 */
export async function dropWholePartitions(input: {
  policy: PolicyConfig;
  store: Store;
  control: ControlStore;
  cutoffs: Cutoffs;
  holds: Hold[];
  dryRun: boolean;
  runId: string;
  actor: string;
  trigger: Trigger;
  fence: Fence | null;
  budget: Budget;
  tally: Tally;
  log: Logger;
}): Promise<void> {
  const { store, tally } = input;
  if (!store.dropExpiredPartitions) return;
  const outcomes = await store.dropExpiredPartitions(input.cutoffs, input.holds, {
    dryRun: input.dryRun,
    beforeEach: async () => {
      await input.fence?.check();
      return input.budget.allowsNextBatch();
    },
  });
  const dropped = outcomes.filter((outcome) => outcome.status === 'dropped' || outcome.status === 'would_drop');
  for (const outcome of dropped) {
    tally.scanned += outcome.rows;
    tally.eligible += outcome.rows;
    if (outcome.status === 'dropped') tally.deleted += outcome.rows;
  }
  const live = dropped.filter((outcome) => outcome.status === 'dropped');
  if (live.length > 0) {
    const cutoff = latestCutoff(input.cutoffs);
    await input.control.recordEvents(
      live.map((outcome) => ({
        runId: input.runId,
        policy: input.policy.name,
        store: store.location,
        key: outcome.partition,
        itemTimestamp: outcome.upperBound,
        rule: `partition of ${outcome.rows} rows, all past retention${outcome.archivedTo ? ` (archived to ${outcome.archivedTo})` : ''}`,
        cutoff,
        actor: input.actor,
        trigger: input.trigger,
        action: 'partition_drop' as const,
        status: 'deleted' as const,
      })),
    );
  }
  if (outcomes.length > 0) {
    input.log.info('partitions_dropped', {
      dry_run: input.dryRun,
      partitions: outcomes.map((outcome) => ({ partition: outcome.partition, status: outcome.status, rows: outcome.rows, ...(outcome.reason ? { reason: outcome.reason } : {}) })),
    });
  }
}
