import type { RetentionConfig } from '../config/schema.ts';
import type { RunRecord } from '../core/control.ts';
import { recordGovernance } from '../core/governance.ts';
import { type RestoreSummary, restoreRun } from '../engine/restore.ts';
import { ConfigError, clip, describeCause } from '../errors.ts';
import { createStore } from '../stores/registry.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { instantOf, parseTimeFlag, type TimeFlag } from './flags.ts';
import { table, when } from './format.ts';
import { NO_REASON } from './pause.ts';

export interface RestoreFlags {
  run?: string;
  since?: string;
  policy?: string[];
  key?: string[];
  reason?: string;
  json?: boolean;
}

/** One run (`--run`, optionally some of its keys), or every live run of a policy since a time (`--since`). */
export type RestoreRequest = { reason: string; json: boolean } & (
  | { runId: string; keys?: string[] }
  | { policy: string; since: TimeFlag }
);

/** Runs `--since` restores at most: a window holding more is a mistake (or needs a later `--since`). */
const MAX_RUNS = 1_000;

/** Checked before the control store opens. */
export function parseRestoreFlags(config: RetentionConfig, flags: RestoreFlags): RestoreRequest {
  const common = { reason: flags.reason ?? NO_REASON, json: flags.json ?? false };
  if ((flags.run === undefined) === (flags.since === undefined))
    throw ConfigError.single(
      '--run',
      flags.run === undefined ? 'missing (or --since)' : 'both --run and --since given',
      'pass --run <id from retention history>, or --policy <name> --since 2024-01-31T12:00:00Z',
    );
  if (flags.run !== undefined) {
    if (flags.run === '')
      throw ConfigError.single('--run', 'must not be empty', 'pass the run id, e.g. from: retention history');
    if (flags.policy?.length)
      throw ConfigError.single('--policy', 'a run names its policy', 'pass --run <id> alone, or --policy with --since');
    return { ...common, runId: flags.run, ...(flags.key?.length ? { keys: flags.key } : {}) };
  }
  if (flags.key?.length)
    throw ConfigError.single('--key', 'only with --run', 'restore single items with --run <id> --key <key>');
  if ((flags.policy?.length ?? 0) > 1)
    throw ConfigError.single('--policy', 'one policy at a time', 'run the command once per policy');
  const [policy] = selectPolicies(config, flags.policy, false);
  return { ...common, policy: policy!.name, since: parseTimeFlag('--since', flags.since)! };
}

/**
 * A restore is whole or says what is missing (invariant 11): every item that could not come
 * back (no backup, failed, or a row whose linked file could not come back) is listed with its
 * reason, and the command exits 1. Items already present again count as back. Each run restored
 * is a governance record (`restored`, or `failed` when something could not come back).
 */
export async function restoreCommand(session: Session, request: RestoreRequest): Promise<number> {
  if ('runId' in request) {
    const summary = await restoreAudited(session, request.runId, request.reason, request.keys);
    if (request.json) session.io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else printSummaries(session, [summary]);
    return reportNotBack(session, `restore --run ${request.runId}`, [summary], false);
  }
  const since = instantOf(request.since, session.clock.now());
  const runs = await runsSince(session, request.policy, since);
  const summaries: RestoreSummary[] = [];
  // Newest first: the reverse of the order the deletions happened in.
  for (const run of runs) {
    try {
      summaries.push(await restoreAudited(session, run.runId, request.reason));
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      // This run's restore broke off (its store went away): say so, and go on with the others.
      const failed = {
        key: '*',
        status: 'failed' as const,
        error: `restore of the run failed: ${describeCause(error)}`,
      };
      summaries.push({ runId: run.runId, policy: run.policy, outcomes: [failed] });
    }
  }
  if (request.json) {
    session.io.stdout.write(
      `${JSON.stringify({ policy: request.policy, since: since.toISOString(), runs: summaries }, null, 2)}\n`,
    );
  } else {
    session.io.stdout.write(`${runs.length} live run(s) of ${request.policy} since ${when(since)}, newest first\n`);
    printSummaries(session, summaries);
  }
  return reportNotBack(session, `restore --policy ${request.policy} --since ${when(since)}`, summaries, true);
}

/** Live runs of the policy started at or after `since`, newest first, that may have deleted something. */
async function runsSince(session: Session, policy: string, since: Date): Promise<RunRecord[]> {
  const listed = await session.control.listRuns({ policy, limit: MAX_RUNS + 1 });
  const inWindow = listed.filter((run) => run.startedAt.getTime() >= since.getTime());
  if (inWindow.length > MAX_RUNS)
    throw ConfigError.single(
      '--since',
      `more than ${MAX_RUNS} runs of ${policy} started since ${when(since)}`,
      'pass a later --since, or restore runs one by one with --run <id>',
    );
  const noDeletion = new Set(['skipped_locked', 'skipped_paused', 'aborted_limit']);
  const live = inWindow.filter((run) => !run.dryRun && !noDeletion.has(run.status) && run.report?.deleted !== 0);
  const running = live.filter((run) => run.status === 'running');
  if (running.length > 0)
    session.io.stderr.write(
      `warning: run(s) ${running.map((run) => run.runId).join(', ')} of ${policy} have no result yet (running, or crashed): what they delete after this restore reads their audit is not restored; pause the policy first (retention pause --policy ${policy})\n`,
    );
  return live;
}

/** Restores one run and records it, whatever came back; a restore that breaks off is recorded too. */
async function restoreAudited(
  session: Session,
  runId: string,
  reason: string,
  keys?: string[],
): Promise<RestoreSummary> {
  const record = (policy: string, status: 'restored' | 'failed', detail: string) =>
    recordGovernance(session.control, {
      action: 'restored',
      actor: session.actor,
      reason,
      scope: policy,
      subject: runId,
      detail,
      at: session.clock.now(),
      runId,
      status,
    });
  let summary: RestoreSummary;
  try {
    summary = await restoreRun(
      { runId, ...(keys ? { keys } : {}) },
      {
        control: session.control,
        policies: session.config.policies,
        storeFor: (policy) => createStore(policy),
        actor: session.actor,
        log: session.log,
      },
    );
  } catch (error) {
    // Bad input (no such run, no backup) changed nothing; anything else may have restored part of the run.
    if (error instanceof ConfigError) throw error;
    const policy = (await session.control.getRun(runId).catch(() => null))?.policy ?? '*';
    await record(policy, 'failed', `restore of run ${runId} failed: ${describeCause(error)}`);
    throw error;
  }
  const notBack = notRestored(summary);
  const back = summary.outcomes.length - notBack.length;
  const missing = notBack.length > 0 ? `; ${notBack.length} could not: ${listed(notBack)}` : '';
  await record(
    summary.policy,
    notBack.length > 0 ? 'failed' : 'restored',
    `${back} of ${summary.outcomes.length} item(s) deleted by run ${runId} back${missing}`,
  );
  return summary;
}

function notRestored(summary: RestoreSummary): RestoreSummary['outcomes'] {
  return summary.outcomes.filter((outcome) => outcome.status === 'failed' || outcome.status === 'no_backup');
}

function listed(outcomes: RestoreSummary['outcomes']): string {
  const shown = outcomes.slice(0, 10).map((outcome) => `${clip(outcome.key)} (${outcome.error ?? outcome.status})`);
  const more = outcomes.length > shown.length ? `, and ${outcomes.length - shown.length} more` : '';
  return `${shown.join('; ')}${more}`;
}

function printSummaries(session: Session, summaries: RestoreSummary[]): void {
  const several = summaries.length > 1;
  const rows = summaries.flatMap((summary) =>
    summary.outcomes.map((outcome) => [
      ...(several ? [summary.runId] : []),
      outcome.key,
      outcome.status,
      outcome.error ?? '',
    ]),
  );
  if (rows.length > 0)
    session.io.stdout.write(`${table([...(several ? ['run'] : []), 'key', 'outcome', 'error'], rows)}\n`);
  for (const summary of summaries) {
    const count = (status: string) => summary.outcomes.filter((outcome) => outcome.status === status).length;
    const present = count('exists') > 0 ? `, ${count('exists')} already present` : '';
    session.io.stdout.write(
      `restored ${count('restored')} of ${summary.outcomes.length} item(s) deleted by run ${summary.runId} (policy ${summary.policy})${present}\n`,
    );
  }
}

/** Exit 1 naming what could not come back, run by run; 0 when everything is back. */
function reportNotBack(session: Session, command: string, summaries: RestoreSummary[], perRun: boolean): number {
  const failing = summaries.filter((summary) => notRestored(summary).length > 0);
  for (const summary of failing) {
    const notBack = notRestored(summary);
    const run = perRun ? ` run ${summary.runId}:` : '';
    session.io.stderr.write(
      `error: ${command}:${run} ${notBack.length} item(s) could not be restored: ${listed(notBack)}\n`,
    );
  }
  return failing.length > 0 ? 1 : 0;
}
