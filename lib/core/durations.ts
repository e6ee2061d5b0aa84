import { clip } from '../errors.ts';

/**
 * Durations always carry a unit: a bare number is ambiguous (seconds? days?) and an ambiguous
 * retention is how data gets deleted early. `1y` is 365 days. Calendar months are refused
 * because their length varies; write days instead.
 *
 * A duration is refused unless it is exactly a whole number of milliseconds within its field's
 * bounds: rounding `0.0001ms` gave a retention of 0 (everything eligible), and `10000y` put the
 * cutoff before the first representable date (`Invalid time value` mid-run). Amounts are summed
 * as exact decimals (BigInt), so `1.001s` is 1001 ms and not 1000.9999999999999.
 */
const UNIT_MS = {
  ms: 1n,
  s: 1000n,
  m: 60_000n,
  h: 3_600_000n,
  d: 86_400_000n,
  w: 7n * 86_400_000n,
  y: 365n * 86_400_000n,
} as const;
type Unit = keyof typeof UNIT_MS;

/** What a field accepts. Every duration field uses the default, except database timeouts. */
export interface DurationBounds {
  minMs: number;
  maxMs: number;
  /** Why the maximum is what it is, for the error message. */
  maxReason: string;
}

/** 1000 years: `now - 1000y` is a valid Date for any clock a machine can have (Dates reach ±273,790 years). */
export const MAX_DURATION_MS = 1000 * Number(UNIT_MS.y);

/** Retention, rules, budgets, SLA thresholds, backup ages: nothing below a second makes sense. */
export const POLICY_DURATION: DurationBounds = {
  minMs: 1000,
  maxMs: MAX_DURATION_MS,
  maxReason: 'the longest duration the tool takes',
};

/** PostgreSQL's statement_timeout and lock_timeout: whole milliseconds up to a 32-bit integer. */
export const DATABASE_TIMEOUT: DurationBounds = {
  minMs: 1,
  maxMs: 2_147_483_647,
  maxReason: "PostgreSQL's limit for a timeout",
};

/** Any duration a valid config can hold (the union of the bounds above). */
const ANY_VALID: DurationBounds = { minMs: 1, maxMs: MAX_DURATION_MS, maxReason: POLICY_DURATION.maxReason };

/** Longer than any sensible duration: refused before any arithmetic on a megabyte of digits. */
const MAX_TEXT_LENGTH = 64;

const SHORT_FORM = /^(\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+$/;
const SHORT_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g;
const ISO_FORM = /^P(?:(\d+)Y)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;
const ISO_UNITS: Unit[] = ['y', 'w', 'd', 'h', 'm', 's'];
const EXAMPLES = 'e.g. "90s", "30m", "24h", "30d", "1y", or ISO 8601 like "P30D"';

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string; fix: string };

export function parseDuration(input: string, bounds: DurationBounds = POLICY_DURATION): DurationResult {
  const text = input.trim();
  const quoted = JSON.stringify(clip(input));
  if (text === '') return refuse('empty duration', 'write e.g. "30d", "24h" or "P30D"');
  if (text.length > MAX_TEXT_LENGTH)
    return refuse(`${quoted} is too long to be a duration`, `write it with a larger unit, ${EXAMPLES}`);
  if (/^\d+(\.\d+)?$/.test(text)) {
    return refuse(
      `${quoted} has no unit`,
      `add one: "${text}d" for days, "${text}h" for hours, "${text}s" for seconds`,
    );
  }
  if (/^P.*\d+M.*T|^P[^T]*\d+M/.test(text)) {
    return refuse(`${quoted} uses calendar months, whose length varies`, 'write days instead, e.g. "P30D" or "30d"');
  }
  const parts = amounts(text);
  if (!parts)
    return refuse(`${quoted} is not a duration`, `use a number with a unit (ms, s, m, h, d, w, y), ${EXAMPLES}`);
  return bounded(quoted, exactMs(parts), bounds);
}

/** `[amount, unit]` pairs of either form, or null when the text is neither. */
function amounts(text: string): Array<[string, Unit]> | null {
  if (SHORT_FORM.test(text)) return [...text.matchAll(SHORT_PART)].map(([, amount, unit]) => [amount!, unit as Unit]);
  const iso = ISO_FORM.exec(text);
  if (!iso || text === 'P' || text.endsWith('T')) return null;
  return ISO_UNITS.flatMap(
    (unit, index): Array<[string, Unit]> => (iso[index + 1] === undefined ? [] : [[iso[index + 1]!, unit]]),
  );
}

/** The sum as an exact fraction `numerator / 10^scale` milliseconds. */
function exactMs(parts: Array<[string, Unit]>): { numerator: bigint; denominator: bigint } {
  const scale = Math.max(...parts.map(([amount]) => amount.split('.')[1]?.length ?? 0));
  let numerator = 0n;
  for (const [amount, unit] of parts) {
    const [whole, fraction = ''] = amount.split('.');
    numerator += BigInt(whole! + fraction.padEnd(scale, '0')) * UNIT_MS[unit];
  }
  return { numerator, denominator: 10n ** BigInt(scale) };
}

function bounded(
  quoted: string,
  { numerator, denominator }: { numerator: bigint; denominator: bigint },
  bounds: DurationBounds,
): DurationResult {
  if (numerator === 0n) return refuse(`${quoted} must be longer than zero`, 'use a positive duration, e.g. "1h"');
  const minimum = exactText(bounds.minMs);
  const maximum = exactText(bounds.maxMs);
  if (numerator < BigInt(bounds.minMs) * denominator) {
    return refuse(
      `${quoted} is shorter than ${minimum}, the shortest duration this field takes`,
      `use at least "${minimum}"`,
    );
  }
  if (numerator > BigInt(bounds.maxMs) * denominator) {
    return refuse(`${quoted} is longer than ${maximum}, ${bounds.maxReason}`, `use at most "${maximum}"`);
  }
  if (numerator % denominator !== 0n) {
    const below = Number(numerator / denominator);
    const nearest = [below, below + 1].filter((ms) => ms >= bounds.minMs).map((ms) => `"${ms}ms"`);
    return refuse(`${quoted} is not a whole number of milliseconds`, `write ${nearest.join(' or ')}`);
  }
  return { ok: true, ms: Number(numerator / denominator) };
}

function refuse(message: string, fix: string): DurationResult {
  return { ok: false, message, fix };
}

/**
 * Milliseconds of a duration the config schema has already accepted. The engine and the stores
 * call it on parsed config only, so it cannot fail there; on any other string it throws.
 */
export function durationMs(input: string): number {
  const result = parseDuration(input, ANY_VALID);
  if (!result.ok) throw new Error(`invalid duration reached past config validation: ${result.message} (${result.fix})`);
  return result.ms;
}

/** Compact human form for reports and logs: `1y`, `30d`, `1h30m`, `45s`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  const unit = (name: Unit): number => Number(UNIT_MS[name]);
  if (ms % unit('y') === 0) return `${ms / unit('y')}y`;
  const parts: string[] = [];
  let rest = ms;
  for (const name of ['d', 'h', 'm', 's'] as const) {
    const amount = Math.floor(rest / unit(name));
    if (amount > 0) parts.push(`${amount}${name}`);
    rest -= amount * unit(name);
  }
  if (rest > 0 && parts.length === 0) parts.push(`${rest}ms`);
  return parts.join('') || '0s';
}

/** A bound as the user can write it back: `1s`, `1000y`, `2147483647ms` (formatDuration drops leftover ms). */
function exactText(ms: number): string {
  return ms % 1000 === 0 ? formatDuration(ms) : `${ms}ms`;
}
