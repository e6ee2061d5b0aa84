import { describe, expect, it } from 'vitest';
import { parseDurationFlag, parseInstant, parsePositiveInt } from '../../lib/cli/flags.ts';
import { parseInstantText } from '../../lib/core/instants.ts';
import { ConfigError } from '../../lib/errors.ts';

const utcOnly = { requireZone: true, example: (text: string) => `"before": "${text}"` };

/** The one issue of the ConfigError `parse` throws, as printed. */
function refusal(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('instants are real dates', () => {
  it.each([
    ['2024-01-31', '2024-01-31T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
    ['2000-02-29', '2000-02-29T00:00:00.000Z'],
    ['2024-12-31T23:59:59Z', '2024-12-31T23:59:59.000Z'],
    ['2024-01-31T00:00:00.1234Z', '2024-01-31T00:00:00.123Z'],
    ['2024-01-31T10:00:00+02:00', '2024-01-31T08:00:00.000Z'],
    ['2024-01-31T10:00:00-0530', '2024-01-31T15:30:00.000Z'],
    ['2024-01-01T00:30:00+14:00', '2023-12-31T10:30:00.000Z'],
    ['0099-06-01', '0099-06-01T00:00:00.000Z'],
  ])('%s is %s', (text, iso) => {
    const parsed = parseInstantText(text, utcOnly);
    expect(parsed.ok && parsed.instant.toISOString()).toBe(iso);
  });

  it.each([
    // new Date() reads these as the next day or month: a cutoff moved without a word.
    ['2024-02-30', 'is not a calendar date: February 2024 has 29 days', 'use a day from 01 to 29'],
    ['2023-02-29', 'is not a calendar date: February 2023 has 28 days', 'from 01 to 28'],
    ['1900-02-29', 'is not a calendar date: February 1900 has 28 days', 'from 01 to 28'],
    ['2024-04-31', 'is not a calendar date: April 2024 has 30 days', 'from 01 to 30'],
    ['2024-01-00', 'is not a calendar date: January 2024 has 31 days', 'from 01 to 31'],
    ['2024-13-01', 'has no month 13', 'months run from 01 to 12'],
    ['2024-01-31T25:00:00Z', 'is not a time of day', 'hours run from 00 to 23'],
    ['2024-01-31T24:00:00Z', 'is not a time of day', 'hours run from 00 to 23'],
    ['2024-01-31T23:60:00Z', 'is not a time of day', 'minutes and seconds from 00 to 59'],
    ['2024-01-31T23:59:60Z', 'is not a time of day', 'seconds from 00 to 59'],
    ['2024-01-31T00:00:00+15:00', 'has an offset no time zone uses', '+14:00'],
    ['2024-01-31T00:00:00+02:75', 'has an offset no time zone uses', 'e.g. +02:00'],
    ['2024-01-31T00:00:00', 'has no time zone', 'add one: "before": "2024-01-31T00:00:00Z" for UTC'],
    ['yesterday', 'is not an ISO date', 'e.g. "before": "2024-01-31"'],
    ['2024-1-31', 'is not an ISO date', 'e.g.'],
  ])('refuses %j: %s', (text, message, fix) => {
    expect(parseInstantText(text, utcOnly)).toEqual({
      ok: false,
      message: `${JSON.stringify(text)} ${message}`,
      fix: expect.stringContaining(fix),
    });
  });
});

describe('CLI flags', () => {
  it('--before refuses impossible dates and times, naming the flag and the fix', () => {
    expect(refusal(() => parseInstant('--before', '2024-02-30'))).toBe(
      'error: --before: "2024-02-30" is not a calendar date: February 2024 has 29 days (use a day from 01 to 29)',
    );
    expect(refusal(() => parseInstant('--before', '2024-01-31 25:00'))).toBe(
      'error: --before: "2024-01-31 25:00" is not a time of day (hours run from 00 to 23, minutes and seconds from 00 to 59)',
    );
    expect(refusal(() => parseInstant('--before', 'yesterday'))).toBe(
      'error: --before: "yesterday" is not an ISO date (e.g. --before 2024-01-31 or --before 2024-01-31T00:00:00Z)',
    );
  });

  it('--before keeps reading a time without a zone as local time, and a date as UTC midnight', () => {
    expect(parseInstant('--before', '2024-02-29')!.toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(parseInstant('--before', '2024-02-29T10:30')!.getTime()).toBe(new Date(2024, 1, 29, 10, 30).getTime());
  });

  it('--budget takes the same durations as the config', () => {
    expect(parseDurationFlag('--budget', '1.5s')).toBe(1500);
    expect(refusal(() => parseDurationFlag('--budget', '0.0001ms'))).toBe(
      'error: --budget: "0.0001ms" is shorter than 1s, the shortest duration this field takes (use at least "1s")',
    );
    expect(refusal(() => parseDurationFlag('--budget', '10000y'))).toBe(
      'error: --budget: "10000y" is longer than 1000y, the longest duration the tool takes (use at most "1000y")',
    );
  });

  it('--limit refuses numbers it cannot count exactly', () => {
    expect(parsePositiveInt('--limit', '1000')).toBe(1000);
    expect(refusal(() => parsePositiveInt('--limit', '99999999999999999999'))).toContain(
      'error: --limit: "99999999999999999999" is not a positive whole number below 2^53',
    );
  });
});
