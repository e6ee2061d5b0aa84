import { clip } from '../errors.ts';

/**
 * ISO 8601 instants as operators write them (`--before`, a payload's `before`): a date (UTC
 * midnight) or a date and time. `new Date()` rolls impossible values over (2024-02-30 is read as
 * 2024-03-01, 24:30 as the next day), which moves a cutoff silently; so every part is checked
 * against the calendar and the clock first, and the instant is built from the checked parts.
 */
const INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:(Z)|([+-])(\d{2}):?(\d{2}))?)?$/;

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** Real UTC offsets run from -12:00 to +14:00. */
const MAX_OFFSET_MINUTES = 14 * 60;

export type InstantResult = { ok: true; instant: Date } | { ok: false; message: string; fix: string };

export interface InstantOptions {
  /** Refuse a time without `Z` or an offset (a function's local time is not the caller's). */
  requireZone: boolean;
  /** How the fix spells an example, e.g. `--before 2024-01-31`. */
  example: (text: string) => string;
}

export function parseInstantText(input: string, options: InstantOptions): InstantResult {
  const quoted = JSON.stringify(clip(input));
  const refuse = (
    what: string,
    fix = `e.g. ${options.example('2024-01-31')} or ${options.example('2024-01-31T00:00:00Z')}`,
  ): InstantResult => ({
    ok: false,
    message: `${quoted} ${what}`,
    fix,
  });
  const match = INSTANT.exec(input);
  if (!match) return refuse('is not an ISO date');
  const [, year, month, day, hour, minute, second, fraction, zulu, sign, offsetHours, offsetMinutes] = match;
  const [y, mo, d] = [Number(year), Number(month), Number(day)];
  if (mo < 1 || mo > 12) return refuse(`has no month ${month}`, 'months run from 01 to 12');
  const days = daysInMonth(y, mo);
  if (d < 1 || d > days)
    return refuse(`is not a calendar date: ${MONTHS[mo - 1]} ${year} has ${days} days`, `use a day from 01 to ${days}`);
  if (hour === undefined) return { ok: true, instant: utc(y, mo, d, 0, 0, 0, 0) };

  const [h, mi, s] = [Number(hour), Number(minute), Number(second ?? 0)];
  if (h > 23 || mi > 59 || s > 59)
    return refuse('is not a time of day', 'hours run from 00 to 23, minutes and seconds from 00 to 59');
  const ms = Number((fraction ?? '').padEnd(3, '0').slice(0, 3));
  if (zulu) return { ok: true, instant: utc(y, mo, d, h, mi, s, ms) };
  if (sign === undefined) {
    if (options.requireZone) return refuse('has no time zone', `add one: ${options.example(`${input}Z`)} for UTC`);
    const local = new Date(0);
    local.setFullYear(y, mo - 1, d);
    local.setHours(h, mi, s, ms);
    return { ok: true, instant: local };
  }
  const offset = (Number(offsetHours) * 60 + Number(offsetMinutes)) * (sign === '-' ? -1 : 1);
  if (Number(offsetMinutes) > 59 || Math.abs(offset) > MAX_OFFSET_MINUTES) {
    return refuse('has an offset no time zone uses', 'offsets run from -12:00 to +14:00, e.g. +02:00');
  }
  return { ok: true, instant: new Date(utc(y, mo, d, h, mi, s, ms).getTime() - offset * 60_000) };
}

function daysInMonth(year: number, month: number): number {
  return utc(year, month + 1, 0, 0, 0, 0, 0).getUTCDate();
}

/** Unlike `Date.UTC`, years 0-99 stay themselves (not 1900-1999). */
function utc(year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number): Date {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  return date;
}
