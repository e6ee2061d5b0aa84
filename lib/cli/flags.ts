import { parseDuration } from '../config/durations.ts';
import { parseInstantText } from '../config/instants.ts';
import { clip, ConfigError } from '../errors.ts';

/** Flag parsers: a bad value is an input error (exit 2) naming the flag and the fix. */
export function parsePositiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw ConfigError.single(flag, `${JSON.stringify(clip(value))} is not a positive whole number below 2^53`, `e.g. ${flag} 1000`);
  }
  return Number(value);
}

/** A date (UTC midnight) or date and time; a time without a zone is the operator's local time. */
export function parseInstant(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const parsed = parseInstantText(value, { requireZone: false, example: (text) => `${flag} ${text}` });
  if (!parsed.ok) throw ConfigError.single(flag, parsed.message, parsed.fix);
  return parsed.instant;
}

/** Same rules as a duration in the config (at least 1s, whole milliseconds, at most 1000y). */
export function parseDurationFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = parseDuration(value);
  if (!parsed.ok) throw ConfigError.single(flag, parsed.message, parsed.fix);
  return parsed.ms;
}
