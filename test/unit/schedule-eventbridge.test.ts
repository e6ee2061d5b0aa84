import { describe, expect, it } from 'vitest';
import { nextRun } from '../../lib/policy/schedule.ts';
import { toEventBridgeCron } from '../../lib/serverless/schedule.ts';

describe('toEventBridgeCron', () => {
  it.each([
    ['0 2 * * *', 'cron(0 2 * * ? *)'],
    ['*/15 * * * *', 'cron(0/15 * * * ? *)'],
    ['5/20 * * * *', 'cron(5/20 * * * ? *)'],
    ['0 */6 * * *', 'cron(0 0/6 * * ? *)'],
    ['30 1 1 * *', 'cron(30 1 1 * ? *)'],
    ['0 0 1,15 */3 *', 'cron(0 0 1,15 1/3 ? *)'],
    // Day of week: cron 0/7 = Sunday, 1 = Monday; EventBridge 1 = Sunday, 2 = Monday.
    ['0 9 * * 1-5', 'cron(0 9 ? * 2-6 *)'],
    ['0 9 * * 0', 'cron(0 9 ? * 1 *)'],
    ['0 9 * * 7', 'cron(0 9 ? * 1 *)'],
    ['0 9 * * 5-7', 'cron(0 9 ? * 1,6,7 *)'],
    ['0 9 * * 0-6', 'cron(0 9 * * ? *)'],
    // EventBridge has no `/` in day-of-week: written out.
    ['0 9 * * */2', 'cron(0 9 ? * 1,3,5,7 *)'],
    // A stepped range that stops before the field's end is not `start/step` in EventBridge.
    ['0-30/10 * * * *', 'cron(0,10,20,30 * * * ? *)'],
    ['1,2,3,4 8-17 * * *', 'cron(1-4 8-17 * * ? *)'],
  ])('%s → %s', (schedule, expected) => {
    expect(toEventBridgeCron(schedule)).toEqual({ ok: true, expression: expected });
  });

  it.each([
    ['0 2 1 * 1', /restricts both day-of-month and day-of-week/],
    ['0 2 */2 * 1', /restricts both/],
    ['0 2 1-31 * 0-6', /restricts both/],
    ['0 2 * *', /has 4 fields/],
    ['60 * * * *', /minute "60" is outside 0-59/],
    ['0 24 * * *', /hour "24"/],
    ['0 0 0 * *', /day-of-month "0"/],
    ['0 0 * * MON', /day-of-week "MON" is not a number/],
  ])('refuses %s', (schedule, message) => {
    const result = toEventBridgeCron(schedule);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.message).toMatch(message);
      expect(result.fix).not.toBe('');
    }
  });

  /** An independent reading of EventBridge cron fields, to check conversions fire at the same instants. */
  function eventBridgeMatches(expression: string, at: Date): boolean {
    const fields = /^cron\((.*)\)$/.exec(expression)![1]!.split(' ');
    const matches = (field: string, value: number, max: number): boolean =>
      field === '*' ||
      field === '?' ||
      field.split(',').some((part) => {
        const step = /^(\d+)\/(\d+)$/.exec(part);
        if (step) return value >= Number(step[1]) && value <= max && (value - Number(step[1])) % Number(step[2]) === 0;
        const [low, high] = part.split('-').map(Number);
        return value >= low! && value <= (high ?? low)!;
      });
    return (
      matches(fields[0]!, at.getUTCMinutes(), 59) &&
      matches(fields[1]!, at.getUTCHours(), 23) &&
      matches(fields[2]!, at.getUTCDate(), 31) &&
      matches(fields[3]!, at.getUTCMonth() + 1, 12) &&
      matches(fields[4]!, at.getUTCDay() + 1, 7)
    );
  }

  it.each([
    '0 2 * * *',
    '*/15 * * * *',
    '0 9 * * 1-5',
    '0 9 * * 5-7',
    '0 */6 * * 0',
    '0-30/10 3 * * *',
    '0 0 1,15 */3 *',
    '45 23 31 * *',
  ])('%s fires at the same instants as cron (next 200 runs)', (schedule) => {
    const converted = toEventBridgeCron(schedule);
    if (!converted.ok) throw new Error(converted.message);
    let at = new Date('2025-01-01T00:00:00Z');
    for (let run = 0; run < 200; run += 1) {
      const next = nextRun(schedule, at);
      expect(eventBridgeMatches(converted.expression, next), `${next.toISOString()} matches`).toBe(true);
      // Every minute strictly between two cron runs must not fire in EventBridge either (sampled).
      const gap = (next.getTime() - at.getTime()) / 60_000;
      for (let minute = 1; minute < Math.min(gap, 120); minute += 7) {
        const between = new Date(at.getTime() + minute * 60_000);
        expect(eventBridgeMatches(converted.expression, between), `${between.toISOString()} does not match`).toBe(
          false,
        );
      }
      at = next;
    }
  });
});
