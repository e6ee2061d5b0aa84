import { runPolicy, type Progress, type RunOptions } from '../engine/run.ts';
import type { RunReport, Trigger } from '../engine/types.ts';
import { ConfigError } from '../errors.ts';
import { createStore } from '../stores/index.ts';
import type { Store } from '../stores/types.ts';
import { selectPolicies, type CliIO, type Session } from './context.ts';
import { parseDurationFlag, parseInstant, parsePositiveInt } from './flags.ts';
import { bytes, seconds, table } from './format.ts';

export interface RunFlags {
  policy?: string[];
  all?: boolean;
  dryRun?: boolean;
  limit?: string;
  before?: string;
  budget?: string;
  force?: boolean;
  json?: boolean;
  list?: boolean;
  strict?: boolean;
}

/** Validated before any server starts: bad flags are exit 2 with nothing touched. */
export function parseRunFlags(flags: RunFlags, trigger: Trigger): Omit<RunOptions, 'deadline'> {
  const limit = parsePositiveInt('--limit', flags.limit);
  const before = parseInstant('--before', flags.before);
  const budgetMs = parseDurationFlag('--budget', flags.budget);
  return {
    trigger,
    dryRun: flags.dryRun ?? false,
    force: flags.force ?? false,
    list: flags.list ?? false,
    ...(limit !== undefined ? { limit } : {}),
    ...(before !== undefined ? { before } : {}),
    ...(budgetMs !== undefined ? { budgetMs } : {}),
  };
}

/**
 * Runs the selected policies one after another; returns the reports. Every store is opened (and
 * so checked: missing directory, table, column, bucket) before the first policy runs, so a bad
 * second policy stops the command before the first one has deleted anything.
 */
export async function runPolicies(session: Session, flags: RunFlags, options: Omit<RunOptions, 'deadline'>): Promise<RunReport[]> {
  const policies = selectPolicies(session.config, flags.policy, flags.all);
  const stores: Store[] = [];
  try {
    for (const policy of policies) {
      const store = await createStore(policy);
      stores.push(store);
      await store.open().catch((error: unknown) => {
        throw error instanceof ConfigError ? error.within(`policies[${session.config.policies.indexOf(policy)}]`) : error;
      });
    }
    const reports: RunReport[] = [];
    for (const [index, policy] of policies.entries()) {
      const progress = flags.json ? undefined : progressLine(session.io, policy.name);
      try {
        reports.push(
          await runPolicy(policy, options, {
            control: session.control,
            store: stores[index]!,
            clock: session.clock,
            log: session.log,
            actor: session.actor,
            ...(progress ? { onProgress: progress.update } : {}),
          }),
        );
      } finally {
        progress?.done();
      }
    }
    return reports;
  } finally {
    for (const store of stores) await store.close?.();
  }
}

/** 0 done (also partial), 1 failed, or any SLA breach with --strict. */
export function exitCodeFor(reports: RunReport[], strict: boolean): number {
  if (reports.some((report) => report.status === 'failed')) return 1;
  if (strict && reports.some((report) => report.sla.status === 'breach')) return 1;
  return 0;
}

export function printReports(io: CliIO, reports: RunReport[], flags: RunFlags): void {
  if (flags.json) {
    io.stdout.write(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
    return;
  }
  const rows = reports.map((report) => [
    report.policy,
    report.dryRun ? `${report.status} (dry run)` : report.status,
    report.scanned,
    report.eligible,
    report.dryRun ? `(${report.eligible - report.held})` : report.deleted,
    report.held,
    report.failed,
    bytes(report.bytesFreed),
    seconds(report.durationSeconds),
    report.sla.status,
  ]);
  io.stdout.write(`${table(['policy', 'status', 'scanned', 'eligible', 'deleted', 'held', 'failed', 'freed', 'duration', 'sla'], rows)}\n`);
  for (const report of reports) {
    for (const reason of report.sla.reasons) io.stdout.write(`  ${report.policy}: ${reason}\n`);
    if (report.error) io.stdout.write(`  ${report.policy}: ${report.error.message}\n`);
    if (report.items && report.items.length > 0) {
      io.stdout.write(`\n${report.policy} (run ${report.runId}):\n`);
      io.stdout.write(`${table(['key', 'timestamp', 'outcome', 'rule'], report.items.map((item) => [item.key, item.timestamp, item.outcome, item.rule ?? '']))}\n`);
    }
  }
}

/** On a terminal, one self-overwriting line: items/s, deleted, elapsed. */
function progressLine(io: CliIO, policy: string): { update: (progress: Progress) => void; done: () => void } | undefined {
  if (!io.stderr.isTTY) return undefined;
  let shown = false;
  return {
    update: ({ scanned, deleted, elapsedMs }) => {
      const rate = elapsedMs > 0 ? Math.round((scanned / elapsedMs) * 1000) : scanned;
      io.stderr.write(`\r${policy}: scanned ${scanned} (${rate}/s), deleted ${deleted}, ${seconds(elapsedMs / 1000)}   `);
      shown = true;
    },
    done: () => {
      if (shown) io.stderr.write('\n');
    },
  };
}
