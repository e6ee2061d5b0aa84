import { durationMs } from '../config/durations.ts';
import type { PolicyConfig } from '../config/schema.ts';
import type { DeleteOutcome } from '../stores/types.ts';
import { overdueSeconds } from './classify.ts';
import { classifySla } from './sla.ts';
import type { DataClass, EligibleItem, ListedItem, RunReport, RunStatus, Trigger } from './types.ts';

/** Running counts of one run; turned into the RunReport of DESIGN.md at the end. */
export class Tally {
  scanned = 0;
  eligible = 0;
  deleted = 0;
  failed = 0;
  held = 0;
  kept = 0;
  unclassified = 0;
  bytesFreed = 0;
  /** Largest overdue time among items that failed to delete (what a full pass leaves behind). */
  failedOldestOverdueSeconds = 0;
  readonly items: ListedItem[] | undefined;

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

  /** `missing` counts as deleted: the item is gone, which is what was asked (invariant 7). */
  countOutcomes(batch: EligibleItem[], outcomes: DeleteOutcome[]): void {
    const byKey = new Map(batch.map((item) => [item.key, item]));
    for (const outcome of outcomes) {
      const item = byKey.get(outcome.key);
      if (!item) continue;
      if (outcome.status === 'deleted' || outcome.status === 'missing') {
        this.deleted += 1;
        this.bytesFreed += outcome.bytes ?? 0;
        this.listItem(item, 'deleted');
      } else if (outcome.status === 'kept') {
        this.kept += 1;
        this.listItem(item, 'kept');
      } else {
        this.failed += 1;
        this.failedOldestOverdueSeconds = Math.max(this.failedOldestOverdueSeconds, overdueSeconds(item));
        this.listItem(item, 'failed', outcome.error);
      }
    }
  }
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
    failed: tally.failed,
    held: tally.held,
    unclassified: tally.unclassified,
    bytesFreed: tally.bytesFreed,
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    durationSeconds,
    backlog: input.backlog,
    oldestOverdueSeconds: input.oldestOverdueSeconds === null ? null : round3(input.oldestOverdueSeconds),
    budgetSeconds: round3(input.budgetSeconds),
    budgetUsedPercent: input.budgetUsedPercent,
    sla,
    ...(input.limits ? { limits: input.limits } : {}),
    ...(input.error ? { error: input.error } : {}),
    cutoffs: input.cutoffs,
    ...(tally.items ? { items: tally.items } : {}),
  };
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
