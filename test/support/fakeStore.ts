import { countRecords } from '../../lib/core/auditCounts.ts';
import type { AuditQuery, AuditRecord } from '../../lib/core/control.ts';
import type {
  Census,
  CensusQuery,
  DeleteOptions,
  DeleteOutcome,
  DeleteShape,
  OneStatementSweep,
  OwnAuditTrail,
  Page,
  RunContext,
  ScanQuery,
  Store,
  StoreMaintenance,
  SweptBatch,
} from '../../lib/core/store.ts';
import type { Cutoffs, EligibleItem, Hold, Item } from '../../lib/core/types.ts';
import { holdFor, isEligible } from '../../lib/policy/classify.ts';
import { CensusTally, mayProceed } from '../../lib/stores/common.ts';

/**
 * An in-memory Store (our interface, no SDK underneath) for unit tests of the run loop: items in
 * a map, scanned in key order, deleted with the re-check real stores make (an item rewritten at
 * or after its cutoff is `kept`, one already gone `missing`). Tests observe and interfere through
 * `beforeDelete` and the call logs.
 */
export interface FakeStoreOptions {
  items?: Item[];
  /**
   * Offer a one-statement sweep (as rows stores do): `audited` says whether each statement also
   * writes the batch's records to the store's own trail (`audit`).
   */
  sweep?: { audited: boolean };
  /** Declare a delete shape (several batches in flight), as object stores do. */
  deletes?: DeleteShape;
  /** Declare the census a listing (object stores): runs from the start count it from their own scan. */
  censusByListing?: boolean;
}

export class FakeStore implements Store {
  readonly kind = 'fake';
  readonly location = 'fake://items';
  readonly order = 'key' as const;
  readonly items = new Map<string, Item>();
  /** Keys of each `delete` call (and each one-statement batch), in call order. */
  readonly deleteCalls: string[][] = [];
  /** The run each `delete` call said it was for. */
  readonly deletingRuns: Array<RunContext | undefined> = [];
  /** Keys whose deletion fails (the backend refuses them). */
  readonly failing = new Set<string>();
  /** Called before each destructive call, with what it is about to delete. */
  beforeDelete?: (keys: string[]) => unknown;
  /** The next `delete` deletes this many items, then throws `error` (a connection lost mid-call). */
  breakNextDelete?: { after: number; error: Error };
  /** The store's own audit records (one per item a one-statement batch deleted, when audited). */
  readonly ownRecords: AuditRecord[] = [];
  readonly sweep?: OneStatementSweep;
  readonly audit?: OwnAuditTrail;
  readonly deletes?: DeleteShape;
  readonly censusByListing?: boolean;
  /** Calls of `scan` and of `census`. */
  scans = 0;
  censuses = 0;
  /** Upkeep after a run (rows: VACUUM), when a test gives the store one. */
  maintenance?: StoreMaintenance;
  opened = 0;
  closed = 0;

  constructor(options: FakeStoreOptions = {}) {
    for (const item of options.items ?? []) this.items.set(item.key, item);
    if (options.deletes) this.deletes = options.deletes;
    if (options.censusByListing) this.censusByListing = true;
    if (options.sweep) {
      this.sweep = this.oneStatementSweep(options.sweep.audited);
      if (options.sweep.audited)
        this.audit = {
          trail: async (query) => this.ownTrail(query),
          counts: async (query) => countRecords(this.ownRecords, query),
        };
    }
  }

  /** Keys still present, sorted. */
  keys(): string[] {
    return [...this.items.keys()].sort();
  }

  async open(): Promise<void> {
    this.opened += 1;
  }

  async close(): Promise<void> {
    this.closed += 1;
  }

  async scan({ cursor, limit }: ScanQuery): Promise<Page> {
    this.scans += 1;
    const after = this.keys().filter((key) => cursor === undefined || key > cursor);
    const page = after.slice(0, limit).map((key) => this.items.get(key)!);
    const last = page.at(-1)?.key ?? cursor;
    return { items: page, ...(last === undefined ? {} : { cursor: last }), done: after.length <= limit };
  }

  async census(query: CensusQuery): Promise<Census> {
    this.censuses += 1;
    const tally = new CensusTally(query);
    for (const key of this.keys()) if (!tally.add(this.items.get(key)!)) break;
    return tally.census;
  }

  async delete(items: EligibleItem[], options: DeleteOptions = {}): Promise<DeleteOutcome[]> {
    this.deletingRuns.push(options.run);
    // One destructive request for the whole batch: the lease check comes first.
    if (!mayProceed(options.beforeRequest)) return [];
    await this.beforeDelete?.(items.map((item) => item.key));
    this.deleteCalls.push(items.map((item) => item.key));
    const broken = this.breakNextDelete;
    this.breakNextDelete = undefined;
    if (broken) {
      for (const item of items.slice(0, broken.after)) this.deleteOne(item);
      throw broken.error;
    }
    return items.map((item) => this.deleteOne(item));
  }

  async present(keys: string[]): Promise<Set<string>> {
    return new Set(keys.filter((key) => this.items.has(key)));
  }

  private ownTrail(query: AuditQuery): AuditRecord[] {
    return this.ownRecords.filter((record) => query.runId === undefined || record.runId === query.runId);
  }

  private deleteOne(item: EligibleItem): DeleteOutcome {
    const current = this.items.get(item.key);
    if (!current) return { key: item.key, status: 'missing' };
    if (this.failing.has(item.key)) return { key: item.key, status: 'failed', error: 'refused by the fake backend' };
    // Invariant 1 at delete time: rewritten since the scan; its current timestamp decides.
    if (current.timestamp.getTime() >= item.cutoff.getTime()) return { key: item.key, status: 'kept' };
    this.items.delete(item.key);
    return { key: item.key, status: 'deleted', ...(current.size !== undefined ? { bytes: current.size } : {}) };
  }

  /** Eligible, unheld items in key order after the cursor, deleted (and recorded) in one step per batch. */
  private oneStatementSweep(audited: boolean): OneStatementSweep {
    return {
      begin: (run: RunContext, { cutoffs, holds }: { cutoffs: Cutoffs; holds: Hold[] }) => ({
        next: async ({ cursor, limit }): Promise<SweptBatch> => {
          const due = this.keys()
            .filter((key) => cursor === undefined || key > cursor)
            .map((key) => isEligible(this.items.get(key)!, cutoffs))
            .filter((item): item is EligibleItem => item !== undefined && !holdFor(item.key, holds));
          const batch = due.slice(0, limit);
          await this.beforeDelete?.(batch.map((item) => item.key));
          this.deleteCalls.push(batch.map((item) => item.key));
          for (const item of batch) {
            this.items.delete(item.key);
            if (audited) this.ownRecords.push(ownRecord(run, this.location, item, this.ownRecords.length + 1));
          }
          const last = batch.at(-1)?.key ?? cursor;
          const position = last === undefined ? {} : { cursor: last };
          return {
            deleted: batch.length,
            bytes: 0,
            audited,
            mayHaveSkipped: false,
            ...position,
            done: due.length <= limit,
          };
        },
      }),
    };
  }
}

function ownRecord(run: RunContext, store: string, item: EligibleItem, id: number): AuditRecord {
  const at = new Date(0);
  return {
    id,
    runId: run.runId,
    policy: 'fake',
    store,
    key: item.key,
    itemTimestamp: item.timestamp,
    rule: item.rule,
    cutoff: item.cutoff,
    actor: run.actor,
    trigger: run.trigger,
    action: 'delete',
    status: 'deleted',
    createdAt: at,
    resolvedAt: at,
    error: null,
    source: 'fake#own',
  };
}
