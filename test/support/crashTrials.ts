import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type CutoffBounds,
  countTrial,
  findViolations,
  NO_COUNTS,
  type Observed,
  type TrialCounts,
} from './crashTrialChecks.ts';
import { childProcessCli, inProcessCli, Operator } from './crashTrialOperator.ts';
import { type KilledRun, type KillPoint, type Phase, runAndKill, waitForSessionsToEnd } from './crashTrialProcess.ts';
import { between, prng, RETENTION_MS, type Subject, seedFsSubject, seedRowsSubject } from './crashTrialSubjects.ts';
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
    killMode: pick(random, [
      [0.1, 'startup'],
      [0.45, 'time'],
      [0.45, 'batches'],
    ]),
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
    const [control, rows] = await Promise.all([
      server.createDatabase('crash_control'),
      server.createDatabase('crash_rows'),
    ]);
    return new CrashTrials(server, scratch, control, rows);
  }

  /** Runs one trial; a trial that throws (a command that printed no report, …) is a violation too. */
  async run(plan: TrialPlan): Promise<TrialResult> {
    const started = Date.now();
    try {
      let calibration = this.calibration.get(plan.kind);
      if (!calibration) this.calibration.set(plan.kind, (calibration = this.calibrate(plan.kind, plan.seed)));
      return await this.trial(plan, await calibration);
    } catch (error) {
      const violations = [`the trial failed: ${error instanceof Error ? error.message : String(error)}`];
      const nothing = {
        phase: 'startup' as const,
        batchesSeen: 0,
        expectedBatches: 0,
        killAfterMs: 0,
        lockedByDeadRun: false,
      };
      return { plan, ...nothing, ...NO_COUNTS, violations, ms: Date.now() - started };
    }
  }

  private async calibrate(kind: TrialKind, seed: number): Promise<Calibration> {
    const plan: TrialPlan = { ...planTrial(seed ^ 0x5eed, kind), exactCutoff: false, operator: 'in process' };
    const result = await this.trial(plan, undefined);
    this.calibrationResults.push(result);
    if (result.calibration) return result.calibration;
    throw new Error(
      `the calibration run of ${kind} (seed ${plan.seed}) ran fewer than 2 batches: ${result.violations.join('; ')}`,
    );
  }

  /** Seeds the trial's policy: its items, its config file, and the cutoff its runs will use. */
  private async seed(plan: TrialPlan, name: string): Promise<{ subject: Subject; configPath: string; exact?: number }> {
    const now = Date.now();
    // 2 h before the policy's own cutoff, so `--before` sets the runs' cutoff to this instant whatever the clock says.
    const exact = plan.exactCutoff ? Math.floor((now - RETENTION_MS - 2 * 3_600_000) / 1000) * 1000 : undefined;
    const input = {
      random: prng(plan.seed ^ 0x9e3779b9),
      name,
      root: path.join(this.scratch, name),
      count: plan.count,
      batchSize: plan.batchSize,
      reference: exact ?? now - RETENTION_MS,
      exactCutoff: exact !== undefined,
    };
    const subject =
      plan.kind === 'fs' ? await seedFsSubject(input) : await seedRowsSubject({ ...input, databaseUrl: this.rowsUrl });
    const configPath = path.join(this.scratch, `${name}.json`);
    await writeFile(configPath, JSON.stringify({ policies: [subject.policy] }));
    return { subject, configPath, ...(exact === undefined ? {} : { exact }) };
  }

  private async trial(
    plan: TrialPlan,
    calibration: Calibration | undefined,
  ): Promise<TrialResult & { calibration?: Calibration }> {
    const started = Date.now();
    const name = `${plan.kind}-${plan.seed}${calibration ? '' : '-calibration'}`;
    const { subject, configPath, exact } = await this.seed(plan, name);
    const env = { RETENTION_DATABASE_URL: this.controlUrl };
    const before = exact === undefined ? [] : ['--before', new Date(exact).toISOString()];
    const operator = new Operator(
      plan.operator === 'child process' ? childProcessCli : inProcessCli,
      configPath,
      subject.policy.name,
      env,
      before,
    );

    const due = [...subject.items.values()].filter(
      (item) => item.timeNs < BigInt(exact ?? started - RETENTION_MS) * 1_000_000n,
    );
    const expectedBatches = Math.max(1, Math.ceil(due.length / plan.batchSize));
    const appName = `crash-trial-${name}`;
    const killed = await runAndKill(
      operator.runArgs(),
      env,
      appName,
      calibration && killPoint(plan, calibration, expectedBatches),
    );
    await waitForSessionsToEnd(this.server.url('postgres'), appName);
    const afterKill = { items: await subject.present(), files: await subject.presentFiles() };
    // The test's own look at the history: in process whichever way the operator's commands run.
    const looker = new Operator(inProcessCli, configPath, subject.policy.name, env, before);
    const deadRunUnfinished = await looker.isRunning(killed.runId);

    const { firstStatus, last } = await operator.recover();
    const observed: Observed = {
      subject,
      afterKill,
      final: { items: await subject.present(), files: await subject.presentFiles() },
      records: await operator.audit(),
      linked: await subject.linkedFileAudit(),
      killedRunId: killed.runId,
      bounds: cutoffBounds(exact, killed, Date.now()),
    };
    // Killed anywhere, even inside an audit write, the trail still verifies after the recovery.
    const violations = [...findViolations(observed), ...(await looker.verifyAudit())];
    if (last.status !== 'completed')
      violations.push(`the recovery run ended ${last.status}: ${JSON.stringify(last.error ?? null)}`);
    // A run that wrote intents had the lease; one still `running` in the history never released it.
    if (
      deadRunUnfinished &&
      observed.records.some((record) => record.runId === killed.runId) &&
      firstStatus !== 'skipped_locked'
    ) {
      violations.push(
        `the first run after the kill was ${firstStatus}, not skipped_locked, while the dead run held the lease`,
      );
    }
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

function calibrationOf(run: KilledRun): { calibration?: Calibration } {
  const { runStartedMs, firstBatchMs, meanBatchMs } = run;
  if (runStartedMs === undefined || firstBatchMs === undefined || meanBatchMs === undefined) return {};
  return { calibration: { runStartedMs, firstBatchMs, meanBatchMs } };
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
  return {
    killedRunMax: killed.endedAt - RETENTION_MS,
    anyRunMax: end - RETENTION_MS,
    dueForBoth: killed.spawnedAt - RETENTION_MS,
  };
}

/** The trials of seeds `base` … `base + count - 1`. */
export function trialPlans(base: number, count: number): TrialPlan[] {
  return Array.from({ length: count }, (_, index) => planTrial(base + index));
}
