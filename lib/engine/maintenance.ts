import { describeCause } from '../errors.ts';
import type { ActiveRun } from './start.ts';

/**
 * The store's upkeep after a live run that deleted something (rows: VACUUM once enough of the
 * table went), in what is left of the budget. Its outcome goes into the report; a failure is
 * reported there too and never fails the run: the deletions are done and recorded.
 */
export async function maintainAfterRun(run: ActiveRun): Promise<void> {
  const { maintenance } = run.deps.store;
  if (!maintenance || run.options.dryRun || run.tally.deleted === 0) return;
  const started = run.deps.clock.now().getTime();
  try {
    run.maintenance = await maintenance.afterRun({
      deleted: run.tally.deleted,
      inScope: run.census?.total ?? 0,
      timeLeftMs: run.budget.remainingMs(),
    });
  } catch (error) {
    run.maintenance = {
      action: 'vacuum',
      target: run.deps.store.location,
      status: 'failed',
      reason: describeCause(error),
      deadTuplesBefore: null,
      deadTuplesAfter: null,
      durationSeconds: (run.deps.clock.now().getTime() - started) / 1000,
    };
  }
  const done = run.maintenance;
  if (done)
    run.log[done.status === 'failed' ? 'warn' : 'info']('maintenance', {
      action: done.action,
      target: done.target,
      status: done.status,
      ...(done.reason ? { reason: done.reason } : {}),
      dead_tuples_before: done.deadTuplesBefore,
      dead_tuples_after: done.deadTuplesAfter,
      duration_seconds: done.durationSeconds,
    });
}
