/**
 * Crash trials at scale (issue 10): `npm run test:crash -- --trials 100 [--seed N] [--concurrency 2]`.
 * Each trial kills `retention run` with SIGKILL at a random moment and checks, after an
 * operator's recovery, that nothing young was deleted and every deleted item is audited exactly
 * once (test/support/crashTrials.ts). Prints the figures; exits 1 on any violation, naming the seed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mapConcurrent } from '../../lib/core/async.ts';
import { describeTrials } from '../support/crashTrialFigures.ts';
import { CrashTrials, type TrialResult, trialPlans } from '../support/crashTrials.ts';
import { startTestPostgres } from '../support/postgres.ts';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 0) {
    console.error(`error: --${name}: "${process.argv[index + 1]}" is not a whole number (e.g. --${name} 100)`);
    process.exit(2);
  }
  return value;
}

const trials = flag('trials', 100);
const seed = flag('seed', Math.floor(Math.random() * 1_000_000));
// Two at a time, as in npm test: one killed process and one recovery overlap on two cores.
const concurrency = Math.max(1, flag('concurrency', 2));
console.log(`crash trials: ${trials}, seeds ${seed}..${seed + trials - 1} (reproduce one: --seed <seed> --trials 1)`);

/** One line per trial, then its violations (the first 20). */
function printTrial(result: TrialResult, label = ''): void {
  const { plan, items, batchesSeen, expectedBatches, deletedByKilledRun, deletedInTotal, keptAtEnd } = result;
  const mark = result.violations.length === 0 ? 'ok  ' : 'FAIL';
  const size = `${String(items).padStart(5)} items, batch ${String(plan.batchSize).padStart(2)}`;
  const killed = `killed ${result.phase} at ${result.killAfterMs} ms (${batchesSeen}/${expectedBatches} batches)`;
  const outcome = `deleted ${deletedByKilledRun} + ${deletedInTotal - deletedByKilledRun}, kept ${keptAtEnd}`;
  const seconds = (result.ms / 1000).toFixed(1);
  console.log(`${mark} ${label}seed ${plan.seed} ${plan.kind.padEnd(4)} ${size}, ${killed}: ${outcome}; ${seconds} s`);
  for (const violation of result.violations.slice(0, 20)) console.log(`       ${violation}`);
}

const started = performance.now();
const [server, scratch] = await Promise.all([
  startTestPostgres(),
  mkdtemp(path.join(os.tmpdir(), 'retention-crash-trials-')),
]);
const results: TrialResult[] = [];
try {
  const runner = await CrashTrials.open(server, scratch);
  await mapConcurrent(trialPlans(seed, trials), concurrency, async (plan) => {
    const result = await runner.run(plan);
    results.push(result);
    printTrial(result);
  });
  for (const calibration of runner.calibrationResults) printTrial(calibration, 'calibration run (not killed) ');
  console.log(`\n${describeTrials(results, (performance.now() - started) / 1000)}`);
  const failed = [...results, ...runner.calibrationResults].filter((result) => result.violations.length > 0);
  if (failed.length > 0) {
    console.log(`\nviolations in seeds ${failed.map((result) => result.plan.seed).join(', ')}`);
    process.exitCode = 1;
  }
} finally {
  await server.stop();
  await rm(scratch, { recursive: true, force: true });
}
