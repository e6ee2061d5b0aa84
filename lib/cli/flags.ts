import { parseDuration } from '../config/durations.ts';
import { ConfigError } from '../errors.ts';

/** Flag parsers: a bad value is an input error (exit 2) naming the flag and the fix. */
export function parsePositiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) <= 0) {
    throw ConfigError.single(flag, `"${value}" is not a positive whole number`, `e.g. ${flag} 1000`);
  }
  return Number(value);
}

export function parseInstant(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const iso = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
  const instant = new Date(value);
  if (!iso.test(value) || Number.isNaN(instant.getTime())) {
    throw ConfigError.single(flag, `"${value}" is not an ISO date`, `e.g. ${flag} 2024-01-31 or ${flag} 2024-01-31T00:00:00Z`);
  }
  return instant;
}

export function parseDurationFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = parseDuration(value);
  if (!parsed.ok) throw ConfigError.single(flag, parsed.message, parsed.fix);
  return parsed.ms;
}
