import { describe, expect, it } from 'vitest';
import type { Item } from '../../lib/core/types.ts';
import { isEligible } from '../../lib/policy/classify.ts';
import { emergencyCutoffs, NewestTimestamps } from '../../lib/policy/emergency.ts';
import { describeCutoffs } from '../../lib/policy/plan.ts';
import { ago, CUTOFF, DAY, FakeRuns, item, listed, policyWith, T0 } from '../support/fakeRuns.ts';

/**
 * Emergency rules: exact sets of what goes (pure), then through the real engine over the fakes:
 * oldest first, holds, limits, maxDeletes, dry run, the audit rule and the disk_ok stop.
 */
const HOUR = 3_600_000;

/** `f-00` … `f-09`, one hour apart, f-00 the oldest (10 h old). */
const files = (count: number): Item[] =>
  Array.from({ length: count }, (_, index) => item(`f-${String(index).padStart(2, '0')}`, ago((10 - index) * HOUR)));

function eligibleKeys(items: Item[], cutoffs: ReturnType<typeof emergencyCutoffs>): string[] {
  return items.filter((candidate) => isEligible(candidate, cutoffs)).map((candidate) => candidate.key);
}

function keepFromOf(items: Item[], count: number): Date | null {
  const newest = new NewestTimestamps(count);
  for (const candidate of items) newest.offer(candidate.timestamp);
  return newest.keepFrom();
}

describe('emergency cutoffs (pure)', () => {
  it('keepNewest N: everything but the N newest, whatever order the items come in', () => {
    const items = files(10);
    const shuffled = [
      items[4]!,
      items[9]!,
      items[0]!,
      items[7]!,
      items[2]!,
      items[8]!,
      items[1]!,
      items[6]!,
      items[3]!,
      items[5]!,
    ];
    const cutoffs = emergencyCutoffs({ keepNewest: 3 }, T0, { keepFrom: keepFromOf(shuffled, 3) });
    expect(eligibleKeys(items, cutoffs)).toEqual(['f-00', 'f-01', 'f-02', 'f-03', 'f-04', 'f-05', 'f-06']);
    expect(describeCutoffs(cutoffs)).toEqual([
      { rule: 'emergency: keep newest 3', cutoff: items[7]!.timestamp.toISOString() },
    ]);
    expect(isEligible(items[0]!, cutoffs)?.rule).toBe('emergency: keep newest 3');
  });

  it('keepNewest N with N or fewer items in scope: nothing goes', () => {
    for (const count of [3, 2, 0]) {
      const items = files(count);
      const cutoffs = emergencyCutoffs({ keepNewest: 3 }, T0, { keepFrom: keepFromOf(items, 3) });
      expect(eligibleKeys(items, cutoffs)).toEqual([]);
    }
  });

  it('items sharing the N-th newest timestamp are all kept (a cutoff is an instant)', () => {
    const at = ago(5 * HOUR);
    const items = [item('a', ago(9 * HOUR)), item('b', at), item('c', at), item('d', ago(HOUR))];
    const cutoffs = emergencyCutoffs({ keepNewest: 2 }, T0, { keepFrom: keepFromOf(items, 2) });
    expect(eligibleKeys(items, cutoffs)).toEqual(['a']);
  });

  it('retention replaces the policy retention; with keepNewest an item goes only when both rules say so', () => {
    const items = files(10);
    expect(eligibleKeys(items, emergencyCutoffs({ retention: '5h' }, T0))).toEqual([
      'f-00',
      'f-01',
      'f-02',
      'f-03',
      'f-04',
    ]);
    expect(isEligible(items[0]!, emergencyCutoffs({ retention: '5h' }, T0))?.rule).toBe('emergency: retention 5h');
    // keepNewest 8 keeps f-02…f-09: it narrows the retention's five to two.
    const both = emergencyCutoffs({ retention: '5h', keepNewest: 8 }, T0, { keepFrom: keepFromOf(items, 8) });
    expect(eligibleKeys(items, both)).toEqual(['f-00', 'f-01']);
    expect(isEligible(items[0]!, both)?.rule).toBe('emergency: retention 5h and keep newest 8');
    // keepNewest 2 would let f-00…f-07 go: the retention narrows it back to five.
    const wide = emergencyCutoffs({ retention: '5h', keepNewest: 2 }, T0, { keepFrom: keepFromOf(items, 2) });
    expect(eligibleKeys(items, wide)).toHaveLength(5);
  });

  it('per-purpose emergency retention, and --before only tightens', () => {
    const legal = item('legal', ago(3 * DAY), { attributes: { kind: 'legal' } });
    const temp = item('temp', ago(3 * DAY), { attributes: { kind: 'temp' } });
    const cutoffs = emergencyCutoffs({ retention: { by: 'kind', rules: { legal: '1y', temp: '1d' } } }, T0);
    expect(eligibleKeys([legal, temp], cutoffs)).toEqual(['temp']);
    expect(isEligible(temp, cutoffs)?.rule).toBe('emergency: kind=temp: 1d');
    const before = emergencyCutoffs({ keepNewest: 1 }, T0, { keepFrom: T0, before: ago(4 * DAY) });
    expect(eligibleKeys([legal, temp], before)).toEqual([]);
  });
});

describe('engine: emergency runs', () => {
  /** 10 young files (within the 30d retention): only an emergency deletes any of them. */
  const young = () => Array.from({ length: 10 }, (_, index) => item(`f-${index}`, ago((10 - index) * HOUR)));
  const emergencyPolicy = (emergency: Record<string, unknown>, limits = { maxDeleteFraction: 1 }) =>
    policyWith({ batchSize: 2, emergency, limits });

  it('keepNewest: deletes exactly all but the N newest, held ones excepted, with the rule in the audit trail', async () => {
    const runs = new FakeRuns(
      { items: [...young(), item('older', ago(40 * DAY))] },
      emergencyPolicy({ keepNewest: 3 }),
    );
    await runs.control.addHold({ policy: null, key: 'f-1', prefix: false, reason: 'litigation', createdBy: 'test' });
    const report = await runs.run({ emergency: { reason: 'operator' } });
    expect(report).toMatchObject({ status: 'completed', deleted: 7, held: 1, emergency: { reason: 'operator' } });
    expect(runs.store.keys()).toEqual(['f-1', 'f-7', 'f-8', 'f-9']);
    const rules = runs.control.records.filter((record) => record.action === 'delete').map((record) => record.rule);
    expect(new Set(rules)).toEqual(new Set(['emergency: keep newest 3']));
    // Oldest first, and no checkpoint moved by a run that does not pass over the scope in key order.
    expect(runs.store.deleteCalls[0]).toEqual(['older', 'f-0']);
    expect(runs.control.checkpoints.size).toBe(0);
    expect(report.backlog).toBeNull();
    expect(runs.events('run_completed')[0]).toMatchObject({ emergency: { reason: 'operator' } });
  });

  it('a dry run lists exactly what the live run deletes (invariant 5)', async () => {
    const runs = new FakeRuns({ items: young() }, emergencyPolicy({ keepNewest: 4 }));
    const plan = await runs.run({ dryRun: true, emergency: { reason: 'operator' } });
    expect(runs.store.keys()).toHaveLength(10);
    const live = await runs.run({ emergency: { reason: 'operator' } });
    expect(listed(plan, 'would_delete')).toEqual(listed(live, 'deleted'));
    expect(listed(live, 'deleted')).toEqual(['f-0', 'f-1', 'f-2', 'f-3', 'f-4', 'f-5']);
  });

  it('maxDeletes caps the run (the oldest go), and the safety limits still apply unless forced', async () => {
    const capped = new FakeRuns({ items: young() }, emergencyPolicy({ keepNewest: 1, maxDeletes: 4 }));
    expect(await capped.run({ emergency: { reason: 'operator' } })).toMatchObject({ status: 'completed', deleted: 4 });
    expect(capped.store.keys()).toEqual(['f-4', 'f-5', 'f-6', 'f-7', 'f-8', 'f-9']);

    const guarded = new FakeRuns({ items: young() }, emergencyPolicy({ keepNewest: 1 }, { maxDeleteFraction: 0.5 }));
    expect(await guarded.run({ emergency: { reason: 'operator' } })).toMatchObject({
      status: 'aborted_limit',
      deleted: 0,
    });
    expect(await guarded.run({ emergency: { reason: 'operator' }, force: true })).toMatchObject({ deleted: 9 });
  });

  it('a run for a full disk stops once the disk is back under the warning line (disk_ok)', async () => {
    const runs = new FakeRuns({ items: young() }, emergencyPolicy({ keepNewest: 1 }));
    let asked = 0;
    const diskOk = async () => ++asked >= 2 && runs.store.keys().length <= 7;
    const report = await runs.run({ emergency: { reason: 'disk_critical', usedPercent: 93.5, diskOk } });
    expect(report).toMatchObject({
      status: 'partial',
      stopReason: 'disk_ok',
      deleted: 4,
      emergency: { reason: 'disk_critical', usedPercent: 93.5 },
    });
    expect(runs.store.keys()).toEqual(['f-4', 'f-5', 'f-6', 'f-7', 'f-8', 'f-9']);
    expect(runs.events('disk_ok')).toHaveLength(1);
  });

  it('without --emergency the policy retention applies: nothing young goes', async () => {
    const runs = new FakeRuns(
      { items: [...young(), item('old', new Date(CUTOFF.getTime() - 1))] },
      emergencyPolicy({ keepNewest: 1 }),
    );
    expect(await runs.run()).toMatchObject({ deleted: 1 });
    expect(runs.store.keys()).toHaveLength(10);
  });
});
