import { applyStreaks, isOpen } from '../core/attention.ts';
import type { AttentionItem, ControlStore, FailureStreakUpdate } from '../core/control.ts';
import type { DeleteOutcome } from '../core/store.ts';
import type { Clock, RunReport } from '../core/types.ts';
import { describeCause } from '../errors.ts';
import type { Logger } from '../observe/log.ts';

/** What of a run (start.ts ActiveRun) the streaks need; named here so that start.ts may hold a FailureStreaks. */
interface StreakRun {
  policy: { name: string; attentionAfter: number };
  deps: { control: ControlStore; clock: Clock };
  context: { runId: string };
  log: Logger;
}

/**
 * Failures counted into streaks per run at most: past that many, the cause is systemic (the
 * failure rate breaches the SLA) and listing each item helps nobody; memory stays bounded.
 */
export const MAX_TRACKED_FAILURES = 100_000;

/**
 * What a live run learns for the attention queue: which items failed to delete, and which items
 * with a failure streak it settled. Only keys that had a streak when the run started are kept
 * as settled, so a run deleting millions holds no more than its failures and the known streaks.
 */
export class FailureStreaks {
  /** The run passed over the policy's whole scope: streaks it did not extend end (gone, held, young again). */
  wholePass = false;
  private readonly failed = new Map<string, string>();
  private readonly settled = new Set<string>();
  private readonly known: Set<string>;

  constructor(readonly existing: AttentionItem[]) {
    this.known = new Set(existing.map((item) => item.key));
  }

  note(outcomes: Array<Pick<DeleteOutcome, 'key' | 'status' | 'error'>>): void {
    for (const outcome of outcomes) {
      if (outcome.status !== 'failed') {
        if (this.known.has(outcome.key)) this.settled.add(outcome.key);
      } else if (this.failed.size < MAX_TRACKED_FAILURES || this.known.has(outcome.key)) {
        // Past the cap, known streaks are still extended: a whole pass must not end them as unmet.
        this.failed.set(outcome.key, outcome.error ?? 'unknown error');
      }
    }
  }

  update(policy: string, runId: string): FailureStreakUpdate {
    const failed = [...this.failed].map(([key, error]) => ({ key, error }));
    return { policy, runId, failed, settled: [...this.settled], wholePass: this.wholePass };
  }
}

/** The policy's streaks when a live run starts (one read; usually none). */
export async function loadStreaks(run: StreakRun): Promise<FailureStreaks> {
  return new FailureStreaks(await run.deps.control.attentionItems(run.policy.name, 1));
}

/**
 * Writes the run's streaks and counts the policy's open items. The report matters more than the
 * queue: a control store that fails here is logged, and the report goes without `attention`.
 */
export async function saveStreaks(run: StreakRun, streaks: FailureStreaks): Promise<RunReport['attention']> {
  const { control, clock } = run.deps;
  const after = run.policy.attentionAfter;
  const update = streaks.update(run.policy.name, run.context.runId);
  try {
    await control.noteFailureStreaks(update);
  } catch (error) {
    run.log.warn('attention_write_failed', { error: describeCause(error) });
    return undefined;
  }
  const open = applyStreaks(streaks.existing, update, clock.now()).filter((item) => isOpen(item, after)).length;
  if (open > 0) run.log.warn('attention_open', { open, attention_after: after });
  return { open, after };
}
