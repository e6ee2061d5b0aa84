import type { ChainHead } from './chain.ts';

/**
 * The vocabulary of DESIGN.md as types. Everything here is plain data: stores produce Items,
 * the pure planner turns them into EligibleItems, the engine turns outcomes into a RunReport.
 */
export type DataClass = 'blobs' | 'rows' | 'tokens';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** One blob / row / token as a store sees it. */
export interface Item {
  /** Stable identity inside the store: POSIX path, object key, joined key columns. */
  key: string;
  /** The instant retention counts from (mtime, LastModified, created_at, expires_at). */
  timestamp: Date;
  /** Size in bytes where known. */
  size?: number;
  /** Attribute values for per-purpose retention (`by` column → value). */
  attributes?: Record<string, string | null>;
  /**
   * The key of the file this item links to in another store (a rows policy's `blob` column):
   * the file is deleted with the item, so a hold on either key holds both (invariant 9).
   */
  linkedKey?: string;
}

/** One per-purpose rule with its cutoff fixed at run start. */
export interface CutoffRule {
  /** The attribute value (or key prefix when `by` is `prefix`) the rule applies to. */
  value: string;
  /** The retention as configured, e.g. `7y`. */
  retention: string;
  retentionMs: number;
  /** Items strictly older than this are eligible. */
  cutoff: Date;
  /** The rule's name in audit records and reports when not derived from `retention` (`emergency: keep newest 100`). */
  label?: string;
}

export interface Cutoffs {
  /** When the cutoffs were computed (run start). */
  computedAt: Date;
  /** Attribute the rules are keyed on; `prefix` matches the item key's longest rule prefix. */
  by?: string;
  rules: CutoffRule[];
  /** Applies to items no rule matches; absent = such items are kept and counted unclassified. */
  fallback?: Omit<CutoffRule, 'value'>;
}

/** An item the planner decided is past its retention, with the reason why. */
export interface EligibleItem extends Item {
  cutoff: Date;
  /** Human-readable rule, e.g. `purpose_code=Financial: 1y` or `retention: 30d`. */
  rule: string;
}

export interface Hold {
  id: number;
  /** null: applies to every policy. */
  policy: string | null;
  /** Exact key, or a key prefix when `prefix` is true. */
  key: string;
  prefix: boolean;
  reason: string;
  createdBy: string;
  createdAt: Date;
}

/** `reconcile`: a run of `retention reconcile` over a policy's orphans, in the policy's name (not its turn). */
/** `inventory`: one shard of an S3 Inventory, run by the deployment's Distributed Map (stores/s3/inventory.ts). */
export type Trigger = 'scheduled' | 'manual' | 'backfill' | 'demo' | 'reconcile' | 'inventory';

export type RunStatus = 'completed' | 'partial' | 'skipped_locked' | 'skipped_paused' | 'aborted_limit' | 'failed';

/**
 * Why a run ended before its pass was done. `budget` is the normal end of a long backlog (exit 0);
 * the others are stops an operator or a fault asked for (`retention` exits 4) or the safety limit
 * on what one run may delete (exit 3).
 */
export type StopReason = 'budget' | 'signal' | 'paused' | 'lease_lost' | 'limit' | 'disk_ok';

/**
 * Why a run applied its policy's emergency rules: its file system crossed the critical line (the
 * daemon; the run stops once the disk is back under the warning line: `disk_ok`, exit 0), or an
 * operator asked (`retention run --emergency`: the rules in full, whatever the disk says).
 */
export interface EmergencyReason {
  reason: 'disk_critical' | 'operator';
  /** Percent used of the policy's file system when the run was decided. */
  usedPercent?: number;
}

/** Eligible items a run did not delete, grouped by outcome and cause (invariant 12). */
export interface NotDeleted {
  outcome: 'held' | 'kept' | 'failed';
  /** `hold #12 (litigation 2024-17)`, `linked file … modified after the cutoff`, the error. */
  cause: string;
  count: number;
}

export type SlaStatus = 'ok' | 'warning' | 'breach';

export interface SlaResult {
  status: SlaStatus;
  reasons: string[];
}

/**
 * `kept`: found no longer eligible (or in use) when re-checked at delete time; `missing`: already
 * gone when deleted. `error` says why for held (the hold), kept (the cause) and failed (the error).
 * `compressed` / `would_compress`: the compress tier (policies with `compress`).
 */
export type ItemOutcome =
  | 'deleted'
  | 'missing'
  | 'would_delete'
  | 'held'
  | 'failed'
  | 'kept'
  | 'compressed'
  | 'would_compress';

export interface ListedItem {
  key: string;
  timestamp: string;
  outcome: ItemOutcome;
  rule?: string;
  error?: string;
}

export interface RunReport {
  runId: string;
  policy: string;
  dataClass: DataClass;
  store: string;
  trigger: Trigger;
  dryRun: boolean;
  status: RunStatus;
  scanned: number;
  eligible: number;
  /** Items this run removed. */
  deleted: number;
  /** Eligible items found already gone when deleted (done, not deleted by this run: invariant 7). */
  missing: number;
  failed: number;
  held: number;
  /** Eligible at the scan, found no longer eligible (or in use) at delete time: left in place. */
  kept: number;
  /** Why each eligible item that is still there was not deleted (held, kept, failed), by cause. */
  notDeleted: NotDeleted[];
  /** Items whose attribute matched no rule and no default: kept. */
  unclassified: number;
  bytesFreed: number;
  /**
   * A dry run only: the bytes its live run would free now (the sizes of what it would delete, from
   * stores that know them: fs, S3, Vercel Blob; 0 for rows and tokens).
   */
  bytesToFree?: number;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  /** Eligible, unheld items still present after the run (null when not measured). */
  backlog: number | null;
  oldestOverdueSeconds: number | null;
  budgetSeconds: number;
  budgetUsedPercent: number;
  sla: SlaResult;
  /** Planned deletions vs limits when the run was aborted or forced. */
  limits?: { planned: number; total: number; maxDeletesPerRun: number; maxDeleteFraction: number; forced: boolean };
  /** Why a `partial` run stopped before its pass was done. */
  stopReason?: StopReason;
  /** Upkeep after the deletions (rows: VACUUM (ANALYZE) once a run deleted enough of a table). */
  maintenance?: MaintenanceOutcome;
  /** The compress tier, for policies with `compress` when the pass ran (after a completed sweep). */
  compressed?: CompressionSummary;
  /** Set when the run applied the policy's emergency rules instead of its retention. */
  emergency?: EmergencyReason;
  /** Why the run stopped early or failed. */
  error?: { code: string; message: string };
  cutoffs: Array<{ rule: string; cutoff: string }>;
  /**
   * sha256 (hex) of the canonical JSON of the policy as parsed, secrets redacted: which
   * configuration the run applied, so a deletion can be traced to its rule after the config changed.
   */
  policyHash?: string;
  /**
   * The heads of the policy's audit chains when the run finished (invariant 13): the control
   * store's and the store's own trail's. `retention audit verify` checks each is still in its chain.
   */
  auditChain?: { control?: ChainHead; store?: ChainHead };
  /**
   * Live runs: the policy's items that failed to delete in `after` (the policy's `attentionAfter`)
   * or more consecutive runs and were not dismissed, once this run's outcomes were counted.
   */
  attention?: { open: number; after: number };
  items?: ListedItem[];
}

/** What a run's compress pass did (a dry run: what it would do, in `wouldCompress`). */
export interface CompressionSummary {
  /** Files compressed, and their sizes before and after. */
  count: number;
  bytesBefore: number;
  bytesAfter: number;
  /** Left as they are when re-checked (modified since the scan, the `.gz` name taken). */
  kept: number;
  failed: number;
  /** A dry run: files a live run would compress now, and their size. */
  wouldCompress?: number;
  bytesToCompress?: number;
  /** The pass stopped before the end of the scope (budget, or `maxDeletesPerRun` compressions): the rest next run. */
  unfinished?: 'budget' | 'limit';
}

/**
 * What a store did for its backend's health after a live run's deletions (PostgreSQL: VACUUM
 * (ANALYZE), outside the deleting transactions). Never a run failure: the deletions are done.
 */
export interface MaintenanceOutcome {
  action: 'vacuum';
  /** The table (or partitioned table, its partitions with it). */
  target: string;
  /** `skipped`: not allowed or no time left (`reason` says which); `timed_out`: cut at the budget. */
  status: 'done' | 'skipped' | 'timed_out' | 'failed';
  reason?: string;
  /** Dead tuples as PostgreSQL's statistics count them (they may lag the last second of deletes). */
  deadTuplesBefore: number | null;
  deadTuplesAfter: number | null;
  durationSeconds: number;
}
