import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import type { Store } from '../core/store.ts';
import type { CompressionSummary, RunReport, Trigger } from '../core/types.ts';
import type { Progress, RunOptions } from '../engine/options.ts';
import { runPolicy } from '../engine/run.ts';
import { ConfigError } from '../errors.ts';
import { createStore } from '../stores/registry.ts';
import { type CliIO, type Session, selectPolicies } from './context.ts';
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
  /** Apply each policy's `emergency` rules in full, whatever the disk says. */
  emergency?: boolean;
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
    ...(flags.emergency ? { emergency: { reason: 'operator' as const } } : {}),
  };
}

/** `--policy` names or, with `--all`, every enabled policy: checked before anything is opened. */
export function selectRunPolicies(config: RetentionConfig, flags: RunFlags): PolicyConfig[] {
  const enabled = { ...config, policies: config.policies.filter((policy) => policy.enabled) };
  const selected = selectPolicies(flags.all ? enabled : config, flags.policy, flags.all);
  if (!flags.emergency) return selected;
  // --all --emergency: the enabled policies that have emergency rules; a named one must have them.
  const withRules = flags.all ? selected.filter((policy) => policy.emergency) : selected;
  const without = selected.find((policy) => !policy.emergency);
  if (withRules.length === 0 || (!flags.all && without)) {
    const index = config.policies.indexOf(without ?? selected[0]!);
    throw ConfigError.single(
      `policies[${index}].emergency`,
      `${config.policies[index]!.name} has no emergency rules, so --emergency has nothing to apply`,
      'add emergency: { keepNewest: <n> } or { retention: "<duration>" } to the policy, or run without --emergency',
    );
  }
  return withRules;
}

/**
 * Runs `policies` one after another; returns the reports. Every store is opened (and so
 * checked: missing directory, table, column, bucket) before the first policy runs, so a bad
 * second policy stops the command before the first one has deleted anything.
 */
export async function runPolicies(
  session: Session,
  policies: PolicyConfig[],
  flags: RunFlags,
  options: Omit<RunOptions, 'deadline'>,
): Promise<RunReport[]> {
  const stores: Store[] = [];
  try {
    for (const policy of policies) {
      const store = await createStore(policy);
      stores.push(store);
      await store.open().catch((error: unknown) => {
        throw error instanceof ConfigError
          ? error.within(`policies[${session.config.policies.indexOf(policy)}]`)
          : error;
      });
    }
    const reports: RunReport[] = [];
    for (const [index, policy] of policies.entries()) {
      // A signal stops the run in flight after its batch; the policies after it do not start.
      if (options.signal?.aborted) break;
      const progress = flags.json ? undefined : progressLine(session.io, policy.name);
      try {
        reports.push(
          await runPolicy(policy, options, {
            control: session.control,
            store: stores[index]!,
            clock: session.clock,
            log: session.log,
            actor: session.actor,
            ...(session.leaseTtlMs ? { leaseTtlMs: session.leaseTtlMs } : {}),
            ...(progress ? { onProgress: progress.update } : {}),
          }),
        );
      } finally {
        progress?.done();
      }
    }
    return reports;
  } finally {
    for (const store of stores) await store.close();
  }
}

/**
 * What a cron wrapper can act on (README "Exit codes"): the most serious outcome of the reports.
 * 0 completed, or partial because the budget ran out (the next run goes on); 1 failed (or an SLA
 * breach with --strict); 2 bad input (thrown before any run); 3 stopped by the safety limits;
 * 4 stopped by a pause, a lost or broken lease, or a signal.
 */
export const EXIT = { ok: 0, failed: 1, badInput: 2, limits: 3, stopped: 4 } as const;

export function exitCodeFor(reports: RunReport[], strict: boolean): number {
  if (reports.some((report) => report.status === 'failed')) return EXIT.failed;
  if (
    reports.some(
      (report) =>
        report.stopReason === 'signal' || report.stopReason === 'paused' || report.stopReason === 'lease_lost',
    )
  )
    return EXIT.stopped;
  if (reports.some((report) => report.status === 'aborted_limit' || report.stopReason === 'limit')) return EXIT.limits;
  if (strict && reports.some((report) => report.sla.status === 'breach')) return EXIT.failed;
  return EXIT.ok;
}

export function printReports(io: CliIO, reports: RunReport[], flags: RunFlags): void {
  if (flags.json) {
    io.stdout.write(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
    return;
  }
  const rows = reports.map((report) => [
    report.policy,
    `${report.status}${report.stopReason && report.stopReason !== 'budget' ? ` (${report.stopReason.replace('_', ' ')})` : ''}${report.dryRun ? ' (dry run)' : ''}`,
    report.scanned,
    report.eligible,
    report.dryRun ? `(${report.eligible - report.held})` : report.deleted,
    report.held,
    report.kept,
    report.failed,
    report.dryRun ? `(${bytes(report.bytesToFree ?? 0)})` : bytes(report.bytesFreed),
    seconds(report.durationSeconds),
    report.sla.status,
  ]);
  io.stdout.write(
    `${table(['policy', 'status', 'scanned', 'eligible', 'deleted', 'held', 'kept', 'failed', 'freed', 'duration', 'sla'], rows)}\n`,
  );
  for (const report of reports) {
    if (report.emergency) io.stdout.write(`  ${report.policy}: ${describeEmergency(report.emergency)}\n`);
    for (const reason of report.sla.reasons) io.stdout.write(`  ${report.policy}: ${reason}\n`);
    if (report.error) io.stdout.write(`  ${report.policy}: ${report.error.message}\n`);
    if (report.attention && report.attention.open > 0) {
      const { open, after } = report.attention;
      io.stdout.write(
        `  ${report.policy}: ${open} item${open === 1 ? '' : 's'} failed in ${after} or more consecutive runs` +
          ` (retention attention list --policy ${report.policy})\n`,
      );
    }
    for (const entry of report.notDeleted)
      io.stdout.write(`  ${report.policy}: ${entry.count} ${entry.outcome}: ${entry.cause}\n`);
    if (report.compressed) io.stdout.write(`  ${report.policy}: ${describeCompression(report.compressed)}\n`);
    const upkeep = report.maintenance;
    if (upkeep)
      io.stdout.write(
        `  ${report.policy}: ${upkeep.action} of ${upkeep.target} ${upkeep.status.replace('_', ' ')}` +
          `${upkeep.reason ? ` (${upkeep.reason})` : ''}: dead tuples ${upkeep.deadTuplesBefore ?? '?'} → ` +
          `${upkeep.deadTuplesAfter ?? '?'} in ${seconds(upkeep.durationSeconds)}\n`,
      );
    if (report.items && report.items.length > 0) {
      io.stdout.write(`\n${report.policy} (run ${report.runId}):\n`);
      io.stdout.write(
        `${table(
          ['key', 'timestamp', 'outcome', 'rule', 'why'],
          report.items.map((item) => [item.key, item.timestamp, item.outcome, item.rule ?? '', item.error ?? '']),
        )}\n`,
      );
    }
  }
}

/** `compressed 12 files, 4.1 MB → 0.4 MB (saved 3.7 MB)`; a dry run: what it would compress. */
function describeCompression(summary: CompressionSummary): string {
  if (summary.wouldCompress !== undefined)
    return `would compress ${summary.wouldCompress} files (${bytes(summary.bytesToCompress ?? 0)})`;
  const { count, bytesBefore, bytesAfter, kept, failed, unfinished } = summary;
  const extra = [
    kept ? `${kept} kept` : '',
    failed ? `${failed} failed` : '',
    unfinished ? `unfinished: ${unfinished}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return (
    `compressed ${count} files, ${bytes(bytesBefore)} → ${bytes(bytesAfter)} (saved ${bytes(bytesBefore - bytesAfter)})` +
    (extra ? `; ${extra}` : '')
  );
}

function describeEmergency({ reason, usedPercent }: NonNullable<RunReport['emergency']>): string {
  const why =
    reason === 'operator' ? 'asked by an operator (--emergency)' : 'its file system crossed the critical line';
  return `emergency run: ${why}${usedPercent !== undefined ? ` (${usedPercent}% used)` : ''}`;
}

/** On a terminal, one self-overwriting line: items/s, deleted, elapsed. */
function progressLine(
  io: CliIO,
  policy: string,
): { update: (progress: Progress) => void; done: () => void } | undefined {
  if (!io.stderr.isTTY) return undefined;
  let shown = false;
  return {
    update: ({ scanned, deleted, elapsedMs }) => {
      const rate = elapsedMs > 0 ? Math.round((scanned / elapsedMs) * 1000) : scanned;
      io.stderr.write(
        `\r${policy}: scanned ${scanned} (${rate}/s), deleted ${deleted}, ${seconds(elapsedMs / 1000)}   `,
      );
      shown = true;
    },
    done: () => {
      if (shown) io.stderr.write('\n');
    },
  };
}
