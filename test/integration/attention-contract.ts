import { describe, expect, it } from 'vitest';
import type { ControlStore, FailureStreakUpdate } from '../../lib/core/control.ts';

/**
 * Failure streaks (the attention queue), part of the ControlStore contract: both backends apply
 * the rules of lib/core/attention.ts, whatever they are written in. `store()` is the contract
 * suite's migrated store; `policyName` gives each test its own policy.
 */
export function attentionContract(store: () => ControlStore, policyName: (label: string) => string): void {
  describe('failure streaks (attention)', () => {
    const update = (policy: string, runId: string, changes: Partial<FailureStreakUpdate>): FailureStreakUpdate => ({
      policy,
      runId,
      failed: [],
      settled: [],
      wholePass: false,
      ...changes,
    });
    const failures = async (policy: string) =>
      Object.fromEntries((await store().attentionItems(policy, 1)).map((item) => [item.key, item.failures]));

    it('counts consecutive failed runs per key, once per run, and ends a streak when the item is settled', async () => {
      const policy = policyName('streaks');
      const other = policyName('streaks-other');
      const failed = (...keys: string[]) => keys.map((key) => ({ key, error: `EPERM: ${key}` }));
      await store().noteFailureStreaks(update(policy, 'run-1', { failed: failed('a', 'b', 'c') }));
      await store().noteFailureStreaks(update(other, 'run-1', { failed: failed('a') }));
      await store().noteFailureStreaks(update(policy, 'run-2', { failed: failed('a', 'b'), settled: ['c'] }));
      // The same run noted again (a retried write) counts once.
      await store().noteFailureStreaks(update(policy, 'run-2', { failed: failed('a', 'b') }));
      await store().noteFailureStreaks(
        update(policy, 'run-3', { failed: [{ key: 'a', error: 'EACCES' }], settled: ['b', 'never-failed'] }),
      );
      expect(await failures(policy)).toEqual({ a: 3 });
      expect(await failures(other)).toEqual({ a: 1 });

      const [item] = await store().attentionItems(policy, 3);
      expect(item).toMatchObject({ policy, key: 'a', failures: 3, lastRunId: 'run-3', lastError: 'EACCES' });
      expect(item!.firstFailedAt.getTime()).toBeLessThanOrEqual(item!.lastFailedAt.getTime());
      expect(item!.dismissed).toBeNull();
      expect(await store().attentionItems(policy, 4)).toEqual([]);

      // A streak that ended starts again from one.
      await store().noteFailureStreaks(update(policy, 'run-4', { failed: failed('b') }));
      expect(await failures(policy)).toEqual({ a: 3, b: 1 });
    });

    it('lists most failures first, then by key; a whole pass ends every streak it did not extend', async () => {
      const policy = policyName('order');
      await store().noteFailureStreaks(
        update(policy, 'r1', { failed: ['z', 'y', 'x'].map((key) => ({ key, error: 'e' })) }),
      );
      await store().noteFailureStreaks(update(policy, 'r2', { failed: [{ key: 'z', error: 'e' }] }));
      expect((await store().attentionItems(policy, 1)).map((item) => item.key)).toEqual(['z', 'x', 'y']);
      // A partial run settles only what it names.
      await store().noteFailureStreaks(update(policy, 'r3', { failed: [{ key: 'y', error: 'e' }] }));
      expect(await failures(policy)).toEqual({ x: 1, y: 2, z: 2 });
      await store().noteFailureStreaks(update(policy, 'r4', { failed: [{ key: 'y', error: 'e' }], wholePass: true }));
      expect(await failures(policy)).toEqual({ y: 3 });
      await store().noteFailureStreaks(update(policy, 'r5', { wholePass: true }));
      expect(await failures(policy)).toEqual({});
    });

    it('a dismissal is kept while the streak lasts and goes with it', async () => {
      const policy = policyName('dismiss');
      const fail = (runId: string) =>
        store().noteFailureStreaks(update(policy, runId, { failed: [{ key: 'k', error: 'e' }] }));
      await fail('r1');
      expect(await store().dismissAttention(policy, 'unknown', 'cli:alice@host', 'why')).toBeNull();
      const dismissed = await store().dismissAttention(policy, 'k', 'cli:alice@host', 'owned by team X (#123)');
      expect(dismissed).toMatchObject({
        key: 'k',
        failures: 1,
        dismissed: { by: 'cli:alice@host', reason: 'owned by team X (#123)' },
      });
      expect(dismissed!.dismissed!.at).toBeInstanceOf(Date);
      await fail('r2');
      const [still] = await store().attentionItems(policy, 1);
      expect(still).toMatchObject({ failures: 2, dismissed: { by: 'cli:alice@host' } });
      await store().noteFailureStreaks(update(policy, 'r3', { settled: ['k'] }));
      await fail('r4');
      expect((await store().attentionItems(policy, 1))[0]).toMatchObject({ failures: 1, dismissed: null });
    });

    it('notes 1,000 failures in one call, long keys included', async () => {
      const policy = policyName('many');
      const long = `${'d/'.repeat(500)}file`;
      const keys = [...Array.from({ length: 999 }, (_, index) => `k${index}`), long];
      const failed = keys.map((key) => ({ key, error: 'x'.repeat(5_000) }));
      await store().noteFailureStreaks(update(policy, 'r1', { failed }));
      await store().noteFailureStreaks(update(policy, 'r2', { failed: failed.slice(0, 10), settled: [long] }));
      const items = await store().attentionItems(policy, 1);
      expect(items).toHaveLength(999);
      expect(items.slice(0, 10).every((item) => item.failures === 2)).toBe(true);
      expect(items[0]!.lastError.length).toBeLessThanOrEqual(1_000);
      expect(items.some((item) => item.key === long)).toBe(false);
    });
  });
}
