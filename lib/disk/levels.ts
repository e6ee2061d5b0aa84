/**
 * Pure decisions of the disk monitor: the level of a file system, and whether an alert goes now
 * or waits out its cooldown. No I/O, no clock: the caller passes `now`.
 */
export type DiskLevel = 'ok' | 'warning' | 'critical' | 'unknown';

export interface DiskThresholds {
  /** Percent used at which a file system is `warning`, and under which an emergency run stops. */
  warning: number;
  critical: number;
}

export function diskLevel(usedPercent: number, thresholds: DiskThresholds): Exclude<DiskLevel, 'unknown'> {
  if (usedPercent >= thresholds.critical) return 'critical';
  if (usedPercent >= thresholds.warning) return 'warning';
  return 'ok';
}

/** One kind of alert: a level on a file system. Its cooldown runs per kind. */
export function alertKind(filesystem: string, level: DiskLevel): string {
  return `${filesystem}|${level}`;
}

/**
 * A `warning` (or `unknown`: the disk could not be measured) alert goes at most once per
 * cooldown; a `critical` one goes at every check, because the disk is about to be full and
 * someone must look now. `ok` never alerts.
 */
export function alertDue(level: DiskLevel, lastSentAt: Date | undefined, now: Date, cooldownMs: number): boolean {
  if (level === 'ok') return false;
  if (level === 'critical' || lastSentAt === undefined) return true;
  return now.getTime() - lastSentAt.getTime() >= cooldownMs;
}
