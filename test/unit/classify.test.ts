import { describe, expect, it } from 'vitest';
import type { CutoffRule, Cutoffs, Hold, Item } from '../../lib/core/types.ts';
import { cutoffFor, holdFor, isEligible, itemHold, overdueSeconds } from '../../lib/policy/classify.ts';

const NOW = new Date('2024-06-01T00:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function rule(value: string, retention: string, retentionMs: number): CutoffRule {
  return { value, retention, retentionMs, cutoff: new Date(NOW.getTime() - retentionMs) };
}

function fallback(retention: string, retentionMs: number): NonNullable<Cutoffs['fallback']> {
  return { retention, retentionMs, cutoff: new Date(NOW.getTime() - retentionMs) };
}

const flat: Cutoffs = { computedAt: NOW, rules: [], fallback: fallback('1h', HOUR) };

const byPurpose: Cutoffs = {
  computedAt: NOW,
  by: 'purpose_code',
  rules: [rule('Financial', '1y', 365 * DAY), rule('Marketing', '30d', 30 * DAY)],
  fallback: fallback('90d', 90 * DAY),
};

const byPrefix: Cutoffs = {
  computedAt: NOW,
  by: 'prefix',
  rules: [rule('testing/', '24h', DAY), rule('testing/tmp/', '1h', HOUR), rule('logs/', '7d', 7 * DAY)],
};

function item(key: string, timestamp: Date, attributes?: Item['attributes']): Item {
  return { key, timestamp, ...(attributes ? { attributes } : {}) };
}

const ages = (ms: number): Date => new Date(NOW.getTime() - ms);

describe('cutoffFor', () => {
  it.each([
    { name: 'flat retention', cutoffs: flat, item: item('a', NOW), rule: 'retention: 1h', cutoff: ages(HOUR) },
    {
      name: 'attribute match',
      cutoffs: byPurpose,
      item: item('r1', NOW, { purpose_code: 'Financial' }),
      rule: 'purpose_code=Financial: 1y',
      cutoff: ages(365 * DAY),
    },
    {
      name: 'other attribute value',
      cutoffs: byPurpose,
      item: item('r2', NOW, { purpose_code: 'Marketing' }),
      rule: 'purpose_code=Marketing: 30d',
      cutoff: ages(30 * DAY),
    },
    {
      name: 'attribute match is exact (case)',
      cutoffs: byPurpose,
      item: item('r3', NOW, { purpose_code: 'financial' }),
      rule: 'default: 90d',
      cutoff: ages(90 * DAY),
    },
    {
      name: 'null attribute → default',
      cutoffs: byPurpose,
      item: item('r4', NOW, { purpose_code: null }),
      rule: 'default: 90d',
      cutoff: ages(90 * DAY),
    },
    {
      name: 'no attributes → default',
      cutoffs: byPurpose,
      item: item('r5', NOW),
      rule: 'default: 90d',
      cutoff: ages(90 * DAY),
    },
    {
      name: 'longest prefix wins',
      cutoffs: byPrefix,
      item: item('testing/tmp/a.log', NOW),
      rule: 'prefix=testing/tmp/: 1h',
      cutoff: ages(HOUR),
    },
    {
      name: 'shorter prefix when the longer does not match',
      cutoffs: byPrefix,
      item: item('testing/keep/a.log', NOW),
      rule: 'prefix=testing/: 24h',
      cutoff: ages(DAY),
    },
    {
      name: 'rule order does not matter',
      cutoffs: { ...byPrefix, rules: [...byPrefix.rules].reverse() },
      item: item('testing/tmp/a.log', NOW),
      rule: 'prefix=testing/tmp/: 1h',
      cutoff: ages(HOUR),
    },
  ])('$name', ({ cutoffs, item: input, rule: expectedRule, cutoff }) => {
    expect(cutoffFor(input, cutoffs)).toEqual({ rule: expectedRule, cutoff });
  });

  it.each([
    { name: 'prefix matches nothing, no default', cutoffs: byPrefix, item: item('other/a.log', ages(10 * 365 * DAY)) },
    { name: 'prefix is not a substring match', cutoffs: byPrefix, item: item('x/testing/a.log', ages(10 * 365 * DAY)) },
    {
      name: 'attribute matches nothing, no default',
      cutoffs: { ...byPurpose, fallback: undefined } as Cutoffs,
      item: item('r', ages(10 * 365 * DAY), { purpose_code: 'Legal' }),
    },
    {
      name: 'no rules and no fallback',
      cutoffs: { computedAt: NOW, rules: [] } as Cutoffs,
      item: item('a', ages(10 * 365 * DAY)),
    },
  ])('unclassified: $name → undefined (kept)', ({ cutoffs, item: input }) => {
    expect(cutoffFor(input, cutoffs)).toBeUndefined();
    expect(isEligible(input, cutoffs)).toBeUndefined();
  });
});

describe('isEligible', () => {
  const cutoff = ages(HOUR);
  it.each([
    { name: '1 ms before the cutoff', timestamp: new Date(cutoff.getTime() - 1), eligible: true },
    { name: 'exactly at the cutoff', timestamp: cutoff, eligible: false },
    { name: '1 ms after the cutoff', timestamp: new Date(cutoff.getTime() + 1), eligible: false },
    { name: 'far in the past', timestamp: new Date(0), eligible: true },
    { name: 'in the future (clock skew)', timestamp: new Date(NOW.getTime() + DAY), eligible: false },
  ])('$name → eligible: $eligible', ({ timestamp, eligible }) => {
    const result = isEligible({ key: 'k', timestamp, size: 7 }, flat);
    if (!eligible) {
      expect(result).toBeUndefined();
      return;
    }
    expect(result).toEqual({ key: 'k', timestamp, size: 7, cutoff, rule: 'retention: 1h' });
  });

  it('applies the per-purpose cutoff, not the fallback', () => {
    const twoYearsOld = ages(2 * 365 * DAY);
    const sixMonthsOld = ages(180 * DAY);
    expect(isEligible(item('f', sixMonthsOld, { purpose_code: 'Financial' }), byPurpose)).toBeUndefined();
    expect(isEligible(item('f', twoYearsOld, { purpose_code: 'Financial' }), byPurpose)?.rule).toBe(
      'purpose_code=Financial: 1y',
    );
    expect(isEligible(item('m', sixMonthsOld, { purpose_code: 'Marketing' }), byPurpose)?.rule).toBe(
      'purpose_code=Marketing: 30d',
    );
  });
});

describe('overdueSeconds', () => {
  it.each([
    { overdueMs: 1, seconds: 0.001 },
    { overdueMs: 90_000, seconds: 90 },
    { overdueMs: DAY, seconds: 86_400 },
  ])('$overdueMs ms past the cutoff → $seconds s', ({ overdueMs, seconds }) => {
    const cutoff = ages(HOUR);
    expect(
      overdueSeconds({ key: 'k', timestamp: new Date(cutoff.getTime() - overdueMs), cutoff, rule: 'retention: 1h' }),
    ).toBe(seconds);
  });
});

describe('holdFor', () => {
  const hold = (id: number, key: string, prefix: boolean): Hold => ({
    id,
    policy: null,
    key,
    prefix,
    reason: 'litigation',
    createdBy: 'alice',
    createdAt: NOW,
  });
  const holds = [hold(1, 'invoices/2020/a.pdf', false), hold(2, 'legal/', true), hold(3, 'cases/7', false)];

  it.each([
    { key: 'invoices/2020/a.pdf', id: 1 },
    { key: 'invoices/2020/a.pdf.bak', id: undefined },
    { key: 'invoices/2020/', id: undefined },
    { key: 'legal/', id: 2 },
    { key: 'legal/2021/b.pdf', id: 2 },
    { key: 'legal', id: undefined },
    { key: 'xlegal/b.pdf', id: undefined },
    { key: 'cases/7', id: 3 },
    { key: 'cases/7/doc.pdf', id: undefined },
    { key: 'unrelated', id: undefined },
  ])('$key → hold $id', ({ key, id }) => {
    expect(holdFor(key, holds)?.id).toBe(id);
  });

  it('no holds → undefined', () => {
    expect(holdFor('anything', [])).toBeUndefined();
  });
});

describe('itemHold: a row is held by a hold on its key or on its linked file', () => {
  const hold = (id: number, key: string, prefix: boolean): Hold => ({
    id,
    policy: null,
    key,
    prefix,
    reason: 'litigation',
    createdBy: 'alice',
    createdAt: NOW,
  });
  const holds = [hold(1, 'docs/d3.pdf', false), hold(2, 'legal/', true), hold(3, '7', false)];

  it.each([
    { item: { key: '3', linkedKey: 'docs/d3.pdf' }, id: 1 },
    { item: { key: '4', linkedKey: 'legal/2019/case.pdf' }, id: 2 },
    { item: { key: '7', linkedKey: 'legal/x.pdf' }, id: 3 },
    { item: { key: '5', linkedKey: 'docs/d3.pdf.bak' }, id: undefined },
    { item: { key: '6' }, id: undefined },
    { item: { key: 'docs/d3.pdf' }, id: 1 },
  ])('$item.key with file $item.linkedKey → hold $id', ({ item, id }) => {
    expect(itemHold(item, holds)?.id).toBe(id);
  });
});
