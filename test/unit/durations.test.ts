import { describe, expect, it } from 'vitest';
import {
  DATABASE_TIMEOUT,
  durationMs,
  formatDuration,
  MAX_DURATION_MS,
  POLICY_DURATION,
  parseDuration,
} from '../../lib/core/durations.ts';
import { computeCutoffs } from '../../lib/policy/plan.ts';

const S = 1000;
const H = 3600 * S;
const D = 24 * H;
const Y = 365 * D;

describe('parseDuration', () => {
  it.each([
    ['90s', 90 * S],
    ['30m', 30 * 60 * S],
    ['24h', 24 * H],
    ['30d', 30 * D],
    ['2w', 14 * D],
    ['1y', Y],
    ['7y', 7 * Y],
    ['1d12h', 36 * H],
    ['1.5h', 1.5 * H],
    ['P30D', 30 * D],
    ['P1Y', Y],
    ['PT1H30M', 1.5 * H],
    ['P1DT12H', 36 * H],
    ['PT45S', 45 * S],
    // The bounds themselves are accepted.
    ['1s', S],
    ['1000ms', S],
    ['1000y', 1000 * Y],
    ['999y364d', 1000 * Y - D],
    // Decimal fractions are summed exactly: 1.001 * 1000 is 1000.9999999999999 in floating point.
    ['1.001s', 1001],
    ['0.001h', 3600],
    ['PT1.5S', 1500],
    ['1.25s', 1250],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, ms });
  });

  it.each([
    ['30', 'has no unit', '"30d"'],
    ['', 'empty', '30d'],
    ['30 days', 'is not a duration', 'unit'],
    ['P1M', 'calendar months', 'P30D'],
    ['P1Y2M', 'calendar months', 'days'],
    ['0d', 'longer than zero', 'positive'],
    ['0.0ms', 'longer than zero', 'positive'],
    ['P', 'is not a duration', 'ISO'],
    ['-5d', 'is not a duration', 'unit'],
    // Below a second: rounding "0.0001ms" to 0 made everything eligible at once.
    ['0.0001ms', '"0.0001ms" is shorter than 1s, the shortest duration this field takes', 'use at least "1s"'],
    ['999ms', 'is shorter than 1s', 'use at least "1s"'],
    ['0.5s', 'is shorter than 1s', 'use at least "1s"'],
    ['PT0.9S', 'is shorter than 1s', '"1s"'],
    // Past 1000 years: the cutoff overflowed a Date ("Invalid time value" mid-run).
    ['10000y', '"10000y" is longer than 1000y, the longest duration the tool takes', 'use at most "1000y"'],
    ['999999999999999y', 'is longer than 1000y', 'use at most "1000y"'],
    ['P1001Y', 'is longer than 1000y', '"1000y"'],
    ['1000y1ms', 'is longer than 1000y', '"1000y"'],
    ['52143w', 'is longer than 1000y', '"1000y"'],
    // Fractions that are not whole milliseconds: refused rather than rounded.
    ['1.0005s', '"1.0005s" is not a whole number of milliseconds', 'write "1000ms" or "1001ms"'],
    ['1.000001h', 'is not a whole number of milliseconds', 'write "3600003ms" or "3600004ms"'],
    [`${'9'.repeat(100)}y`, 'is too long to be a duration', 'larger unit'],
  ])('rejects %j: %s', (text, message, fix) => {
    const result = parseDuration(text);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.message).toContain(message);
      expect(result.fix).toContain(fix);
    }
  });

  it.each([
    ['1ms', 1],
    ['250ms', 250],
    ['30s', 30 * S],
    ['2147483647ms', 2_147_483_647],
  ])('database timeouts accept %s (whole ms from 1ms)', (text, ms) => {
    expect(parseDuration(text, DATABASE_TIMEOUT)).toEqual({ ok: true, ms });
  });

  it.each([
    ['0.5ms', 'is shorter than 1ms', 'use at least "1ms"'],
    ['1.5ms', 'is not a whole number of milliseconds', 'write "1ms" or "2ms"'],
    ['0.0015s', 'is not a whole number of milliseconds', 'write "1ms" or "2ms"'],
    ['25d', "is longer than 2147483647ms, PostgreSQL's limit for a timeout", 'use at most "2147483647ms"'],
  ])('database timeouts reject %j', (text, message, fix) => {
    expect(parseDuration(text, DATABASE_TIMEOUT)).toEqual({
      ok: false,
      message: expect.stringContaining(message),
      fix: expect.stringContaining(fix),
    });
  });

  it('clips a huge input in its message', () => {
    const result = parseDuration(`x${'y'.repeat(1_000_000)}`);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message.length).toBeLessThan(300);
  });
});

describe('durationMs and the cutoffs it feeds', () => {
  it('gives the exact milliseconds of every duration a field accepts, and throws on anything else', () => {
    expect(durationMs('1.001s')).toBe(1001);
    expect(durationMs('1ms')).toBe(1); // a database timeout
    expect(() => durationMs('0.0001ms')).toThrow(/past config validation/);
    expect(() => durationMs('10000y')).toThrow(/past config validation/);
  });

  it.each([new Date(0), new Date('2026-06-30T12:00:00Z'), new Date('9999-12-31T23:59:59Z')])(
    'the longest retention gives a valid cutoff at %s',
    (now) => {
      const cutoffs = computeCutoffs({ by: 'purpose', rules: { Legal: '1000y' }, default: '1s' }, now);
      expect(cutoffs.rules[0]!.cutoff.getTime()).toBe(now.getTime() - MAX_DURATION_MS);
      expect(Number.isNaN(cutoffs.rules[0]!.cutoff.getTime())).toBe(false);
      expect(() => cutoffs.rules[0]!.cutoff.toISOString()).not.toThrow();
      expect(cutoffs.fallback!.cutoff.getTime()).toBe(now.getTime() - POLICY_DURATION.minMs);
    },
  );
});

describe('formatDuration', () => {
  it.each([
    [365 * D, '1y'],
    [30 * D, '30d'],
    [36 * H, '1d12h'],
    [90 * S, '1m30s'],
    [250, '250ms'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
