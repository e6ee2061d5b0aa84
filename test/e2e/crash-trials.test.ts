import { beforeAll, describe, expect, it } from 'vitest';
import { mapConcurrent } from '../../lib/core/async.ts';
import { describeTrials } from '../support/crashTrialFigures.ts';
import { CrashTrials, type TrialResult, trialPlans } from '../support/crashTrials.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * kill -9 of `retention run` (its whole process group) at random moments, 30 trials over fs and
 * rows-with-linked-files policies (issue 10; 100 and more: `npm run test:crash`). The seeds are
 * new on every run and printed; `CRASH_SEED=<first seed>` replays a set.
 */
const TRIALS = 30;
const firstSeed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 1_000_000));
if (!Number.isSafeInteger(firstSeed) || firstSeed < 0)
  throw new Error(`CRASH_SEED: "${process.env.CRASH_SEED}" is not a whole number (e.g. CRASH_SEED=1234)`);
const plans = trialPlans(firstSeed, TRIALS);
const shared = usePostgresAndScratch('retention-crash-trials-');
const results = new Map<number, TrialResult>();
let runner: CrashTrials;

// The trials run here, two at a time (one killed process and one recovery overlap on two
// cores); each test below then reports one seed's findings.
beforeAll(async () => {
  const started = performance.now();
  runner = await CrashTrials.open(shared.server, shared.scratch);
  await mapConcurrent(plans, 2, async (plan) => results.set(plan.seed, await runner.run(plan)));
  const figures = describeTrials([...results.values()], (performance.now() - started) / 1000);
  console.log(`crash trials, seeds ${firstSeed}..${firstSeed + TRIALS - 1}\n${figures}`);
}, 600_000);

const replay = (seed: number) => `seed ${seed}: replay with npm run test:crash -- --seed ${seed} --trials 1`;

describe('kill -9 at random moments, then lease break and run', () => {
  it.each(plans.map((plan) => [plan.seed, plan.kind, plan] as const))(
    'seed %i (%s): no young item deleted, every deleted item audited exactly once',
    (seed, _kind, plan) => {
      const result = results.get(seed)!;
      expect(result.plan).toEqual(plan);
      expect(result.violations, replay(seed)).toEqual([]);
    },
  );

  it('the runs that calibrated the kill moments (not killed) pass the same checks', () => {
    expect(runner.calibrationResults.length).toBeGreaterThan(0);
    for (const result of runner.calibrationResults) expect(result.violations, replay(result.plan.seed)).toEqual([]);
  });

  it('the trials include kills in the middle of a sweep, with intents left for the next run', () => {
    const midSweep = [...results.values()].filter(
      (result) =>
        result.phase === 'sweep' && result.deletedByKilledRun > 0 && result.deletedInTotal > result.deletedByKilledRun,
    );
    expect(midSweep.length).toBeGreaterThan(0);
  });
});
