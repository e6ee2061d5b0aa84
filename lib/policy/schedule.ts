import { CronExpressionParser } from 'cron-parser';
import { clip } from '../errors.ts';

/**
 * Schedules are plain 5-field cron in UTC (minute hour day-of-month month day-of-week), limited
 * to `* , - /` and numbers so that every schedule converts one-to-one to EventBridge syntax.
 */
const FIELD = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/;

export type ScheduleResult = { ok: true } | { ok: false; message: string; fix: string };

export function checkSchedule(expression: string): ScheduleResult {
  const fields = expression.trim().split(/\s+/);
  // A schedule is echoed in messages and log lines: a megabyte of it must not be.
  const shown = JSON.stringify(clip(expression));
  const fix = 'use 5 fields in UTC: minute hour day-of-month month day-of-week, e.g. "0 2 * * *" for 02:00 daily';
  if (fields.length !== 5) {
    return { ok: false, message: `${shown} has ${fields.length} fields, not 5`, fix };
  }
  const bad = fields.find((field) => !FIELD.test(field));
  if (bad !== undefined) {
    const message = `field ${JSON.stringify(clip(bad))} of ${shown} uses syntax other than numbers, * , - /`;
    return { ok: false, message, fix };
  }
  try {
    CronExpressionParser.parse(expression, { tz: 'UTC', strict: false });
  } catch (cause) {
    return { ok: false, message: `${shown}: ${(cause as Error).message}`, fix };
  }
  return { ok: true };
}

/** The first scheduled instant strictly after `after`. */
export function nextRun(expression: string, after: Date): Date {
  return CronExpressionParser.parse(expression, { tz: 'UTC', currentDate: after }).next().toDate();
}

/** The last scheduled instant at or before `at`. */
export function previousRun(expression: string, at: Date): Date {
  return CronExpressionParser.parse(expression, { tz: 'UTC', currentDate: new Date(at.getTime() + 1) })
    .prev()
    .toDate();
}
