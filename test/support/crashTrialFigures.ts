import type { TrialResult } from './crashTrials.ts';

/** The figures of a set of crash trials, as printed by `npm run test:crash` and recorded in docs/reliability.md. */
export function describeTrials(results: TrialResult[], seconds: number): string {
  const total = (pick: (result: TrialResult) => number): number =>
    results.reduce((sum, result) => sum + pick(result), 0);
  const kills = results.map((result) => result.killAfterMs);
  const times = results.map((result) => result.ms / 1000);
  const exact = results.filter((result) => result.plan.exactCutoff).length;
  const locked = results.filter((result) => result.lockedByDeadRun).length;
  return [
    `trials            ${results.length} (${countBy(results, (r) => r.plan.kind)}); exact --before cutoff in ${exact}`,
    `kill moment       ${countBy(results, (r) => r.phase)}`,
    `                  after ${range(kills, 0)} ms; chosen by ${countBy(results, (r) => r.plan.killMode)}`,
    `kills mid-sweep   by batches done: ${sweepQuarters(results)}`,
    `items seeded      ${total((r) => r.items)}: expired ${total((r) => r.byClass.expired)}, ` +
      `young ${total((r) => r.byClass.young)}, near the cutoff (−1.5 s … +4 s) ${total((r) => r.byClass.boundary)}`,
    `deleted           ${total((r) => r.deletedInTotal)} (${total((r) => r.deletedByKilledRun)} by killed runs); ` +
      `kept ${total((r) => r.keptAtEnd)}; near the cutoff ${total((r) => r.boundaryDeleted)} deleted, ` +
      `${total((r) => r.boundaryKept)} kept`,
    `linked files      ${total((r) => r.filesAheadOfRows)} deleted by a killed run ahead of their row ` +
      `(the row went in the recovery run)`,
    `audit records     ${total((r) => r.records)} (${total((r) => r.abandoned)} abandoned intents of killed runs)`,
    `recovery          locked by the dead run's lease in ${locked}; ` +
      `operator commands ${countBy(results, (r) => r.plan.operator)}`,
    `violations        ${total((r) => r.violations.length)}`,
    `time              ${seconds.toFixed(1)} s; per trial ${range(times, 2)} s`,
  ].join('\n');
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? 0;
}

function range(values: number[], digits: number): string {
  const at = (fraction: number): string => percentile(values, fraction).toFixed(digits);
  return `${at(0)}–${at(1)} (median ${at(0.5)})`;
}

function countBy(results: TrialResult[], key: (result: TrialResult) => string): string {
  const counts = new Map<string, number>();
  for (const result of results) counts.set(key(result), (counts.get(key(result)) ?? 0) + 1);
  return [...counts].map(([name, count]) => `${name} ${count}`).join(', ');
}

/** Where in the sweep the kills that landed in it fell, in quarters of the expected batches. */
function sweepQuarters(results: TrialResult[]): string {
  const quarters = [0, 0, 0, 0];
  for (const result of results.filter((candidate) => candidate.phase === 'sweep')) {
    quarters[Math.min(3, Math.floor((4 * result.batchesSeen) / result.expectedBatches))]! += 1;
  }
  return quarters.map((count, index) => `${index * 25}-${(index + 1) * 25}% ${count}`).join(', ');
}
