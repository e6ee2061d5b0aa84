import { isPolicyRun, type RunRecord } from '../core/control.ts';
import { ConfigError, clip } from '../errors.ts';
import { nextRun } from '../policy/schedule.ts';

/** A report's period: [from, to), instants; `label` is how it was asked for (`2026-11`, or the two instants). */
export interface Period {
  from: Date;
  to: Date;
  label: string;
}

/** `YYYY-MM` → that calendar month in UTC, from its first instant to the next month's first. */
export function monthPeriod(value: string): Period {
  const match = /^(\d{4})-(\d{2})$/.exec(value.trim());
  const month = match ? Number(match[2]) : 0;
  if (!match || month < 1 || month > 12) {
    throw ConfigError.single('--month', `${JSON.stringify(clip(value))} is not a month`, 'e.g. --month 2026-11 (UTC)');
  }
  const year = Number(match[1]);
  return {
    from: new Date(Date.UTC(year, month - 1, 1)),
    to: new Date(Date.UTC(year, month, 1)),
    label: `${match[1]}-${match[2]}`,
  };
}

/** From and to as given; the period must not be empty. */
export function instantsPeriod(from: Date, to: Date): Period {
  if (to.getTime() <= from.getTime()) {
    throw ConfigError.single(
      '--to',
      `${to.toISOString()} is not after --from ${from.toISOString()}`,
      'give a --to later than --from, e.g. --from 2026-11-01 --to 2026-12-01',
    );
  }
  return { from, to, label: `${from.toISOString()} to ${to.toISOString()}` };
}

/** The UTC days the period touches, `YYYY-MM-DD`, in order. */
export function periodDays(period: Period): string[] {
  const days: string[] = [];
  const start = new Date(period.from.toISOString().slice(0, 10)).getTime();
  for (let at = start; at < period.to.getTime(); at += 86_400_000) days.push(new Date(at).toISOString().slice(0, 10));
  return days;
}

/** A run starting this much before its scheduled minute (clock skew, early delivery) still serves it. */
const EARLY_START_TOLERANCE_MS = 60_000;

export interface MissedRuns {
  count: number;
  /** The first and last scheduled instants no run served (null when none). */
  first: string | null;
  last: string | null;
}

/**
 * Scheduled instants in the period (up to `until`: what is not due yet cannot be missed) that no
 * live run served: a run serves an instant when it starts between a minute before it and the next
 * scheduled instant. Any trigger counts (a manual run in that slot did the work), except a reconcile run
 * over the policy's orphans or an emergency run, which do not do the policy's job.
 *
 * `runs`: the policy's whole history back to the period's start (as the report reads it). Slots
 * before its first recorded run, of any kind, were not the tool's to miss (the policy was added
 * later); a policy with no history at all missed every slot.
 */
export function missedRuns(schedule: string, runs: RunRecord[], period: Period, until: Date): MissedRuns {
  const starts = runs
    .filter(isPolicyRun)
    .map((run) => run.startedAt.getTime())
    .sort((a, b) => a - b);
  const end = Math.min(period.to.getTime(), until.getTime());
  const missed: Date[] = [];
  const known = runs.length > 0 ? Math.min(...runs.map((run) => run.startedAt.getTime())) : period.from.getTime();
  const from = Math.max(period.from.getTime(), known - EARLY_START_TOLERANCE_MS);
  let due = nextRun(schedule, new Date(from - 1));
  let index = 0;
  while (due.getTime() < end) {
    const following = nextRun(schedule, due);
    const opens = due.getTime() - EARLY_START_TOLERANCE_MS;
    while (index < starts.length && starts[index]! < opens) index += 1;
    if (!(index < starts.length && starts[index]! < following.getTime())) missed.push(due);
    due = following;
  }
  return {
    count: missed.length,
    first: missed[0]?.toISOString() ?? null,
    last: missed.at(-1)?.toISOString() ?? null,
  };
}
