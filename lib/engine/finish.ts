import type { RunReport, RunStatus, StopReason } from '../core/types.ts';
import { describeCause, type LeaseLostError, RetentionError } from '../errors.ts';
import { emfDocument } from '../observe/metrics.ts';
import { describeCutoffs, latestCutoff } from '../policy/plan.ts';
import { saveStreaks } from './attention.ts';
import { buildReport, describeHold } from './report.ts';
import { type ActiveRun, emergencyReason } from './start.ts';

/**
 * How a run ends, whatever ended it: the report, the `hold` audit records, the history record,
 * the `run_completed` log line and the EMF metrics.
 */
export async function finishRun(
  run: ActiveRun,
  status: RunStatus,
  error?: Error,
  stopReason?: StopReason,
): Promise<RunReport> {
  const { policy, options, deps, context, tally, budget, log } = run;
  // An emergency's cutoffs are not the policy's: what it left is no measure of the policy's backlog.
  const census = options.emergency ? undefined : run.census;
  const built = buildReport({
    runId: context.runId,
    policy,
    dataClass: policy.class,
    store: deps.store.location,
    trigger: options.trigger,
    dryRun: options.dryRun,
    status,
    tally,
    startedAt: run.startedAt,
    finishedAt: deps.clock.now(),
    budgetSeconds: budget.totalMs / 1000,
    budgetUsedPercent: budget.usedPercent(),
    backlog: census?.eligible ?? null,
    oldestOverdueSeconds: census?.oldestOverdueSeconds ?? null,
    cutoffs: describeCutoffs(run.cutoffs),
    ...(run.limits ? { limits: run.limits } : {}),
    ...(stopReason ? { stopReason } : {}),
    ...(run.maintenance ? { maintenance: run.maintenance } : {}),
    ...(options.emergency ? { emergency: emergencyReason(options.emergency) } : {}),
    // describeCause: the cause chain, redacted, so history never stores a credential an error quoted.
    ...(error
      ? {
          error: {
            code: error instanceof RetentionError ? error.code : 'unexpected',
            message: error instanceof RetentionError ? error.message : describeCause(error),
          },
        }
      : {}),
  });
  // The configuration the run applied: "which rule deleted this" still has an answer once it changed.
  let report: RunReport = { ...built, policyHash: run.policyHash };
  try {
    const attention = run.streaks ? await saveStreaks(run, run.streaks) : undefined;
    if (attention) report = { ...report, attention };
    if (!options.dryRun) {
      await recordHolds(run);
      report = { ...report, auditChain: await auditChainHeads(run) };
    }
    await deps.control.finishRun(report);
  } catch (failure) {
    // The control store failed (often what ended the run): the report still reaches the caller
    // and the log; the next live run closes this one's history as `crashed`.
    log.error('history_write_failed', { error: describeCause(failure) });
  }
  log.info('run_completed', {
    status: report.status,
    ...(report.stopReason ? { stop_reason: report.stopReason } : {}),
    ...(report.emergency ? { emergency: report.emergency } : {}),
    sla_status: report.sla.status,
    sla_reasons: report.sla.reasons,
    scanned: report.scanned,
    eligible: report.eligible,
    deleted: report.deleted,
    failed: report.failed,
    held: report.held,
    bytes_freed: report.bytesFreed,
    ...(report.compressed ? { compressed: report.compressed } : {}),
    backlog: report.backlog,
    oldest_overdue_seconds: report.oldestOverdueSeconds,
    duration_seconds: report.durationSeconds,
    ...(report.attention ? { attention_open: report.attention.open } : {}),
    dry_run: report.dryRun,
    // The heads outside the database too: a log line per run anchors the chains (invariant 13).
    ...(report.auditChain ? { audit_chain: report.auditChain } : {}),
  });
  if (!report.dryRun) log.raw(emfDocument(report));
  return report;
}

/**
 * Where the policy's audit chains stand once the run has written its last record, kept in its
 * history for `retention audit verify` (invariant 13). A head that cannot be read is left out:
 * the report matters more.
 */
async function auditChainHeads(run: ActiveRun): Promise<NonNullable<RunReport['auditChain']>> {
  const { control, store } = run.deps;
  const [controlHead, storeHead] = await Promise.all([
    control.chains.head(run.policy.name).catch(() => undefined),
    store.audit?.chain?.head().catch(() => undefined),
  ]);
  return { ...(controlHead ? { control: controlHead } : {}), ...(storeHead ? { store: storeHead } : {}) };
}

/**
 * Held items are part of the record (invariant 12): one audit record per hold that kept any (a
 * store that counts held rows in SQL cannot say which hold: one record naming them all).
 */
async function recordHolds(run: ActiveRun): Promise<void> {
  const { tally, policy, context } = run;
  if (tally.heldByHold.size === 0 && !tally.heldInStore) return;
  const latest = latestCutoff(run.cutoffs);
  const record = (key: string, itemTimestamp: Date, rule: string, error: string) => ({
    runId: context.runId,
    policy: policy.name,
    store: run.deps.store.location,
    key,
    itemTimestamp,
    rule,
    cutoff: latest,
    actor: context.actor,
    trigger: context.trigger,
    action: 'hold' as const,
    status: 'held' as const,
    error,
  });
  const plural = (count: number) => `${count} eligible item${count === 1 ? '' : 's'}`;
  await run.deps.control.recordEvents([
    ...[...tally.heldByHold.values()].map(({ hold, count }) =>
      record(hold.key, hold.createdAt, describeHold(hold), `${plural(count)} kept by hold #${hold.id}`),
    ),
    ...(tally.heldInStore
      ? [
          record(
            '*',
            run.startedAt,
            'holds',
            `${plural(tally.heldInStore.count)} kept by holds ${tally.heldInStore.holds.map((hold) => `#${hold.id}`).join(', ')}`,
          ),
        ]
      : []),
  ]);
}

/**
 * The run lost its right to delete (invariant 8): a pause (control stores refuse a paused
 * policy's fenced writes), a lease break, a takeover or a stall past the lease. What it did is
 * recorded; the run ends `partial` with the reason, and the checkpoint stays for the next run.
 */
export async function stopRun(run: ActiveRun, error: LeaseLostError): Promise<RunReport> {
  const { policy, log, tally } = run;
  const pause = await run.deps.control.pausedBy(policy.name).catch(() => null);
  const reason: StopReason = pause ? 'paused' : 'lease_lost';
  const message = pause
    ? `stopped: policy paused by ${pause.by} (${pause.reason}); resume with: retention resume ${pause.scope === '*' ? '--all' : pause.scope}`
    : `stopped: ${error.message}`;
  log.warn(pause ? 'run_paused' : 'lease_lost', {
    error: error.message,
    ...(pause ? { paused_by: pause.by, pause_reason: pause.reason, scope: pause.scope } : {}),
    deleted: tally.deleted,
  });
  if (run.census) run.census = { ...run.census, eligible: run.census.eligible - tally.deleted, exact: false };
  return finishRun(run, 'partial', new RetentionError(message, { policy: policy.name }), reason);
}

/** Anything unexpected after the run started: logged with its cause, and the run ends `failed`. */
export async function failRun(run: ActiveRun, error: unknown): Promise<RunReport> {
  const failure = error instanceof Error ? error : new Error(describeCause(error));
  run.log.error('error', {
    error: failure.message,
    code: failure instanceof RetentionError ? failure.code : 'unexpected',
    ...(failure instanceof RetentionError ? { context: failure.context } : {}),
    ...(failure.cause ? { cause: describeCause(failure.cause) } : {}),
  });
  return finishRun(run, 'failed', failure);
}
