import type { PolicyConfig } from '../config/schema.ts';
import type { ControlStore, Lease } from '../core/control.ts';
import type { Clock, RunReport } from '../core/types.ts';
import { describeCause } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { monitorRun, type RunMonitor } from '../observe/sentry.ts';
import { nextRun, previousRun } from '../policy/schedule.ts';
import { missedTick, readLatestTurn, turnTakenSince } from './due.ts';
import { handingOver } from './handover.ts';
import type { Timer, TimerHandle } from './timer.ts';

/** Runs one policy now (the CLI: `runPolicies`); undefined when it did not start because of `signal`. */
export type ScheduledRun = (
  policy: PolicyConfig,
  context: { control: ControlStore; signal: AbortSignal },
) => Promise<RunReport | undefined>;

export interface SchedulerOptions {
  /** Every policy of the config; the disabled ones are never run. */
  policies: PolicyConfig[];
  concurrency: number;
  /** The runs' lease TTL: the daemon takes the lease with it before handing it over. */
  leaseTtlMs: number;
  /** Lease owner while the daemon holds a lease itself: `daemon:<host>:<pid>`. */
  owner: string;
  /** How soon a policy whose lease is held elsewhere (or whose check failed) is tried again. */
  retryMs?: number;
}

export interface SchedulerDeps {
  control: ControlStore;
  clock: Clock;
  timer: Timer;
  log: Logger;
  monitor: RunMonitor;
  run: ScheduledRun;
}

/** What the daemon will do next for a policy (the seam for `status` and the REST API). */
export interface NextRun {
  policy: string;
  /** The scheduled instant the run is for. */
  tick: Date;
  /** Earliest start: the tick, or when a waiting run is tried again. */
  at: Date;
  /**
   * `due`: its tick passed, it waits for a free slot; `retrying`: its lease was held elsewhere (or
   * the control store failed), tried again at `at`.
   */
  state: 'scheduled' | 'due' | 'retrying';
  catchUp: boolean;
}

export interface RunInFlight {
  policy: string;
  tick: Date;
  since: Date;
  catchUp: boolean;
}

interface DueRun {
  policy: PolicyConfig;
  tick: Date;
  catchUp: boolean;
  /** Set while waiting for a lease held elsewhere (or after a failed check): not before then. */
  retryAt?: Date;
}

export const DEFAULT_CONCURRENCY = 2;
const DEFAULT_RETRY_MS = 15_000;
/** Longest sleep: a wall-clock jump (NTP, a suspended host) is noticed within a minute. */
const MAX_SLEEP_MS = 60_000;

/**
 * `retention daemon`: runs each enabled policy at the ticks of its cron schedule (UTC).
 *
 * - Per policy at most one run at a time in this process, and at most `concurrency` runs at all.
 *   A tick that passes while its policy runs waits for that run; ticks missed meanwhile are one.
 * - Each tick's run happens once, however many daemons share the control store. Before a run the
 *   daemon takes the policy's lease and, holding it, reads history: a run that started at or
 *   after the tick (another daemon's, or an operator's) means the tick's run happened; the lease
 *   is released and nothing is recorded. Otherwise the run gets the lease (handover.ts). Proof:
 *   runs of one policy hold its lease one after another; a run is recorded (`startRun`, at its
 *   clock's time, which is past the tick it fired for) before its holder releases the lease; so
 *   whoever holds it second for that tick reads the first one's record and stands down. A lease
 *   held elsewhere is waited for (tried again every `retryMs`), never taken as "done": the
 *   holder may be an operator's run that started before the tick.
 * - Catch-up: at start, a policy whose latest run began before its last tick (the daemon was
 *   down) runs once right away (due.ts `missedTick`).
 * - `stop()`: no new runs; runs in flight are signalled and stop after their current batch
 *   (`partial`, checkpoint saved, lease released by the engine).
 */
export class Scheduler {
  private readonly policies: PolicyConfig[];
  private readonly retryMs: number;
  /** The latest tick decided on, per policy: later ticks only. */
  private readonly decided = new Map<string, Date>();
  /** At most one waiting run per policy: a later tick replaces an earlier one still waiting. */
  private readonly due = new Map<string, DueRun>();
  private readonly running = new Map<string, RunInFlight & { done: Promise<void> }>();
  private readonly stopSignal = new AbortController();
  private sleeping: TimerHandle | undefined;
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly options: SchedulerOptions,
    private readonly deps: SchedulerDeps,
  ) {
    this.policies = options.policies.filter((policy) => policy.enabled);
    this.retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
  }

  /** Decides catch-up runs from history, starts what is due and sleeps until the next tick. */
  async start(): Promise<void> {
    const now = this.deps.clock.now();
    for (const policy of this.policies) {
      this.decided.set(policy.name, previousRun(policy.schedule, now));
      const latest = await readLatestTurn(this.deps.control, policy.name);
      const tick = missedTick(policy.schedule, now, latest?.startedAt ?? null);
      if (tick) this.enqueue({ policy, tick, catchUp: true }, { last_run_started_at: latest!.startedAt.toISOString() });
    }
    const skipped = this.options.policies.filter((policy) => !policy.enabled).map((policy) => policy.name);
    this.deps.log.info('daemon_started', {
      concurrency: this.options.concurrency,
      owner: this.options.owner,
      policies: this.policies.map((policy) => policy.name),
      ...(skipped.length > 0 ? { disabled: skipped } : {}),
      next_runs: this.nextRuns().map(({ policy, at, state }) => ({ policy, at: at.toISOString(), state })),
    });
    if (this.policies.length === 0) {
      this.deps.log.warn('no_enabled_policies', { fix: 'set enabled: true on the policies the daemon should run' });
    }
    this.pump();
  }

  /** No new runs; the runs in flight stop after their current batch. Resolves once they ended. */
  stop(reason: string): Promise<void> {
    this.stopped ??= (async () => {
      if (this.sleeping !== undefined) this.deps.timer.clear(this.sleeping);
      const notStarted = [...this.due.keys()];
      this.due.clear();
      this.stopSignal.abort(reason);
      const inFlight = [...this.running.keys()];
      this.deps.log.info('daemon_stopping', { reason, runs_in_flight: inFlight, not_started: notStarted });
      await Promise.all([...this.running.values()].map((flight) => flight.done));
      this.deps.log.info('daemon_stopped', { reason });
    })();
    return this.stopped;
  }

  /** Per enabled policy, its next run as the daemon sees it now. */
  nextRuns(): NextRun[] {
    const now = this.deps.clock.now();
    return this.policies.map((policy) => {
      const waiting = this.due.get(policy.name);
      if (waiting) {
        const state = waiting.retryAt ? 'retrying' : 'due';
        return { policy: policy.name, tick: waiting.tick, at: waiting.retryAt ?? now, state, catchUp: waiting.catchUp };
      }
      const tick = nextRun(policy.schedule, now);
      return { policy: policy.name, tick, at: tick, state: 'scheduled', catchUp: false };
    });
  }

  runsInFlight(): RunInFlight[] {
    return [...this.running.values()].map(({ done: _done, ...flight }) => flight);
  }

  private get stopping(): boolean {
    return this.stopSignal.signal.aborted;
  }

  private enqueue(due: DueRun, fields: Record<string, unknown> = {}): void {
    this.due.set(due.policy.name, due);
    const waitingFor = this.running.has(due.policy.name) ? { waiting_for: 'run_in_flight' } : {};
    const { policy, tick, catchUp } = due;
    this.deps.log.info('run_scheduled', {
      policy: policy.name,
      tick: tick.toISOString(),
      catch_up: catchUp,
      ...waitingFor,
      ...fields,
    });
  }

  /** Timer callback: every tick that passed since the last wake makes its policy due (once). */
  private wake(): void {
    this.sleeping = undefined;
    if (this.stopping) return;
    const now = this.deps.clock.now();
    for (const policy of this.policies) {
      const tick = previousRun(policy.schedule, now);
      if (tick <= this.decided.get(policy.name)!) continue;
      this.decided.set(policy.name, tick);
      this.enqueue({ policy, tick, catchUp: false });
    }
    this.pump();
  }

  /** Starts what may start (oldest tick first), then sleeps until the next tick or retry. */
  private pump(): void {
    if (this.stopping) return;
    const now = this.deps.clock.now();
    const ready = [...this.due.values()]
      .filter((due) => !this.running.has(due.policy.name) && (!due.retryAt || due.retryAt <= now))
      .sort((a, b) => a.tick.getTime() - b.tick.getTime());
    for (const due of ready) {
      if (this.running.size >= this.options.concurrency) break;
      this.due.delete(due.policy.name);
      this.launch(due);
    }
    this.sleepUntilNext(now);
  }

  private sleepUntilNext(now: Date): void {
    if (this.sleeping !== undefined) this.deps.timer.clear(this.sleeping);
    const retries = [...this.due.values()].filter((due) => due.retryAt && !this.running.has(due.policy.name));
    const wakeAt = Math.min(
      ...this.policies.map((policy) => nextRun(policy.schedule, now).getTime()),
      ...retries.map((due) => due.retryAt!.getTime()),
    );
    const delayMs = Number.isFinite(wakeAt)
      ? Math.min(Math.max(wakeAt - now.getTime(), 0), MAX_SLEEP_MS)
      : MAX_SLEEP_MS;
    this.sleeping = this.deps.timer.set(() => this.wake(), delayMs);
  }

  private launch(due: DueRun): void {
    const name = due.policy.name;
    const done = this.attempt(due).finally(() => {
      this.running.delete(name);
      this.pump();
    });
    this.running.set(name, { policy: name, tick: due.tick, since: this.deps.clock.now(), catchUp: due.catchUp, done });
  }

  /** Waits for the run later: keeps a later tick queued meanwhile rather than this one. */
  private retryLater(due: DueRun): void {
    if (this.stopping || this.due.has(due.policy.name)) return;
    this.due.set(due.policy.name, { ...due, retryAt: new Date(this.deps.clock.now().getTime() + this.retryMs) });
  }

  private async attempt(due: DueRun): Promise<void> {
    const { control, log: daemonLog } = this.deps;
    const log = daemonLog.child({ policy: due.policy.name, tick: due.tick.toISOString() });
    let lease: Lease | null;
    try {
      lease = await control.acquireLease(due.policy.name, this.options.owner, this.options.leaseTtlMs);
      if (!lease) {
        const holder = await control.getLease(due.policy.name);
        const retryInSeconds = this.retryMs / 1000;
        if (!due.retryAt)
          log.info('run_waiting', { reason: 'locked', lease_owner: holder?.owner, retry_in_seconds: retryInSeconds });
        this.retryLater(due);
        return;
      }
    } catch (error) {
      this.failedBeforeRun(due, log, error);
      return;
    }
    let handedOver = false;
    try {
      const taken = await turnTakenSince(control, due.policy.name, due.tick).catch((error: unknown) => {
        this.failedBeforeRun(due, log, error);
        return 'failed' as const;
      });
      if (taken === 'failed' || this.stopping) return;
      if (taken) {
        const startedAt = taken.startedAt.toISOString();
        log.info('run_skipped', {
          reason: 'already_ran',
          run_id: taken.runId,
          run_started_at: startedAt,
          run_status: taken.status,
        });
        return;
      }
      const signal = this.stopSignal.signal;
      const report = await monitorRun(this.deps.monitor, due.policy, { dryRun: false }, () =>
        this.deps.run(due.policy, { control: handingOver(control, lease, () => (handedOver = true)), signal }),
      );
      const status = report?.status ?? 'not_started';
      log.info('run_finished', { run_id: report?.runId ?? null, status, catch_up: due.catchUp });
    } catch (error) {
      // Alerted by monitorRun. Not tried again before the next tick: a store that would not open
      // (a missing root) would fail the same way, and a run that started has taken its turn.
      log.error('error', { stage: 'run', error: describeCause(error) });
    } finally {
      if (!handedOver) {
        await control
          .releaseLease(lease)
          .catch((error: unknown) => log.warn('lease_release_failed', { error: describeCause(error) }));
      }
    }
  }

  /** The control store failed before the run: said, alerted, and tried again a little later. */
  private failedBeforeRun(due: DueRun, log: Logger, error: unknown): void {
    log.error('error', { stage: 'schedule', error: describeCause(error), retry_in_seconds: this.retryMs / 1000 });
    this.deps.monitor.captureError(error, { policy: due.policy, stage: 'schedule' });
    this.retryLater(due);
  }
}
