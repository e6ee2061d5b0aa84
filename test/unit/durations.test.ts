import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../lib/config/durations.ts';

const S = 1000;
const H = 3600 * S;
const D = 24 * H;

describe('parseDuration', () => {
  it.each([
    ['90s', 90 * S],
    ['30m', 30 * 60 * S],
    ['24h', 24 * H],
    ['30d', 30 * D],
    ['2w', 14 * D],
    ['1y', 365 * D],
    ['7y', 7 * 365 * D],
    ['1d12h', 36 * H],
    ['1.5h', 1.5 * H],
    ['P30D', 30 * D],
    ['P1Y', 365 * D],
    ['PT1H30M', 1.5 * H],
    ['P1DT12H', 36 * H],
    ['PT45S', 45 * S],
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
    ['P', 'is not a duration', 'ISO'],
    ['-5d', 'is not a duration', 'unit'],
  ])('rejects %j: %s', (text, message, fix) => {
    const result = parseDuration(text);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.message).toContain(message);
      expect(result.fix).toContain(fix);
    }
  });
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
