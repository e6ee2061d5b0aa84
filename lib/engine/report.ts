import type { PolicyConfig } from '../config/schema.ts';
import { durationMs } from '../core/durations.ts';
import type { CompressOutcome, DeleteOutcome } from '../core/store.ts';
import type {
  CompressionSummary,
  DataClass,
  EligibleItem,
  Hold,
  ListedItem,
  NotDeleted,
  RunReport,
  RunStatus,
  StopReason,
  Trigger,
} from '../core/types.ts';
import { overdueSeconds } from '../policy/classify.ts';
import { classifySla } from '../policy/sla.ts';

/** Distinct causes kept per report; the rest are summed under one line (a report stays small). */
const MAX_CAUSES = 20;

/** Running counts of one run; turned into the RunReport of DESIGN.md at the end. */
export class Tally {
  scanned = 0;
  eligible = 0;
  deleted = 0;
  missing = 0;
  failed = 0;
  held = 0;
  kept = 0;
  unclassified = 0;
  bytesFreed = 0;
  /** A dry run's `bytesFreed`: the sizes of what it would delete. */
  bytesToFree = 0;
  /** Largest overdue time among items that failed to delete (what a full pass leaves behind). */
  failedOldestOverdueSeconds = 0;
  readonly items: ListedItem[] | undefined;
  /** Eligible items each hold kept, for the run's `hold` audit records. */
  readonly heldByHold = new Map<number, { hold: Hold; count: number }>();
  /** Held items a store counted without saying which hold kept each (one-statement sweeps). */
  heldInStore: { count: number; holds: Hold[] } | undefined;
  /** The compress pass, when the policy compresses and the pass ran. */
  compression: CompressionSummary | undefined;
  private readonly causes = new Map<string, NotDeleted>();

  constructor(list: boolean) {
    this.items = list ? [] : undefined;
  }

  listItem(item: EligibleItem, outcome: ListedItem['outcome'], error?: string): void {
    this.items?.push({
      key: item.key,
      timestamp: item.timestamp.toISOString(),
      outcome,
      rule: item.rule,
      ...(error ? { error } : {}),
    });
  }

  /** An eligible item a hold protects: counted, listed and explained by its hold. */
  countHeld(item: EligibleItem & { hold: Hold }): void {
    this.held += 1;
    this.eligible += 1;
    const byHold = this.heldByHold.get(item.hold.id) ?? { hold: item.hold, count: 0 };
    byHold.count += 1;
    this.heldByHold.set(item.hold.id, byHold);
    const cause = describeHold(item.hold);
    this.notDeleted('held', cause);
    this.listItem(item, 'held', cause);
  }

  /** Held items a store counted without returning them (one-statement sweeps skip them in SQL). */
  countHeldInStore(count: number, holds: Hold[]): void {
    if (count === 0) return;
    this.held += count;
    this.eligible += count;
    this.heldInStore = { count, holds };
    this.notDeleted(
      'held',
      `one of holds ${holds.map((hold) => `#${hold.id}`).join(', ')} (see retention hold list)`,
      count,
    );
  }

  /** Rows a one-statement batch passed over because another transaction held them (SKIP LOCKED). */
  countSkippedInUse(count: number): void {
    if (count > 0)
      this.notDeleted('kept', 'in use by another transaction (skipped, SKIP LOCKED); the next run retries them', count);
  }

  /**
   * `missing` is done (the item is gone, which is what was asked: invariant 7) but is not a
   * deletion of this run: summing `deleted` over runs gives what the tool removed, exactly.
   */
  countOutcomes(batch: EligibleItem[], outcomes: DeleteOutcome[]): void {
    const byKey = new Map(batch.map((item) => [item.key, item]));
    for (const outcome of outcomes) {
      const item = byKey.get(outcome.key);
      if (!item) continue;
      if (outcome.status === 'deleted') {
        this.deleted += 1;
        this.bytesFreed += outcome.bytes ?? 0;
        this.listItem(item, 'deleted');
      } else if (outcome.status === 'missing') {
        this.missing += 1;
        this.listItem(item, 'missing');
      } else if (outcome.status === 'held') {
        // Held by the storage itself (S3 Object Lock): never a failure, never retried as one.
        this.held += 1;
        const cause = outcome.error ?? 'held by the storage';
        this.notDeleted('held', cause);
        this.listItem(item, 'held', cause);
      } else if (outcome.status === 'kept') {
        this.kept += 1;
        const cause = outcome.error ?? 'no longer eligible when deleted (modified since the scan)';
        this.notDeleted('kept', cause);
        this.listItem(item, 'kept', cause);
      } else {
        this.failed += 1;
        this.failedOldestOverdueSeconds = Math.max(this.failedOldestOverdueSeconds, overdueSeconds(item));
        const cause = outcome.error ?? 'unknown error';
        this.notDeleted('failed', cause);
        this.listItem(item, 'failed', cause);
      }
    }
  }

  startCompression(dryRun: boolean): CompressionSummary {
    this.compression = { count: 0, bytesBefore: 0, bytesAfter: 0, kept: 0, failed: 0 };
    if (dryRun) Object.assign(this.compression, { wouldCompress: 0, bytesToCompress: 0 });
    return this.compression;
  }

  /**
   * One file of the compress pass: `outcome` undefined in a dry run (it would be compressed).
   * Compressions are not deletions: kept and failed ones stay out of `kept`, `failed` and
   * `notDeleted`, which are about what is past retention; they are listed with a `compress:` cause.
   */
  countCompression(item: EligibleItem, outcome: CompressOutcome | undefined): void {
    const summary = this.compression!;
    if (!outcome) {
      summary.wouldCompress = (summary.wouldCompress ?? 0) + 1;
      summary.bytesToCompress = (summary.bytesToCompress ?? 0) + (item.size ?? 0);
      this.listItem(item, 'would_compress');
    } else if (outcome.status === 'compressed') {
      summary.count += 1;
      summary.bytesBefore += outcome.bytesBefore ?? 0;
      summary.bytesAfter += outcome.bytesAfter ?? 0;
      this.listItem(item, 'compressed');
    } else if (outcome.status === 'kept' || outcome.status === 'failed') {
      summary[outcome.status] += 1;
      this.listItem(item, outcome.status, `compress: ${outcome.error ?? 'unknown'}`);
    }
  }

  notDeletedSummary(): NotDeleted[] {
    return [...this.causes.values()].sort((a, b) => b.count - a.count);
  }

  private notDeleted(outcome: NotDeleted['outcome'], cause: string, count = 1): void {
    const known = this.causes.get(`${outcome}\0${cause}`);
    if (known) {
      known.count += count;
      return;
    }
    const distinct = [...this.causes.values()].filter((entry) => entry.outcome === outcome).length;
    // Past MAX_CAUSES distinct causes of one outcome (per-item errors), the rest share a line.
    const key = distinct < MAX_CAUSES ? cause : 'other causes (see retention audit --run <id>, or --list)';
    const entry = this.causes.get(`${outcome}\0${key}`) ?? { outcome, cause: key, count: 0 };
    entry.count += count;
    this.causes.set(`${outcome}\0${key}`, entry);
  }
}

export function describeHold(hold: Hold): string {
  return `hold #${hold.id}${hold.prefix ? ` on prefix "${hold.key}"` : ''}${hold.reason ? ` (${hold.reason})` : ''}`;
}

export interface ReportInput {
  runId: string;
  policy: PolicyConfig;
  dataClass: DataClass;
  store: string;
  trigger: Trigger;
  dryRun: boolean;
  status: RunStatus;
  tally: Tally;
  startedAt: Date;
  finishedAt: Date;
  budgetSeconds: number;
  budgetUsedPercent: number;
  backlog: number | null;
  oldestOverdueSeconds: number | null;
  cutoffs: RunReport['cutoffs'];
  limits?: RunReport['limits'];
  stopReason?: StopReason;
  maintenance?: RunReport['maintenance'];
  emergency?: RunReport['emergency'];
  error?: RunReport['error'];
}

export function buildReport(input: ReportInput): RunReport {
  const { tally, policy } = input;
  const durationSeconds = round3((input.finishedAt.getTime() - input.startedAt.getTime()) / 1000);
  const sla = classifySla(
    {
      status: input.status,
      durationSeconds,
      oldestOverdueSeconds: input.oldestOverdueSeconds,
      deleted: tally.deleted,
      failed: tally.failed,
    },
    {
      maxDurationSeconds: durationMs(policy.sla.maxDuration ?? policy.budget) / 1000,
      maxOverdueSeconds: durationMs(policy.sla.maxOverdue) / 1000,
      maxFailureRate: policy.sla.maxFailureRate,
      warnAt: policy.sla.warnAt,
    },
  );
  return {
    runId: input.runId,
    policy: policy.name,
    dataClass: input.dataClass,
    store: input.store,
    trigger: input.trigger,
    dryRun: input.dryRun,
    status: input.status,
    scanned: tally.scanned,
    eligible: tally.eligible,
    deleted: tally.deleted,
    missing: tally.missing,
    failed: tally.failed,
    held: tally.held,
    kept: tally.kept,
    notDeleted: tally.notDeletedSummary(),
    unclassified: tally.unclassified,
    bytesFreed: tally.bytesFreed,
    ...(input.dryRun ? { bytesToFree: tally.bytesToFree } : {}),
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    durationSeconds,
    backlog: input.backlog,
    oldestOverdueSeconds: input.oldestOverdueSeconds === null ? null : round3(input.oldestOverdueSeconds),
    budgetSeconds: round3(input.budgetSeconds),
    budgetUsedPercent: input.budgetUsedPercent,
    sla,
    ...(input.limits ? { limits: input.limits } : {}),
    ...(input.stopReason ? { stopReason: input.stopReason } : {}),
    ...(input.maintenance ? { maintenance: input.maintenance } : {}),
    ...(tally.compression ? { compressed: tally.compression } : {}),
    ...(input.emergency ? { emergency: input.emergency } : {}),
    ...(input.error ? { error: input.error } : {}),
    cutoffs: input.cutoffs,
    ...(tally.items ? { items: tally.items } : {}),
  };
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
