import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RunReport } from '../../lib/engine/types.ts';
import { countTrial, findViolations, type AuditEntry, type CutoffBounds, type Observed, type TrialCounts } from './crashTrialChecks.ts';
import { childProcessOperator, inProcessOperator, runAndKill, waitForSessionsToEnd, type KilledRun, type KillPoint, type Operator, type Phase } from './crashTrialProcess.ts';
import { between, prng, RETENTION_MS, seedFsSubject, seedRowsSubject } from './crashTrialSubjects.ts';
import type { TestPostgres } from './postgres.ts';

/**
 * Crash trials (issue 10): seed a policy, start `retention run` as a real process in its own
 * process group, SIGKILL the group at a random moment, recover as an operator would (`run`,
 * which the dead run's lease refuses; `lease break`; `run`), then check the invariants on what is
 * on disk, in the table and in the audit trail (crashTrialChecks.ts). Everything a trial does
 * follows from its seed, except where the kill lands in a batch, which depends on timing.
 */
export type TrialKind = 'fs' | 'rows';

export interface TrialPlan {
  seed: number;
  kind: TrialKind;
  count: number;
  batchSize: number;
  /** Runs pass `--before` at a whole second: the cutoff is known to the ms, with items exactly at it. */
  exactCutoff: boolean;
  /** See killPoint(). */
  killMode: 'startup' | 'time' | 'batches';
  /** Where in the run, as a fraction of its expected duration (or of its batches). */
  killFraction: number;
  /** `batches`: how far into the next batch, as a fraction of the mean batch time. */
  killJitter: number;
  operator: 'child process' | 'in process';
}

export interface TrialResult extends TrialCounts {
  plan: TrialPlan;
  phase: Phase;
  batchesSeen: number;
  expectedBatches: number;
  killAfterMs: number;
  lockedByDeadRun: boolean;
  violations: string[];
  ms: number;
}

/** Spawn → `run_started` → first batch, and time per batch, per kind: measured by one run that is not killed. */
interface Calibration {
  runStartedMs: number;
  firstBatchMs: number;
  meanBatchMs: number;
}

function pick<T>(random: () => number, choices: Array<[weight: number, value: T]>): T {
  let roll = random();
  for (const [weight, value] of choices) if ((roll -= weight) < 0) return value;
  return choices.at(-1)![1];
}

/** Everything about a trial but the kill's exact landing follows from its seed; one in three is a rows trial. */
export function planTrial(seed: number, kind: TrialKind = seed % 3 === 2 ? 'rows' : 'fs'): TrialPlan {
  const random = prng(seed);
  return {
    seed,
    kind,
    count: kind === 'fs' ? between(random, 200, 600) : between(random, 150, 400),
    batchSize: between(random, 5, 20),
    exactCutoff: random() < 0.4,
    killMode: pick(random, [[0.1, 'startup'], [0.45, 'time'], [0.45, 'batches']]),
    killFraction: random(),
    killJitter: random(),
    operator: random() < 0.1 ? 'child process' : 'in process',
  };
}

export class CrashTrials {
  private readonly calibration = new Map<TrialKind, Promise<Calibration>>();
  /** The not-killed runs that calibrated the kill points: checked like every trial. */
  readonly calibrationResults: TrialResult[] = [];

  private constructor(
    private readonly server: TestPostgres,
    private readonly scratch: string,
    private readonly controlUrl: string,
    private readonly rowsUrl: string,
  ) {}

  /** One control database and one rows database for all trials; each trial has its own policy, table and root. */
  static async open(server: TestPostgres, scratch: string): Promise<CrashTrials> {
    const [controlUrl, rowsUrl] = await Promise.all([server.createDatabase('crash_control'), server.createDatabase('crash_rows')]);
    return new CrashTrials(server, scratch, controlUrl, rowsUrl);
  }

  /** Runs one trial; a trial that throws (a command that printed no report, …) is a violation too. */
  async run(plan: TrialPlan): Promise<TrialResult> {
    const started = Date.now();
    try {
      let calibration = this.calibration.get(plan.kind);
      if (!calibration) this.calibration.set(plan.kind, (calibration = this.calibrate(plan.kind, plan.seed)));
      return await this.trial(plan, await calibration);
    } catch (error) {
      return { ...failedTrial(plan, error), ms: Date.now() - started };
    }
  }

  private async calibrate(kind: TrialKind, seed: number): Promise<Calibration> {
    const plan: TrialPlan = { ...planTrial(seed ^ 0x5eed, kind), exactCutoff: false, operator: 'in process' };
    const result = await this.trial(plan, undefined);
    this.calibrationResults.push(result);
    if (!result.calibration) throw new Error(`the calibration run of ${kind} (seed ${plan.seed}) deleted fewer than 2 batches: ${result.violations.join('; ')}`);
    return result.calibration;
  }

  private async trial(plan: TrialPlan, calibration: Calibration | undefined): Promise<TrialResult & { calibration?: Calibration }> {
    const started = Date.now();
    const random = prng(plan.seed ^ 0x9e3779b9);
    const name = `${plan.kind}-${plan.seed}${calibration ? '' : '-calibration'}`;
    const now = Date.now();
    // An exact cutoff 2 h before the policy's own: the runs' cutoff is then that instant, whatever the clock says.
    const exact = plan.exactCutoff ? Math.floor((now - RETENTION_MS - 2 * 3_600_000) / 1000) * 1000 : undefined;
    const seedInput = { random, name, root: path.join(this.scratch, name), count: plan.count, batchSize: plan.batchSize, reference: exact ?? now - RETENTION_MS, exactCutoff: exact !== undefined };
    const subject = plan.kind === 'fs' ? await seedFsSubject(seedInput) : await seedRowsSubject({ ...seedInput, databaseUrl: this.rowsUrl });
    const configPath = path.join(this.scratch, `${name}.json`);
    await writeFile(configPath, JSON.stringify({ policies: [subject.policy] }));
    const env = { RETENTION_DATABASE_URL: this.controlUrl };
    const runArgs = ['--config', configPath, 'run', '--json', ...(exact === undefined ? [] : ['--before', new Date(exact).toISOString()])];

    const expectedBatches = Math.max(1, Math.ceil([...subject.items.values()].filter((item) => item.timeNs < BigInt(seedInput.reference) * 1_000_000n).length / plan.batchSize));
    const kill = calibration ? killPoint(plan, calibration, expectedBatches) : undefined;
    const appName = `crash-trial-${name}`;
    const killed = await runAndKill(runArgs, env, appName, kill);
    await waitForSessionsToEnd(this.server.url('postgres'), appName);
    const afterKill = { items: await subject.present(), files: await subject.presentFiles() };

    const operator: Operator = plan.operator === 'child process' ? childProcessOperator : inProcessOperator;
    const deadRunUnfinished = await unfinished(inProcessOperator, configPath, subject.policy.name, killed.runId, env);
    const { firstStatus, violations } = await recover(operator, configPath, runArgs, subject.policy.name, env);
    const end = Date.now();

    const observed: Observed = {
      subject,
      afterKill,
      final: { items: await subject.present(), files: await subject.presentFiles() },
      records: await auditTrail(operator, configPath, subject.policy.name, env),
      linked: await subject.linkedFileAudit(),
      killedRunId: killed.runId,
      bounds: cutoffBounds(exact, killed, end),
    };
    violations.push(...findViolations(observed));
    // A run that wrote intents had the lease; one that never reported never released it.
    const leaseHeld = deadRunUnfinished && observed.records.some((record) => record.runId === killed.runId);
    if (leaseHeld && firstStatus !== 'skipped_locked') violations.push(`the first run after the kill was ${firstStatus}, not skipped_locked, while the dead run held the lease`);
    return {
      plan,
      phase: killed.phase,
      batchesSeen: killed.batchesSeen,
      expectedBatches,
      killAfterMs: killed.endedAt - killed.spawnedAt,
      lockedByDeadRun: firstStatus === 'skipped_locked',
      violations,
      ...countTrial(observed),
      ms: Date.now() - started,
      ...calibrationOf(killed),
    };
  }
}

/**
 * What an operator does after a crash: `run`, which the dead run's lease refuses (it expires on
 * its own after 60 s); `lease break`; `run`, which resolves the dead run's intents and resumes.
 */
async function recover(operator: Operator, configPath: string, runArgs: string[], policy: string, env: Record<string, string>): Promise<{ firstStatus: string; violations: string[] }> {
  const violations: string[] = [];
  let report = await runReport(operator, runArgs, env);
  const firstStatus = report.status;
  if (firstStatus === 'skipped_locked') {
    const broken = await operator(['--config', configPath, 'lease', 'break', policy], env);
    if (broken.code !== 0) throw new Error(`lease break failed (${broken.code}): ${broken.stderr}`);
    report = await runReport(operator, runArgs, env);
  }
  if (report.status !== 'completed') violations.push(`the recovery run ended ${report.status}: ${JSON.stringify(report.error ?? null)}`);
  return { firstStatus, violations };
}

/** Whether `runId` is still `running` in the run history: it released no lease (that happens after its report). */
async function unfinished(operator: Operator, configPath: string, policy: string, runId: string | undefined, env: Record<string, string>): Promise<boolean> {
  if (runId === undefined) return false;
  const history = await operator(['--config', configPath, 'history', '--policy', policy, '--json', '--limit', '10'], env);
  const runs = JSON.parse(history.stdout) as Array<{ runId: string; status: string }>;
  return runs.find((run) => run.runId === runId)?.status === 'running';
}

function failedTrial(plan: TrialPlan, error: unknown): TrialResult {
  const none = { items: 0, deletedByKilledRun: 0, deletedInTotal: 0, keptAtEnd: 0, boundaryDeleted: 0, boundaryKept: 0, records: 0, abandoned: 0, filesAheadOfRows: 0 };
  return {
    plan,
    phase: 'startup',
    batchesSeen: 0,
    expectedBatches: 0,
    killAfterMs: 0,
    lockedByDeadRun: false,
    ...none,
    byClass: { expired: 0, young: 0, boundary: 0 },
    violations: [`the trial failed: ${error instanceof Error ? error.message : String(error)}`],
    ms: 0,
  };
}

function calibrationOf(run: KilledRun): { calibration?: Calibration } {
  const { runStartedMs, firstBatchMs, meanBatchMs } = run;
  return runStartedMs !== undefined && firstBatchMs !== undefined && meanBatchMs !== undefined ? { calibration: { runStartedMs, firstBatchMs, meanBatchMs } } : {};
}

/**
 * `startup`: uniform from spawn to the first batch (loading, config, control store, lease, the
 * census). `time`: uniform from `run_started` to the expected end, so recovery of old intents,
 * the census and the sweep are hit in proportion to their length; the process start before it
 * (~0.7 s of loading code that touches nothing) would otherwise take most kills. `batches`:
 * after a random batch's log line, plus up to one batch time: inside the next batch (intents
 * written, files half deleted, the row statement in flight, …).
 */
function killPoint(plan: TrialPlan, calibration: Calibration, expectedBatches: number): KillPoint {
  const { runStartedMs, firstBatchMs, meanBatchMs } = calibration;
  if (plan.killMode === 'startup') return { after: 'spawn', delayMs: Math.round(plan.killFraction * firstBatchMs) };
  if (plan.killMode === 'time') {
    const expectedMs = firstBatchMs - runStartedMs + expectedBatches * meanBatchMs;
    return { after: 'run_started', delayMs: Math.round(plan.killFraction * expectedMs) };
  }
  const count = 1 + Math.floor(plan.killFraction * Math.max(1, expectedBatches - 1));
  return { after: 'batch_deleted', count, delayMs: Math.round(plan.killJitter * meanBatchMs) };
}

function cutoffBounds(exact: number | undefined, killed: KilledRun, end: number): CutoffBounds {
  if (exact !== undefined) return { killedRunMax: exact, anyRunMax: exact, dueForBoth: exact };
  // The recovery run resumes from the killed run's checkpoint: what became due only after the
  // killed run started, before that checkpoint, is the next pass's. What was due for both must go.
  return { killedRunMax: killed.endedAt - RETENTION_MS, anyRunMax: end - RETENTION_MS, dueForBoth: killed.spawnedAt - RETENTION_MS };
}

async function runReport(operator: Operator, args: string[], env: Record<string, string>): Promise<RunReport> {
  const result = await operator(args, env);
  try {
    return JSON.parse(result.stdout) as RunReport;
  } catch {
    throw new Error(`retention ${args.join(' ')} printed no report (exit ${result.code}): ${result.stderr.slice(-2000)}`);
  }
}

async function auditTrail(operator: Operator, configPath: string, policy: string, env: Record<string, string>): Promise<AuditEntry[]> {
  const result = await operator(['--config', configPath, 'audit', '--policy', policy, '--json', '--limit', '1000000'], env);
  if (result.code !== 0) throw new Error(`retention audit failed (${result.code}): ${result.stderr.slice(-2000)}`);
  return JSON.parse(result.stdout) as AuditEntry[];
}


/** The trials of seeds `base` … `base + count - 1`. */
export function trialPlans(base: number, count: number): TrialPlan[] {
  return Array.from({ length: count }, (_, index) => planTrial(base + index));
}

const sum = (results: TrialResult[], pick: (result: TrialResult) => number): number => results.reduce((total, result) => total + pick(result), 0);

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? 0;
}

function countBy<T extends string>(results: TrialResult[], key: (result: TrialResult) => T): string {
  const counts = new Map<T, number>();
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

/** The figures of a set of trials, as printed by `npm run test:crash` and recorded in docs/reliability.md. */
export function describeTrials(results: TrialResult[], seconds: number): string {
  const kills = results.map((result) => result.killAfterMs);
  const lines = [
    `trials            ${results.length} (${countBy(results, (result) => result.plan.kind)}); exact --before cutoff in ${results.filter((result) => result.plan.exactCutoff).length}`,
    `kill moment       ${countBy(results, (result) => result.phase)}`,
    `                  after ${percentile(kills, 0)}–${percentile(kills, 1)} ms (median ${percentile(kills, 0.5)}); by ${countBy(results, (result) => result.plan.killMode)}`,
    `kills mid-sweep   by batches done: ${sweepQuarters(results)}`,
    `items seeded      ${sum(results, (r) => r.items)}: expired ${sum(results, (r) => r.byClass.expired)}, young ${sum(results, (r) => r.byClass.young)}, near the cutoff (−1.5 s … +4 s) ${sum(results, (r) => r.byClass.boundary)}`,
    `deleted           ${sum(results, (r) => r.deletedInTotal)} (${sum(results, (r) => r.deletedByKilledRun)} by killed runs); kept ${sum(results, (r) => r.keptAtEnd)}; at the cutoff: ${sum(results, (r) => r.boundaryDeleted)} deleted, ${sum(results, (r) => r.boundaryKept)} kept`,
    `linked files      ${sum(results, (r) => r.filesAheadOfRows)} deleted by a killed run ahead of their row (the row went in the recovery run)`,
    `audit records     ${sum(results, (r) => r.records)} (${sum(results, (r) => r.abandoned)} abandoned intents of killed runs)`,
    `recovery          locked by the dead run's lease in ${results.filter((result) => result.lockedByDeadRun).length}; operator commands ${countBy(results, (result) => result.plan.operator)}`,
    `violations        ${sum(results, (r) => r.violations.length)}`,
    `time              ${seconds.toFixed(1)} s; per trial median ${(percentile(results.map((r) => r.ms), 0.5) / 1000).toFixed(2)} s, max ${(percentile(results.map((r) => r.ms), 1) / 1000).toFixed(2)} s`,
  ];
  return lines.join('\n');
}
