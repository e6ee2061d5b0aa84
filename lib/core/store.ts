import type { StoreAuditChain } from './chain.ts';
import type { AuditCount, AuditCountQuery, AuditQuery, AuditRecord } from './control.ts';
import type { RetentionSpec } from './retention.ts';
import type { Cutoffs, EligibleItem, Hold, Item, MaintenanceOutcome, Trigger } from './types.ts';

/**
 * One backend that holds items of a data class. A store lists candidates and deletes batches;
 * it never decides what is eligible (the pure planner does) but it must re-check, at delete
 * time, anything that may have changed since the scan (invariant 1).
 */
export interface ScanQuery {
  cutoffs: Cutoffs;
  /** Opaque position returned by the previous page or a checkpoint; absent = from the start. */
  cursor?: string;
  /** Upper bound on items returned in this page. */
  limit: number;
}

export interface Page {
  /** Candidates; may include items that are not eligible (the planner filters them). */
  items: Item[];
  /** Position after the last item of this page. */
  cursor?: string;
  /** True when the scan has nothing after this page. */
  done: boolean;
}

export interface CensusQuery {
  cutoffs: Cutoffs;
  holds: Hold[];
  /** Stop counting after this many items in scope (then `exact` is false). */
  bound?: number;
}

/** How many items are in the policy's scope and how many of them are past retention. */
export interface Census {
  total: number;
  /** Eligible and not held. */
  eligible: number;
  /** Eligible but kept by a hold, from stores that count them (those that sweep in one statement). */
  held?: number;
  /** Largest `cutoff - timestamp` among eligible unheld items, in seconds; 0 if none. */
  oldestOverdueSeconds: number;
  /** False when counting stopped at the bound. */
  exact: boolean;
}

/**
 * - deleted: removed by this call.
 * - missing: already gone (counts as done: invariant 7).
 * - kept: re-checked at delete time and found no longer eligible (e.g. modified since the scan).
 * - failed: could not be removed; retried next run.
 * - held: protected by the storage itself, e.g. S3 Object Lock (legal hold or retention period);
 *   not retried as a failure. `error` says what holds it (`object_lock: legal hold`).
 */
export type DeleteStatus = 'deleted' | 'missing' | 'kept' | 'failed' | 'held';

export interface DeleteOutcome {
  key: string;
  status: DeleteStatus;
  /** Bytes freed, for `deleted`. */
  bytes?: number;
  error?: string;
}

export interface DeleteOptions {
  /** The run deleting: stores that record their own deletions write it with them (rows: `retention.row_audit`). */
  run?: RunContext;
  /** The engine's local lease check (`Fence.assertHeld`): throws when the run may no longer delete. */
  beforeRequest?: () => void;
}

export interface BackupRef {
  /** Backup location as configured (`backup.to`). */
  to: string;
  policy: string;
  runId: string;
}

export interface BackupOutcome {
  key: string;
  ok: boolean;
  error?: string;
}

export type RestoreStatus = 'restored' | 'exists' | 'no_backup' | 'failed';

export interface RestoreOutcome {
  key: string;
  status: RestoreStatus;
  error?: string;
}

/** `matched: undefined` when a bounded check could not tell; `example`: an item's keys, for the operator. */
export interface HoldMatch {
  matched: boolean | undefined;
  example?: { key: string; linkedKey?: string };
  /** Why the check could not tell. */
  note?: string;
}

/** Something the operator should fix that does not stop the run (e.g. a cascade without index). */
export interface StoreWarning {
  code: string;
  message: string;
  fix?: string;
}

/**
 * The run a store works for. Passed with each call that needs it (never kept by the store between
 * calls), so one store object can serve run after run.
 */
export interface RunContext {
  runId: string;
  actor: string;
  trigger: Trigger;
  /**
   * The run's deadline (budget plus one request timeout): stores whose requests could hang on a
   * frozen backend (S3, DynamoDB, Vercel Blob) pass it to every request; once it aborts, they throw
   * a StoreError that says so instead of reporting items failed.
   */
  signal?: AbortSignal;
}

/** A partition (or any unit) dropped whole because every item in it is past retention. */
export interface PartitionOutcome {
  /** `schema.partition`. */
  partition: string;
  /** Rows it held (what the audit records). */
  rows: number;
  /** Every row in it is older than this. */
  upperBound: Date;
  status: 'dropped' | 'would_drop' | 'skipped';
  archivedTo?: string;
  reason?: string;
}

export interface PartitionDropOptions {
  /** Inspect and count only (a dry run reports `would_drop`). */
  dryRun?: boolean;
  /** The run dropping, recorded with each drop (absent: recorded without a run). */
  run?: RunContext;
  /**
   * Called before each partition: the engine's fence check (throws when the lease is lost) and
   * budget (false stops here; the rest waits for the next run), as before every batch.
   */
  beforeEach?: () => Promise<boolean>;
}

/**
 * The required core: what every backend does for every run. `open`/`close` bracket the backend's
 * resources (a connection, a pinned directory, an SDK client) and check its configuration before
 * anything is touched; `scan` and `delete` are the batch loop; `census` is what the safety limits
 * and the SLA's backlog are judged on; `present` is how write-ahead intents are resolved after a
 * crash (invariant 2). Everything else is a capability a backend offers and the engine discovers.
 */
export interface Store {
  /** `fs`, `s3`, … */
  readonly kind: string;
  /** Where, for logs and audit: `fs:/var/tmp/audio`, `s3://docs/pdfs/`. */
  readonly location: string;
  /** `timestamp`: scan pages come oldest first; `key`: in key order; `unordered`: neither (DynamoDB Scan). */
  readonly order: 'timestamp' | 'key' | 'unordered';

  /**
   * Checks the backend is reachable and configured as the policy says; throws ConfigError if not.
   * `run`: the run it is opened for (absent outside a run: the CLI's check of every store before
   * the first run, restores, hold checks).
   */
  open(run?: RunContext): Promise<void>;
  /** Releases what the store holds (connections, handles, clients it created). */
  close(): Promise<void>;
  scan(query: ScanQuery): Promise<Page>;
  census(query: CensusQuery): Promise<Census>;
  /**
   * Deletes the batch; one outcome per item, in any order. Must not throw for per-item failures.
   * Calls `options.beforeRequest` before each destructive request (each DeleteObjects, each chunk
   * of unlinks, each transaction) and stops by throwing what it throws (the run lost its lease).
   */
  delete(items: EligibleItem[], options?: DeleteOptions): Promise<DeleteOutcome[]>;
  /** Which of these keys still exist (resolves write-ahead intents left by a crashed run). */
  present(keys: string[]): Promise<Set<string>>;

  /** Copies of what a run deletes, for `retention restore` (not for credentials). */
  readonly backups?: StoreBackups;
  /** Whole batches deleted and audited in one statement (rows without linked files or children). */
  readonly sweep?: OneStatementSweep;
  /** Partitions dropped whole when every item in them is past retention (partitioned tables). */
  readonly partitions?: PartitionDrops;
  /** The store records each deletion itself, in the deleting transaction (rows with `audit: true`). */
  readonly audit?: OwnAuditTrail;
  /** The backend's clock, when its timestamps come from it (database rows): cutoffs use it. */
  readonly clock?: BackendClock;
  /** Whether a hold matches anything, for keys `present` and `scan` cannot answer for (rows). */
  readonly holdCheck?: HoldCheck;
  /** One item by the key an operator gives, without a listing (`retention verify`). */
  readonly lookup?: ItemLookup;
  /** Upkeep after a live run's deletions, when the store's configuration asks for it (rows: VACUUM). */
  readonly maintenance?: StoreMaintenance;
  /** The backend's own expiry (S3 Lifecycle, DynamoDB TTL), for `retention lifecycle`. */
  readonly nativeExpiry?: NativeExpiry;
  /** The files the items link to, in another store (rows with `blob`): what `retention reconcile` checks. */
  readonly linked?: LinkedFileIndex;
  /** Compression in place (fs policies with `compress`): the policy's compress tier. */
  readonly compress?: StoreCompression;
  /**
   * Milliseconds to wait between batches (rows: `pauseBetweenBatchesMs`, room for replicas and
   * other writers). The engine waits, then checks its lease: a pause never sits between the
   * lease check and the deletion.
   */
  readonly pacingMs?: number;
  /** How deletions are best sent (object stores: requests of up to 1000 keys, several in flight). */
  readonly deletes?: DeleteShape;
  /**
   * `census` is a full listing of what `scan` pages through (object stores; not a COUNT): the engine
   * may count the census from its own scan from the start and keep what it listed to delete from.
   */
  readonly censusByListing?: boolean;
  /** Found by open(); logged at run start. */
  readonly warnings?: readonly StoreWarning[];
}

/**
 * The batches a store fills best and how many it takes at once. A live run's delete batches hold
 * at least `batchItems` items (whatever `batchSize`), and the engine keeps up to `inFlight` items'
 * worth of `batchItems`-sized requests in flight (`inFlight × batchItems / batch size` batches, at
 * least one), each batch with its own write-ahead intents and lease check.
 */
export interface DeleteShape {
  batchItems: number;
  inFlight: number;
}

/**
 * - compressed: the compressed copy is complete and durable, then the original was removed.
 * - missing: the original is gone (nothing to do).
 * - kept: left as it is: modified since the scan, or its compressed name is taken by another file.
 * - failed: could not be compressed; the original is still there and is retried next run.
 */
export type CompressStatus = 'compressed' | 'missing' | 'kept' | 'failed';

export interface CompressOutcome {
  key: string;
  status: CompressStatus;
  /** The compressed file's key (`<key>.gz`), for `compressed`. */
  compressedKey?: string;
  bytesBefore?: number;
  bytesAfter?: number;
  /** Why, for kept and failed; for compressed, a note (an interrupted compression finished). */
  error?: string;
}

export interface StoreCompression {
  /**
   * Compresses each item in place, one outcome per item it attempted. Crash-safe per file: at
   * every instant the original or its complete compressed copy (or both) exists. Calls
   * `options.beforeRequest` before each file and before each removal of an original, and stops
   * by throwing what it throws (the run lost its lease); items not attempted have no outcome.
   */
  compress(items: EligibleItem[], options?: DeleteOptions): Promise<CompressOutcome[]>;
  /**
   * Removes the temporary files of compressions that never finished (a killed process) that this
   * store's listings passed over since the last call; returns how many went.
   */
  removeLeftovers(options?: DeleteOptions): Promise<number>;
}

export interface StoreBackups {
  backup(items: EligibleItem[], ref: BackupRef): Promise<BackupOutcome[]>;
  restore(ref: BackupRef, keys: string[]): Promise<RestoreOutcome[]>;
  /** Removes backups made before `olderThan` (per run, or per row copy); returns how many went. */
  prune(to: string, policy: string, olderThan: Date): Promise<number>;
}

/**
 * Offered only where one statement can do a whole batch (select, lock, delete, audit) for this
 * store's configuration: rows without linked files or children, recorded in the store's own
 * trail (`audit`), so no write-ahead intent is needed. The engine uses it for live runs with
 * nothing to do between selection and deletion (no `--limit`, no backup copy).
 */
export interface OneStatementSweep {
  /** One sweep per run: the run is recorded with each batch, and the sweep keeps what it learns (rows in use). */
  begin(run: RunContext, query: { cutoffs: Cutoffs; holds: Hold[] }): SweepSession;
}

export interface SweepSession {
  /**
   * The next batch from `cursor`, in one statement, audited by it. `summary` returns counts only
   * (no per-row data to the client); `rows` also returns the deleted rows (for `--list`).
   */
  next(batch: { cursor?: string; limit: number; detail: 'rows' | 'summary' }): Promise<SweptBatch>;
}

export interface PartitionDrops {
  /**
   * Drops whole partitions entirely past the cutoffs before the batched sweep (each one audited
   * with its row count by the store, in its own transaction); the boundary is left to the sweep.
   */
  dropExpired(cutoffs: Cutoffs, holds: Hold[], options?: PartitionDropOptions): Promise<PartitionOutcome[]>;
}

export interface OwnAuditTrail {
  /** The store's own audit records of this policy, newest first (read with the control store's by `readAuditTrail`). */
  trail(query: AuditQuery): Promise<AuditRecord[]>;
  /** Its records of the policy in a period, counted as the control store counts its own (`ControlStore.auditCounts`). */
  counts(query: AuditCountQuery): Promise<AuditCount[]>;
  /** Its hash chain (invariant 13), when the trail has one. */
  readonly chain?: StoreAuditChain;
}

export interface ItemLookup {
  /**
   * The items in the policy's scope that `key` names, as a scan would return them: the item with
   * that key and, for rows with a linked file, the rows whose file has that key (at most a few).
   */
  find(key: string): Promise<Item[]>;
}

/**
 * A rows table's links to its files (`blob.column` naming keys of `blob.store`), both ways: which
 * files a row references (orphan files are those none does) and which rows reference a file.
 */
export interface LinkedFileIndex {
  /** `<table>.<column>` as configured: what the links are, for audit rules and messages. */
  readonly column: string;
  /** The linked files' store, opened with this store (call `open` first). */
  files(): Promise<Store>;
  /** Which of these file keys a row of the table (any row, in the policy's scope or not) names now. */
  referenced(keys: string[]): Promise<Set<string>>;
  /** Rows in the policy's scope that name a file, in key order, from after `cursor`. */
  links(query: { cursor?: string; limit: number }): Promise<LinkedRowsPage>;
}

export interface LinkedRowsPage {
  rows: Array<{ key: string; timestamp: Date; linkedKey: string }>;
  cursor?: string;
  done: boolean;
}

export interface BackendClock {
  now(): Promise<Date>;
}

/**
 * Pushing a policy down to the backend's own expiry where that is enough: what the backend would
 * need (S3 Lifecycle rules), what it is set to now (DynamoDB TTL), and whether it deletes exactly
 * what the policy would, never earlier. The sweeper then runs as the verifier.
 */
export interface NativeExpiry {
  plan(input: NativeExpiryInput): Promise<NativeExpiryPlan>;
}

export interface NativeExpiryInput {
  policy: string;
  retention: RetentionSpec;
  /** Holds that apply to the policy (its own and global ones). */
  holds: Hold[];
  /** The policy copies what it deletes (`backup`). */
  backup: boolean;
}

export interface NativeExpiryPlan {
  mechanism: 's3_lifecycle' | 'dynamodb_ttl';
  /** The backend would delete what the policy deletes, never earlier, and nothing it keeps. */
  equivalent: boolean;
  /** Why not, each with what would have to change. */
  reasons: string[];
  /** What the backend is set to now, where the store can read it. */
  current?: string;
  /** What to apply (S3: the `--lifecycle-configuration` JSON of put-bucket-lifecycle-configuration). */
  configuration?: unknown;
  /** The command that applies it. */
  apply?: string;
  /** What changes once it is applied (timing, audit), true whether or not it is equivalent. */
  notes: string[];
}

export interface StoreMaintenance {
  /**
   * Called once after a live run's sweep with what it deleted and the run's scope at its census;
   * undefined when nothing is due (below the configured share). Must finish within `timeLeftMs`.
   */
  afterRun(facts: { deleted: number; inScope: number; timeLeftMs: number }): Promise<MaintenanceOutcome | undefined>;
}

export interface HoldCheck {
  /** Whether anything in scope matches the hold now (rows: every row, and the linked file's key); see HoldMatch. */
  matches(hold: Pick<Hold, 'key' | 'prefix'>): Promise<HoldMatch>;
}

export interface SweptBatch {
  deleted: number;
  /** Bytes freed (from a size column), 0 when unknown. */
  bytes: number;
  /** The rows the statement deleted, with `detail: 'rows'`. */
  rows?: Array<EligibleItem & { bytes?: number }>;
  /** True when the statement also wrote the rows' audit records (the store's own trail). */
  audited: boolean;
  /** Which statement deleted the batch, for the logs (rows: `range`, or `skip_locked` once rows in use were met). */
  mode?: string;
  /** True when the statement passes over eligible rows in use (SKIP LOCKED): they are left for the next run. */
  mayHaveSkipped: boolean;
  /** Position after the last row deleted. */
  cursor?: string;
  done: boolean;
}
