import { parseConfig } from '../../lib/config/load.ts';
import type { PolicyConfig } from '../../lib/config/schema.ts';
import type { Item, RunReport } from '../../lib/core/types.ts';
import type { RunDeps, RunOptions } from '../../lib/engine/options.ts';
import { runPolicy } from '../../lib/engine/run.ts';
import { Logger } from '../../lib/observe/log.ts';
import { SettableClock } from './fakeClock.ts';
import { FakeControl } from './fakeControl.ts';
import { FakeStore, type FakeStoreOptions } from './fakeStore.ts';

/**
 * Runs of the real engine (`runPolicy`) over the in-memory fakes, with a clock that moves only
 * when the test moves it: milliseconds per run, no servers. Everything is exposed for assertions:
 * the store's items and calls, the control store's leases and records, the log lines.
 */
export const T0 = new Date('2024-06-01T00:00:00.000Z');
export const DAY = 86_400_000;
/** The cutoff of the default policy (30 days) at T0. */
export const CUTOFF = new Date(T0.getTime() - 30 * DAY);

export const ago = (ms: number): Date => new Date(T0.getTime() - ms);

export function item(key: string, timestamp: Date, extra: Partial<Item> = {}): Item {
  return { key, timestamp, size: 10, ...extra };
}

/** Old items (40 days, a minute apart), keys `old-00`…, past the default retention. */
export function oldItems(count: number, prefix = 'old'): Item[] {
  const key = (index: number) => `${prefix}-${String(index).padStart(2, '0')}`;
  return Array.from({ length: count }, (_, index) => item(key(index), ago(40 * DAY - index * 60_000)));
}

/** A policy as the config would give it; the engine reads no store config from it (the store is injected). */
export function policyWith(overrides: Record<string, unknown> = {}): PolicyConfig {
  const policy = {
    name: 'files',
    class: 'blobs',
    store: { kind: 'fs', root: '/srv/fake' },
    retention: '30d',
    schedule: '0 * * * *',
  };
  return parseConfig({ policies: [{ ...policy, limits: { maxDeleteFraction: 1 }, ...overrides }] }).policies[0]!;
}

export class FakeRuns {
  readonly clock = new SettableClock(T0);
  readonly control = new FakeControl(this.clock);
  readonly store: FakeStore;
  readonly lines: Array<Record<string, unknown>> = [];

  constructor(
    store: FakeStoreOptions = {},
    readonly policy: PolicyConfig = policyWith(),
  ) {
    this.store = new FakeStore(store);
  }

  /** A live manual run listing every item, unless `options` say otherwise. */
  run(options: Partial<RunOptions> = {}, deps: Partial<RunDeps> = {}): Promise<RunReport> {
    const sink = { write: (line: string) => void this.lines.push(JSON.parse(line) as Record<string, unknown>) };
    const log = new Logger({ sink, level: 'debug', clock: this.clock });
    return runPolicy(
      this.policy,
      { trigger: 'manual', dryRun: false, force: false, list: true, ...options },
      { control: this.control, store: this.store, clock: this.clock, log, actor: 'test:engine', ...deps },
    );
  }

  /** Log lines of one event, in order. */
  events(event: string): Array<Record<string, unknown>> {
    return this.lines.filter((line) => line.event === event);
  }
}

/** Keys of the report's listed items with this outcome, sorted. */
export function listed(report: RunReport, outcome: string): string[] {
  return (report.items ?? [])
    .filter((entry) => entry.outcome === outcome)
    .map((entry) => entry.key)
    .sort();
}
