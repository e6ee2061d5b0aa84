import { parseDuration } from '../core/durations.ts';
import { parseInstantText } from '../core/instants.ts';
import { ConfigError, clip } from '../errors.ts';

/** Flag parsers: a bad value is an input error (exit 2) naming the flag and the fix. */
export function parsePositiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw ConfigError.single(
      flag,
      `${JSON.stringify(clip(value))} is not a positive whole number below 2^53`,
      `e.g. ${flag} 1000`,
    );
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

/** An instant as an operator gives it: a date or date and time, or a duration back from now (`24h`, `7d`). */
export type TimeFlag = { at: Date } | { agoMs: number };

export function parseTimeFlag(flag: string, value: string | undefined): TimeFlag | undefined {
  if (value === undefined) return undefined;
  const either = `a date (${flag} 2024-01-31, ${flag} 2024-01-31T12:00:00Z) or a duration back from now (${flag} 24h)`;
  // ISO dates start with the year; anything else is read as a duration.
  if (!/^\d{4}-/.test(value)) {
    const duration = parseDuration(value);
    if (!duration.ok)
      throw ConfigError.single(flag, `${JSON.stringify(clip(value))} is not a date or a duration`, either);
    return { agoMs: duration.ms };
  }
  const parsed = parseInstantText(value, { requireZone: false, example: (text) => `${flag} ${text}` });
  if (!parsed.ok) throw ConfigError.single(flag, parsed.message, parsed.fix);
  return { at: parsed.instant };
}

/** The instant a time flag names, read against the session's clock. */
export function instantOf(flag: TimeFlag, now: Date): Date {
  return 'at' in flag ? flag.at : new Date(now.getTime() - flag.agoMs);
}

/** Same rules as a duration in the config (at least 1s, whole milliseconds, at most 1000y). */
export function parseDurationFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = parseDuration(value);
  if (!parsed.ok) throw ConfigError.single(flag, parsed.message, parsed.fix);
  return parsed.ms;
}

/** `-p, --policy <name>` → `--policy <name>` (usage) and `--policy` (the flag errors name). */
const usage = (spec: string): string => spec.split(', ').pop()!;
const longFlag = (spec: string): string => usage(spec).split(' ')[0]!;

type Described = [path: string, what: string, fix: string];

/** Commander's error texts (commander/lib/command.js), as what they name, what is wrong, the fix. */
const COMMANDER_ERRORS: Array<[RegExp, (match: RegExpExecArray, hint: (otherwise: string) => string) => Described]> = [
  [/^error: unknown option '(.*?)'(?:\n|$)/s, (m, hint) => [m[1]!, 'unknown option', hint('see the options below')]],
  [/^error: unknown command '(.*?)'(?:\n|$)/s, (m, hint) => [m[1]!, 'unknown command', hint('see the commands below')]],
  [/^error: option '(.*)' argument missing/, (m) => [longFlag(m[1]!), 'needs a value', `e.g. ${usage(m[1]!)}`]],
  [
    /^error: required option '(.*)' not specified/,
    (m) => [longFlag(m[1]!), 'missing', `this option is required: ${usage(m[1]!)}`],
  ],
  [/^error: missing required argument '(.*)'/, (m) => [`<${m[1]}>`, 'missing', 'this argument is required']],
  [
    /^error: too many arguments(?: for '(.*)')?\. Expected (\d+) arguments? but got (\d+)\./,
    (m) => [m[1] ?? 'retention', `too many arguments: expected ${m[2]}, got ${m[3]}`, 'remove the extra ones'],
  ],
];

/**
 * Commander's own errors (unknown option, missing value, …) in the tool's format, with what a
 * user typed clipped: `error: --polcy: unknown option (did you mean --policy?)`. Help follows.
 */
export function formatCommanderError(text: string): string {
  const suggestion = /\n\(Did you mean (.*)\?\)/.exec(text)?.[1];
  const hint = (otherwise: string): string => (suggestion ? `did you mean ${suggestion}?` : otherwise);
  for (const [pattern, describe] of COMMANDER_ERRORS) {
    const match = pattern.exec(text);
    if (!match) continue;
    const [path, what, fix] = describe(match, hint);
    return `error: ${clip(path)}: ${what} (${fix})\n`;
  }
  return text;
}

/** Commander's value parser for a repeatable flag (`--policy a --policy b`). */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
