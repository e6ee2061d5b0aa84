import type { Hold } from '../core/types.ts';
import { latestCutoff } from '../policy/plan.ts';
import type { Fence } from './fence.ts';
import type { ActiveRun } from './start.ts';

/**
 * Partition pushdown, before the batched sweep: partitions entirely past the cutoffs go whole.
 * The store writes each drop's audit row in the dropping transaction (with its row count); here it
 * is mirrored into the control store's trail as one `partition_drop` record per partition. Fence
 * and budget are checked before each partition, as before every batch.
 */
export async function dropWholePartitions(run: ActiveRun, holds: Hold[], fence: Fence | null): Promise<void> {
  const { store, control } = run.deps;
  const { tally, context, options, budget } = run;
  if (!store.partitions) return;
  const outcomes = await store.partitions.dropExpired(run.cutoffs, holds, {
    dryRun: options.dryRun,
    run: context,
    beforeEach: async () => {
      await fence?.check();
      return budget.allowsNextBatch();
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
    const cutoff = latestCutoff(run.cutoffs);
    await control.recordEvents(
      live.map((outcome) => ({
        runId: context.runId,
        policy: run.policy.name,
        store: store.location,
        key: outcome.partition,
        itemTimestamp: outcome.upperBound,
        rule: `partition of ${outcome.rows} rows, all past retention${outcome.archivedTo ? ` (archived to ${outcome.archivedTo})` : ''}`,
        cutoff,
        actor: context.actor,
        trigger: context.trigger,
        action: 'partition_drop' as const,
        status: 'deleted' as const,
      })),
    );
  }
  if (outcomes.length > 0) {
    run.log.info('partitions_dropped', {
      dry_run: options.dryRun,
      partitions: outcomes.map((outcome) => ({
        partition: outcome.partition,
        status: outcome.status,
        rows: outcome.rows,
        ...(outcome.reason ? { reason: outcome.reason } : {}),
      })),
    });
  }
}
