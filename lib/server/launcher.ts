import type { PolicyConfig } from '../config/schema.ts';
import type { ControlStore } from '../core/control.ts';
import type { Census, Store } from '../core/store.ts';
import type { Clock, RunReport, Trigger } from '../core/types.ts';
import type { Progress, RunOptions } from '../engine/options.ts';
import { runPolicy } from '../engine/run.ts';
import { describeCause } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { createStore } from '../stores/registry.ts';
import { observeStart, observeStore } from './taps.ts';

/**
 * Runs started over HTTP, in this process: each is the engine's `runPolicy`, exactly as the CLI
 * runs it, with its progress kept for server-sent events. A pause reaches these runs the way it
 * reaches every run (the control store refuses the paused policy's next lease renewal); closing
 * the launcher is a signal: runs stop after their current batch and release their leases.
 */
export interface RunProgress {
  scanned: number;
  deleted: number;
  /** What the run means to delete (its census, capped by --limit and the per-run limit); null until counted. */
  planned: number | null;
  /** Items in the policy's scope (a dry run's progress is scanned / total). */
  total: number | null;
  elapsedMs: number;
  /** 0..1: deleted / planned for a live run, scanned / total for a dry run; 1 once finished. */
  fraction: number;
}

export type RunEvent =
  | { type: 'progress'; progress: RunProgress }
  | { type: 'done'; report: RunReport }
  | { type: 'failed'; message: string };

/** A run a launcher started: its id (recorded in history, or about to be) and what kind of run. */
export interface StartedRun {
  runId: string;
  dryRun: boolean;
}

/**
 * What the routes ask of whatever starts runs: RunLauncher runs them in this process (`serve`,
 * the daemon); in the cloud, serverless/invokeLauncher.ts hands them to the data-class functions
 * and follows none of them (their progress is their history).
 */
export interface Launcher {
  /** Resolves once the run is started; a ConfigError (the store cannot be opened) means nothing was. */
  start(policy: PolicyConfig, options: LaunchOptions, actor: string): Promise<StartedRun>;
  /** A run this process follows (progress, events); undefined for runs elsewhere. */
  get(runId: string): LaunchedRun | undefined;
  inFlight(): LaunchedRun[];
  close(): Promise<void>;
}

export interface LaunchedRun extends StartedRun {
  policy: string;
  actor: string;
  progress: RunProgress;
  report: RunReport | null;
  /** Why the run ended without a report (its history could not be written); null otherwise. */
  failure: string | null;
  finished: Promise<RunReport | null>;
  /** Replays the latest state, then follows; returns the unsubscribe. */
  subscribe(listener: (event: RunEvent) => void): () => void;
}

export interface LauncherDeps {
  control: ControlStore;
  clock: Clock;
  log: Logger;
  leaseTtlMs?: number;
}

/** `trigger` is `manual` unless said (a scheduler launching through the same launcher says `scheduled`). */
export type LaunchOptions = Omit<RunOptions, 'signal' | 'deadline' | 'trigger'> & { trigger?: Trigger };

/** Finished runs kept for late subscribers and the overview's bytes to free. */
const FINISHED_KEPT = 100;

export class RunLauncher implements Launcher {
  private readonly runs = new Map<string, LaunchedRun>();
  private readonly stopping = new AbortController();

  constructor(private readonly deps: LauncherDeps) {}

  /**
   * Starts a run and resolves with it once it is recorded in history (with its id). A store that
   * cannot be opened (missing root: a ConfigError) rejects here, before anything is recorded.
   */
  async start(policy: PolicyConfig, options: LaunchOptions, actor: string): Promise<LaunchedRun> {
    if (this.stopping.signal.aborted) throw new Error('the server is shutting down: no new runs');
    const listeners = new Set<(event: RunEvent) => void>();
    const emit = (event: RunEvent): void => {
      for (const listener of listeners) listener(event);
    };
    const progress: RunProgress = { scanned: 0, deleted: 0, planned: null, total: null, elapsedMs: 0, fraction: 0 };

    const onCensus = (census: Census): void => {
      const perRun = options.dryRun || options.force ? Number.POSITIVE_INFINITY : policy.limits.maxDeletesPerRun;
      progress.planned = Math.min(census.eligible, options.limit ?? Number.POSITIVE_INFINITY, perRun);
      progress.total = census.total;
    };
    const onProgress = ({ scanned, deleted, elapsedMs }: Progress): void => {
      const fraction = fractionOf(options.dryRun, progress, scanned, deleted);
      Object.assign(progress, { scanned, deleted, elapsedMs, fraction });
      emit({ type: 'progress', progress: { ...progress } });
    };
    const store = observeStore(await createStore(policy), { onCensus });
    let started!: (runId: string) => void;
    const recorded = new Promise<string>((resolve) => (started = resolve));
    const running = runPolicy(
      policy,
      { trigger: 'manual', ...options, signal: this.stopping.signal },
      { ...this.deps, control: observeStart(this.deps.control, started), store, actor, onProgress },
    ).finally(() => this.closeStore(store, policy.name));

    const runId = await Promise.race([recorded, running.then((report) => report.runId)]);
    const run: LaunchedRun = {
      runId,
      policy: policy.name,
      dryRun: options.dryRun,
      actor,
      progress,
      report: null,
      failure: null,
      finished: running.then(
        (report) => {
          run.report = report;
          Object.assign(progress, { elapsedMs: report.durationSeconds * 1000, fraction: 1 });
          emit({ type: 'done', report });
          return report;
        },
        (error: unknown) => {
          // runPolicy records its own failures; this is what it could not (history unreachable).
          run.failure = describeCause(error);
          this.deps.log.error('api_run_failed', { run_id: runId, policy: policy.name, error: run.failure });
          emit({ type: 'failed', message: run.failure });
          return null;
        },
      ),
      subscribe: (listener) => {
        if (run.report) listener({ type: 'done', report: run.report });
        else if (run.failure !== null) listener({ type: 'failed', message: run.failure });
        else if (progress.planned !== null || progress.scanned > 0)
          listener({ type: 'progress', progress: { ...progress } });
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    this.remember(run);
    return run;
  }

  get(runId: string): LaunchedRun | undefined {
    return this.runs.get(runId);
  }

  /** Runs of this process not finished yet, oldest first. */
  inFlight(): LaunchedRun[] {
    return [...this.runs.values()].filter((run) => !settled(run));
  }

  /** Stops runs in flight after their current batch (leases released, checkpoints kept) and waits for them. */
  async close(): Promise<void> {
    this.stopping.abort('server shutting down');
    await Promise.allSettled([...this.runs.values()].map((run) => run.finished));
  }

  private async closeStore(store: Store, policy: string): Promise<void> {
    try {
      await store.close?.();
    } catch (error) {
      // The run's outcome stands; a connection left to time out is worth a line, not a failure.
      this.deps.log.warn('store_close_failed', { policy, error: describeCause(error) });
    }
  }

  private remember(run: LaunchedRun): void {
    this.runs.set(run.runId, run);
    for (const [runId, kept] of this.runs) {
      if (this.runs.size <= FINISHED_KEPT) break;
      if (settled(kept)) this.runs.delete(runId);
    }
  }
}

const settled = (run: LaunchedRun): boolean => run.report !== null || run.failure !== null;

function fractionOf(dryRun: boolean, progress: RunProgress, scanned: number, deleted: number): number {
  const [done, of] = dryRun ? [scanned, progress.total] : [deleted, progress.planned];
  if (of === null || of === 0) return 0;
  // A census may undercount what a run then meets (items past their cutoff since): never past the end.
  return Math.min(1, done / of);
}
