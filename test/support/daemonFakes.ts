import { parseConfig } from '../../lib/config/load.ts';
import type { PolicyConfig } from '../../lib/config/schema.ts';
import type { ControlStore, Lease, RunRecord } from '../../lib/core/control.ts';
import type { Clock, RunReport } from '../../lib/core/types.ts';
import type { ScheduledRun } from '../../lib/daemon/scheduler.ts';
import type { Timer } from '../../lib/daemon/timer.ts';
import { Logger } from '../../lib/observe/log.ts';
import type { RunMonitor } from '../../lib/observe/sentry.ts';

/**
 * In-memory fakes for the daemon's scheduler: a clock with timers that tests advance by hand,
 * the part of a control store the scheduler and a run use (leases, run history), a run that
 * behaves like the engine towards them (records itself, takes the lease or is skipped_locked)
 * and ends when the test says, and a monitor that records check-ins.
 */
export class FakeTime implements Clock, Timer {
  private current: number;
  private timers: Array<{ id: number; at: number; callback: () => void }> = [];
  private ids = 0;

  constructor(start: string) {
    this.current = Date.parse(start);
  }

  now(): Date {
    return new Date(this.current);
  }

  set(callback: () => void, delayMs: number): number {
    const id = ++this.ids;
    this.timers.push({ id, at: this.current + delayMs, callback });
    return id;
  }

  clear(handle: unknown): void {
    this.timers = this.timers.filter((timer) => timer.id !== handle);
  }

  /** Fires every timer due up to `instant` in order, letting the work each one starts settle. */
  async advanceTo(instant: string): Promise<void> {
    const target = Date.parse(instant);
    for (;;) {
      const next = this.timers.filter((timer) => timer.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.clear(next.id);
      this.current = Math.max(this.current, next.at);
      next.callback();
      await settle();
    }
    this.current = target;
    await settle();
  }
}

/** Every fake resolves in microtasks: one macrotask later they have all run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class FakeControl {
  readonly runs: RunRecord[] = [];
  private readonly leases = new Map<string, Lease>();
  private tokens = 0;
  /** Makes the next calls fail (a control store outage). */
  failing = false;

  constructor(private readonly clock: Clock) {}

  readonly store = {
    acquireLease: async (policy: string, owner: string, ttlMs: number) => {
      this.check();
      const held = this.leases.get(policy);
      if (held && held.expiresAt > this.clock.now()) return null;
      const lease = { policy, owner, token: ++this.tokens, expiresAt: this.expiry(ttlMs) };
      this.leases.set(policy, lease);
      return lease;
    },
    renewLease: async (lease: Lease, ttlMs: number) => {
      const held = this.leases.get(lease.policy);
      if (!held || held.token !== lease.token || held.owner !== lease.owner) return null;
      const renewed = { ...held, expiresAt: this.expiry(ttlMs) };
      this.leases.set(lease.policy, renewed);
      return renewed;
    },
    releaseLease: async (lease: Lease) => {
      const held = this.leases.get(lease.policy);
      if (held && held.token === lease.token && held.owner === lease.owner)
        this.leases.set(lease.policy, { ...held, expiresAt: this.clock.now() });
    },
    getLease: async (policy: string) => this.leases.get(policy) ?? null,
    listRuns: async ({ policy, limit }: { policy?: string; limit: number }) => {
      this.check();
      const matching = this.runs.filter((run) => policy === undefined || run.policy === policy);
      return [...matching].sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime()).slice(0, limit);
    },
  } satisfies Partial<ControlStore>;

  /** The store as the scheduler takes it: only the methods above are ever called. */
  get control(): ControlStore {
    return this.store as unknown as ControlStore;
  }

  /** A live lease on `policy`, if any. */
  liveLease(policy: string): Lease | null {
    const lease = this.leases.get(policy);
    return lease && lease.expiresAt > this.clock.now() ? lease : null;
  }

  record(run: Pick<RunRecord, 'runId' | 'policy' | 'startedAt'> & Partial<RunRecord>): void {
    this.runs.push({ status: 'completed', dryRun: false, finishedAt: run.startedAt, report: null, ...run });
  }

  private expiry(ttlMs: number): Date {
    return new Date(this.clock.now().getTime() + ttlMs);
  }

  private check(): void {
    if (this.failing) throw new Error('control store unreachable');
  }
}

interface PendingRun {
  policy: string;
  runId: string;
  startedAt: Date;
  signal: AbortSignal;
  /** The lease the run was answered with (null: it ended skipped_locked). */
  lease: Lease | null;
  end(status?: RunReport['status']): void;
}

/**
 * Runs as the engine does towards the control store: recorded (`running`) first, then the lease
 * (owner = run id) or `skipped_locked`; ends when the test calls `end`, or at once with `autoEnd`.
 */
export class FakeRuns {
  readonly started: PendingRun[] = [];
  private readonly inFlight = new Set<PendingRun>();
  maxInFlight = 0;
  autoEnd = false;
  /** Throws instead of running (a store that would not open). */
  throwing: Error | null = null;

  constructor(
    private readonly clock: Clock,
    /** Where runs record themselves (history); leases go through the control store each run is given. */
    private readonly history: FakeControl,
    private readonly ttlMs = 60_000,
  ) {}

  readonly run: ScheduledRun = async (policy, { control, signal }) => {
    if (this.throwing) throw this.throwing;
    const startedAt = this.clock.now();
    const runId = `${policy.name}@${startedAt.toISOString()}#${this.started.length}`;
    const record: RunRecord = {
      runId,
      policy: policy.name,
      status: 'running',
      dryRun: false,
      startedAt,
      finishedAt: null,
      report: null,
    };
    this.history.runs.push(record);
    const lease = await control.acquireLease(policy.name, runId, this.ttlMs);
    const report = (status: RunReport['status']) => ({ runId, policy: policy.name, status }) as RunReport;
    if (!lease) {
      record.status = 'skipped_locked';
      return report('skipped_locked');
    }
    return new Promise<RunReport>((resolve) => {
      const pending: PendingRun = {
        policy: policy.name,
        runId,
        startedAt,
        signal,
        lease,
        end: (status = signal.aborted ? 'partial' : 'completed') => {
          this.inFlight.delete(pending);
          record.status = status;
          record.finishedAt = this.clock.now();
          void control.releaseLease(lease).then(() => resolve(report(status)));
        },
      };
      this.started.push(pending);
      this.inFlight.add(pending);
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight.size);
      if (this.autoEnd) pending.end();
    });
  };

  /** Runs of `policy` (or all), in the order they started, with their start minute. */
  startsOf(policy?: string): string[] {
    return this.started
      .filter((run) => policy === undefined || run.policy === policy)
      .map((run) => run.startedAt.toISOString().slice(11, 16));
  }

  running(): PendingRun[] {
    return [...this.inFlight];
  }
}

export class FakeMonitor implements RunMonitor {
  readonly checkIns: Array<{ policy: string; status: 'in_progress' | 'ok' | 'error' }> = [];
  readonly slaReports: string[] = [];
  readonly errors: string[] = [];

  checkIn(policy: PolicyConfig) {
    this.checkIns.push({ policy: policy.name, status: 'in_progress' });
    return { finish: (status: 'ok' | 'error') => void this.checkIns.push({ policy: policy.name, status }) };
  }
  reportSla(report: RunReport): void {
    this.slaReports.push(report.runId);
  }
  captureError(error: unknown, context: { stage: string }): void {
    this.errors.push(`${context.stage}: ${(error as Error).message}`);
  }
  async flush(): Promise<void> {}
}

/** A logger whose lines the test reads back as objects. */
export function recordingLogger(clock: Clock): {
  log: Logger;
  events: (name?: string) => Array<Record<string, unknown>>;
} {
  const lines: Array<Record<string, unknown>> = [];
  const log = new Logger({
    sink: { write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    clock,
  });
  return { log, events: (name) => lines.filter((line) => name === undefined || line.event === name) };
}

export function policies(...specs: Array<{ name: string; schedule: string; enabled?: boolean }>): PolicyConfig[] {
  return parseConfig({
    policies: specs.map((spec) => ({
      class: 'blobs',
      store: { kind: 'fs', root: `/data/${spec.name}` },
      retention: '30d',
      ...spec,
    })),
  }).policies;
}
