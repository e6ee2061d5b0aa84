/**
 * Durations always carry a unit: a bare number is ambiguous (seconds? days?) and an ambiguous
 * retention is how data gets deleted early. `1y` is 365 days. Calendar months are refused
 * because their length varies; write days instead.
 */
const UNIT_MS = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
} as const;

const SHORT_FORM = /^(\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+$/;
const SHORT_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g;
const ISO_FORM = /^P(?:(\d+)Y)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string; fix: string };

export function parseDuration(input: string): DurationResult {
  const text = input.trim();
  if (text === '') return { ok: false, message: 'empty duration', fix: 'write e.g. "30d", "24h" or "P30D"' };
  if (/^\d+(\.\d+)?$/.test(text)) {
    return { ok: false, message: `"${input}" has no unit`, fix: `add one: "${text}d" for days, "${text}h" for hours, "${text}s" for seconds` };
  }
  if (/^P.*\d+M.*T|^P[^T]*\d+M/.test(text)) {
    return { ok: false, message: `"${input}" uses calendar months, whose length varies`, fix: 'write days instead, e.g. "P30D" or "30d"' };
  }
  if (SHORT_FORM.test(text)) {
    let ms = 0;
    for (const [, amount, unit] of text.matchAll(SHORT_PART)) {
      ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
    }
    return positive(input, ms);
  }
  const iso = ISO_FORM.exec(text);
  if (iso && text !== 'P' && !text.endsWith('T')) {
    const [, y, w, d, h, m, s] = iso;
    const ms =
      Number(y ?? 0) * UNIT_MS.y +
      Number(w ?? 0) * UNIT_MS.w +
      Number(d ?? 0) * UNIT_MS.d +
      Number(h ?? 0) * UNIT_MS.h +
      Number(m ?? 0) * UNIT_MS.m +
      Number(s ?? 0) * UNIT_MS.s;
    return positive(input, ms);
  }
  return {
    ok: false,
    message: `"${input}" is not a duration`,
    fix: 'use a number with a unit (ms, s, m, h, d, w, y), e.g. "90s", "30m", "24h", "30d", "1y", or ISO 8601 like "P30D"',
  };
}

function positive(input: string, ms: number): DurationResult {
  if (!Number.isFinite(ms) || ms <= 0) {
    return { ok: false, message: `"${input}" must be longer than zero`, fix: 'use a positive duration, e.g. "1h"' };
  }
  return { ok: true, ms: Math.round(ms) };
}

/** Parses a duration known to be valid (already checked by the config schema). */
export function durationMs(input: string): number {
  const result = parseDuration(input);
  if (!result.ok) throw new Error(`invalid duration ${input}: ${result.message}`);
  return result.ms;
}

/** Compact human form for reports and logs: `1y`, `30d`, `1h30m`, `45s`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms % UNIT_MS.y === 0) return `${ms / UNIT_MS.y}y`;
  const parts: string[] = [];
  let rest = ms;
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const amount = Math.floor(rest / UNIT_MS[unit]);
    if (amount > 0) parts.push(`${amount}${unit}`);
    rest -= amount * UNIT_MS[unit];
  }
  if (rest > 0 && parts.length === 0) parts.push(`${rest}ms`);
  return parts.join('') || '0s';
}
