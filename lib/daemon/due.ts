import { type ControlStore, isPolicyRun, type RunRecord } from '../core/control.ts';
import { previousRun } from '../policy/schedule.ts';

/**
 * When a policy is due, decided from run history (the control store), not from memory: so a
 * daemon that was down, a second daemon on another machine and `retention status` all agree.
 */

/**
 * How many of a policy's latest runs are read to find its latest turn, past dry runs and skips.
 * Bounded: history records carry whole reports (`plan --list` keeps its items). More than this
 * many dry runs since the latest turn reads as "never ran": no catch-up, the next tick runs it.
 */
export const HISTORY_WINDOW = 20;

/**
 * A run that took the policy's turn: a live run that started, however it ended (a crashed run
 * started too; its checkpoint is picked up by the next tick), or a tick a pause skipped. A dry run
 * is an operator's question and `skipped_locked` did nothing: neither is the scheduled run (nor
 * are reconcile and emergency runs, see `isPolicyRun`).
 */
export function tookItsTurn(run: RunRecord): boolean {
  return isPolicyRun(run) && run.status !== 'skipped_locked';
}

/** The latest run that took its turn, from history newest first. */
export function latestTurn(runs: RunRecord[]): RunRecord | null {
  return runs.find(tookItsTurn) ?? null;
}

/**
 * The tick to catch up on when a daemon starts at `now`: the last scheduled instant, when the
 * policy's latest turn began before it. Once, however many ticks were missed. A policy that never
 * ran has missed nothing: starting a daemon never deletes outside the schedule's hours.
 */
export function missedTick(schedule: string, now: Date, latestTurnStart: Date | null): Date | null {
  if (!latestTurnStart) return null;
  const tick = previousRun(schedule, now);
  return latestTurnStart < tick ? tick : null;
}

type History = Pick<ControlStore, 'listRuns'>;

export async function readLatestTurn(control: History, policy: string): Promise<RunRecord | null> {
  return latestTurn(await control.listRuns({ policy, limit: HISTORY_WINDOW }));
}

/**
 * The run that already took the turn of `tick`, if any: one that started at or after it (another
 * daemon's, or an operator's `retention run` since). Read under the policy's lease, see scheduler.ts.
 */
export async function turnTakenSince(control: History, policy: string, tick: Date): Promise<RunRecord | null> {
  const latest = await readLatestTurn(control, policy);
  return latest && latest.startedAt >= tick ? latest : null;
}
