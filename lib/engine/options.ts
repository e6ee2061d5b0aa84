import type { PolicyConfig } from '../config/schema.ts';
import type { ControlStore } from '../core/control.ts';
import type { Store } from '../core/store.ts';
import type { Clock, EmergencyReason, Trigger } from '../core/types.ts';
import type { Logger } from '../observe/log.ts';

/** What a caller (CLI, handler, tests) hands `runPolicy`: how to run, and with what. */
export interface RunOptions {
  trigger: Trigger;
  dryRun: boolean;
  /** Delete at most this many items, oldest first. */
  limit?: number;
  /** Operator cutoff override; can only make cutoffs earlier. */
  before?: Date;
  /** Replaces the policy budget (e.g. a longer manual backfill). */
  budgetMs?: number;
  /** Platform deadline (Lambda): the budget never reaches past `at - marginMs`. */
  deadline?: { at: Date; marginMs: number };
  /** Proceed past the safety limits (logged). */
  force: boolean;
  /** Add every touched item to the report. */
  list: boolean;
  /**
   * false: neither resume from nor save the policy's checkpoint, nor count its failure streaks. A
   * run in the policy's name over another store (reconcile's orphan files) must not move the
   * position of the policy's own scans, nor end the streaks of its items as not met.
   */
  checkpoint?: boolean;
  /** Start at the start of the scope, not at the checkpoint (`attention retry`: the failed items are reached). */
  fromStart?: boolean;
  /** Aborting stops the run after the current batch (`partial`, checkpoint kept, lease released). */
  signal?: AbortSignal;
  /**
   * The id to record the run under, when its starter answered with it before the run began (the
   * cloud API invokes a function asynchronously); a new one otherwise. An id already in history
   * fails the run's start, before anything is touched: a redelivered invocation never runs twice.
   */
  runId?: string;
  /** Apply the policy's `emergency` rules instead of its retention, oldest first (lib/policy/emergency.ts). */
  emergency?: EmergencyRun;
  /**
   * The configuration recorded as applied (`policyHash`) when the run goes over a policy derived
   * from it (reconcile): the policy as configured, so `verify` does not call it changed since.
   */
  configuredAs?: PolicyConfig;
}

export interface EmergencyRun extends EmergencyReason {
  /**
   * Asked between batches (a daemon's run for a full disk): true once the disk is back under its
   * warning line, and the run stops there (`partial`, `disk_ok`). Absent: the rules in full.
   */
  diskOk?: () => Promise<boolean>;
}

export interface Progress {
  scanned: number;
  deleted: number;
  elapsedMs: number;
}

export interface RunDeps {
  control: ControlStore;
  store: Store;
  clock: Clock;
  log: Logger;
  /** Who runs this: `cli:alice@host`, `lambda:retention-blobs`. Recorded in audit. */
  actor: string;
  leaseTtlMs?: number;
  /** Most items a run keeps from its census listing to delete from (default `RETAINED_ITEMS`; tests lower it). */
  retainedItems?: number;
  onProgress?: (progress: Progress) => void;
}
