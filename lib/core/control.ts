import type { AuditChains } from './chain.ts';
import type { Hold, RunReport, Trigger } from './types.ts';

/**
 * Where leases, checkpoints, pauses, holds, run history and the audit trail live.
 * One implementation per backend (PostgreSQL now; DynamoDB later), all passing one contract suite.
 * Time-based decisions (lease expiry) use the backend's clock, never the caller's.
 */
export interface Lease {
  policy: string;
  owner: string;
  /** Fencing token: strictly increases each time the lease changes hands. */
  token: number;
  expiresAt: Date;
}

export interface Checkpoint {
  policy: string;
  cursor: string;
  runId: string;
  updatedAt: Date;
}

export interface PauseState {
  /** The policy name, or `*` for the global kill switch. */
  scope: string;
  by: string;
  reason: string;
  at: Date;
}

/**
 * What operators did to the tool's governance, each an audit record of its own (invariant 13):
 * who, when, why, and over what scope (lib/core/governance.ts maps them to and from records).
 */
export const GOVERNANCE_ACTIONS = [
  'hold_added',
  'hold_removed',
  'paused',
  'resumed',
  'lease_broken',
  'limit_overridden',
  'restored',
  'attention_dismissed',
] as const;
export type GovernanceAction = (typeof GOVERNANCE_ACTIONS)[number];

/**
 * `hold`: one record per hold per live run that kept eligible items (the count is in `error`);
 * `compress`: a file compressed in place (policies with `compress`; the sizes are in `error`);
 * the governance actions are what operators did (holds, pauses, lease breaks, overrides, restores).
 */
export const AUDIT_ACTIONS = [
  'delete',
  'restore',
  'partition_drop',
  'hold',
  'compress',
  ...GOVERNANCE_ACTIONS,
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/**
 * pending: intent written before a deletion or a compression (write-ahead);
 * deleted / missing / kept / failed: resolved delete outcomes;
 * abandoned: a crashed run's intent whose item was found still present (nothing was deleted);
 * restored: a restore of a previously deleted item;
 * compressed: a compression done (action `compress`: the original replaced by its complete compressed copy);
 * held: eligible items a hold kept in a run (action `hold`, one record per hold and run);
 * recorded: a governance action that took effect (a `restored` action is `restored` or `failed`).
 */
export const AUDIT_STATUSES = [
  'pending',
  'deleted',
  'missing',
  'kept',
  'failed',
  'abandoned',
  'restored',
  'held',
  'recorded',
  'compressed',
] as const;
export type AuditStatus = (typeof AUDIT_STATUSES)[number];

export interface AuditIntent {
  runId: string;
  policy: string;
  store: string;
  key: string;
  itemTimestamp: Date;
  size?: number;
  /** Why: the rule that made it eligible and its cutoff. */
  rule: string;
  cutoff: Date;
  /** Who: `cli:alice@host`, `lambda:retention-blobs`, … */
  actor: string;
  trigger: Trigger;
  action: AuditAction;
}

export interface AuditRecord extends AuditIntent {
  id: number;
  status: AuditStatus;
  createdAt: Date;
  resolvedAt: Date | null;
  error: string | null;
  /**
   * Where the record lives when it is not in the control store: the store's own trail, written
   * in the deleting transaction (`retention.row_audit#<batch id>`). `id` is then the batch's id.
   */
  source?: string;
  /** A deleted row's linked file (rows policies with `blob`), where the trail recorded it. */
  linkedKey?: string;
}

export interface AuditResolution {
  key: string;
  status: Exclude<AuditStatus, 'pending'>;
  error?: string;
}

/** Absent filters match everything; newest first, at most `limit`. */
export interface AuditQuery {
  runId?: string;
  policy?: string;
  key?: string;
  action?: AuditAction;
  /** The record's status: its outcome (`failed`, `deleted`, …). */
  status?: AuditStatus;
  /** When the record was last written (resolved, else created): at or after `since`, before `until`. */
  since?: Date;
  until?: Date;
  limit: number;
}

/**
 * `auditCounts`: one policy's records written in [from, to), by when each was first written (a
 * deletion's intent is written just before the deletion; a recovery resolves it later, but the
 * item went then). A policy's records are counted whatever their number: no cap.
 */
export interface AuditCountQuery {
  policy: string;
  from: Date;
  to: Date;
}

/** How many of a policy's records share a run, action, current status, rule and UTC day. */
export interface AuditCount {
  runId: string;
  action: AuditAction;
  status: AuditStatus;
  /** The rule recorded (per-purpose rules name their purpose: `purpose=Legal: 7y`). */
  rule: string;
  /** `YYYY-MM-DD` (UTC) of when the records were written. */
  day: string;
  /** Records; rows for a store trail's partition drops (one batch per partition, with its row count). */
  count: number;
}

export interface RunRecord {
  runId: string;
  policy: string;
  /** `crashed`: a live run that never finished (its process died); closed by the next live run of its policy. */
  status: RunReport['status'] | 'running' | 'crashed';
  dryRun: boolean;
  startedAt: Date;
  finishedAt: Date | null;
  report: RunReport | null;
}

/**
 * A live run of the policy's own job: not a dry run (an operator's question), nor a reconcile run
 * over its orphans (`retention reconcile --delete`), nor an emergency run (its rules, not the
 * retention, and it stops once the disk has room), whose backlog and timing are not the policy's.
 * An inventory shard (`trigger: "inventory"`) is: its policy has no listing schedule, its shards are its turn.
 */
export function isPolicyRun(run: RunRecord): boolean {
  return !run.dryRun && run.report?.trigger !== 'reconcile' && run.report?.emergency === undefined;
}

export interface NewHold {
  policy: string | null;
  key: string;
  prefix: boolean;
  reason: string;
  createdBy: string;
}

/**
 * An item whose deletion failed in consecutive live runs of its policy (its failure streak). A
 * streak ends (the record goes) when a run settles the item (deleted, missing, kept, held) or a
 * whole pass over the policy's scope no longer fails it. Listed for an operator once `failures`
 * reaches the policy's `attentionAfter` (lib/core/attention.ts holds the rules).
 */
export interface AttentionItem {
  policy: string;
  key: string;
  /** Consecutive live runs that attempted the item and failed to delete it. */
  failures: number;
  firstFailedAt: Date;
  lastFailedAt: Date;
  lastRunId: string;
  lastError: string;
  /** An operator acknowledged it: no longer counted as open while the streak lasts. */
  dismissed: { by: string; reason: string; at: Date } | null;
}

/** What one live run learnt about the items it tried to delete. */
export interface FailureStreakUpdate {
  policy: string;
  runId: string;
  /** Items whose deletion failed in this run, with the error (one entry per key). */
  failed: Array<{ key: string; error: string }>;
  /** Items with a streak that this run settled (deleted, missing, kept, held): their streak ends. */
  settled: string[];
  /** The run passed over the policy's whole scope: every streak it did not extend ends. */
  wholePass: boolean;
}

export interface ControlStore {
  /** Creates or upgrades the schema; idempotent and safe to run concurrently. */
  migrate(): Promise<void>;

  /** Takes the lease if free or expired (by the backend's clock); null if someone else holds it. */
  acquireLease(policy: string, owner: string, ttlMs: number): Promise<Lease | null>;
  /**
   * Extends the lease if it still carries our token and the policy is not paused (nor everything);
   * null means stop at once: the lease was lost, or a pause applies (`pausedBy` tells which).
   */
  renewLease(lease: Lease, ttlMs: number): Promise<Lease | null>;
  /** Expires the lease; the record (and its token) stays, so fencing tokens never go back. */
  releaseLease(lease: Lease): Promise<void>;
  /** The current holder, expired or not (for `status`). */
  getLease(policy: string): Promise<Lease | null>;
  /** Operator override for a stuck lease; bumps the token so a zombie holder is fenced off. */
  breakLease(policy: string): Promise<boolean>;

  getCheckpoint(policy: string): Promise<Checkpoint | null>;
  /** Fenced: throws LeaseLostError if `lease` is no longer current or the policy is paused. */
  saveCheckpoint(lease: Lease, runId: string, cursor: string): Promise<void>;
  clearCheckpoint(lease: Lease): Promise<void>;

  /** `scope` is a policy name or `*` (every policy). */
  pause(scope: string, by: string, reason: string): Promise<void>;
  resume(scope: string): Promise<boolean>;
  /** The pause that applies to this policy (its own or the global one), if any. */
  pausedBy(policy: string): Promise<PauseState | null>;
  listPauses(): Promise<PauseState[]>;

  addHold(hold: NewHold): Promise<Hold>;
  /** Adds many holds in one round trip (PostgreSQL) or one id reservation plus batched writes (DynamoDB); in input order; [] for []. */
  addHolds(holds: NewHold[]): Promise<Hold[]>;
  /** Holds that apply to `policy` (its own and global ones); all holds when omitted. */
  listHolds(policy?: string): Promise<Hold[]>;
  removeHold(id: number): Promise<boolean>;

  startRun(run: { runId: string; policy: string; dryRun: boolean; startedAt: Date }): Promise<void>;
  finishRun(report: RunReport): Promise<void>;
  /**
   * Marks the policy's other live runs still `running` as `crashed`. Only the lease holder calls
   * it: while it holds the lease no other live run of the policy can be going on. Returns their ids.
   */
  closeCrashedRuns(policy: string, exceptRunId: string): Promise<string[]>;
  listRuns(query: { policy?: string; limit: number }): Promise<RunRecord[]>;
  getRun(runId: string): Promise<RunRecord | null>;

  /** Write-ahead: records `pending` intents before the store is touched. */
  recordIntents(intents: AuditIntent[]): Promise<void>;
  /** Resolves this run's pending intents by key. */
  resolveIntents(runId: string, resolutions: AuditResolution[]): Promise<void>;
  /** Pending intents of runs other than `exceptRunId` for this policy (left by a crash). */
  pendingIntents(policy: string, exceptRunId?: string): Promise<AuditRecord[]>;
  /** Resolves intents left by other (crashed) runs, by record id. */
  resolveStaleIntents(resolutions: Array<{ id: number; status: Exclude<AuditStatus, 'pending'> }>): Promise<void>;
  /** Records events that are resolved when they happen (restores). Dry runs record no audit. */
  recordEvents(events: Array<AuditIntent & { status: Exclude<AuditStatus, 'pending'>; error?: string }>): Promise<void>;
  audit(query: AuditQuery): Promise<AuditRecord[]>;
  /** Counts of the policy's records in a period, grouped (the compliance report reconciles runs with them). */
  auditCounts(query: AuditCountQuery): Promise<AuditCount[]>;

  /**
   * Counts failure streaks (core/attention.ts `nextStreaks`): a failed key's streak grows by one
   * per run (a run noted twice counts once), settled keys' streaks end. A few round trips whatever
   * the number of keys. The backend's clock stamps `lastFailedAt`.
   */
  noteFailureStreaks(update: FailureStreakUpdate): Promise<void>;
  /** The policy's streaks of at least `minFailures`, dismissed ones included; most failures first, then by key. */
  attentionItems(policy: string, minFailures: number): Promise<AttentionItem[]>;
  /** Marks a streak dismissed (kept until it ends); null when the key has no streak. */
  dismissAttention(policy: string, key: string, by: string, reason: string): Promise<AttentionItem | null>;

  /** Every audit write is chained (invariant 13, core/chain.ts): the chains, read for run history and verify. */
  readonly chains: AuditChains;
  close(): Promise<void>;
}
