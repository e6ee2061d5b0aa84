import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import { isOpen } from '../core/attention.ts';
import type { AuditQuery, AuditRecord, ControlStore, RunRecord } from '../core/control.ts';
import type { Clock } from '../core/types.ts';
import type { HoldChecking } from '../engine/holdCheck.ts';
import { ConfigError, clip } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { readAuditTrail } from '../reports/auditTrail.ts';
import { assessPolicy, DEFAULT_MISSED_AFTER_MS, DEFAULT_RUNS_PER_POLICY } from '../reports/health.ts';
import { createStore } from '../stores/registry.ts';
import { ApiError } from './http.ts';
import type { Launcher } from './launcher.ts';
import type { PolicyState } from './views.ts';

/** What the routes work with: the same config and control store the CLI commands use. */
export interface ApiContext {
  config: RetentionConfig;
  control: ControlStore;
  clock: Clock;
  log: Logger;
  launcher: Launcher;
  /** Aborted when the server closes: streams following runs of other processes end. */
  closing: AbortSignal;
  /** False where responses are buffered whole (Lambda): run events are snapshots, see readRoutes.ts. */
  streaming: boolean;
  holdChecking: HoldChecking;
}

/** A policy named in the path: unknown is 404. */
export function pathPolicy(ctx: ApiContext, name: string): PolicyConfig {
  const policy = ctx.config.policies.find((candidate) => candidate.name === name);
  if (!policy) throw ApiError.notFound(`no policy named ${JSON.stringify(clip(name))} (known: ${known(ctx)})`);
  return policy;
}

/** A policy named in a body or query field: unknown is bad input naming the field. */
export function fieldPolicy(ctx: ApiContext, name: string, field = 'policy'): PolicyConfig {
  const policy = ctx.config.policies.find((candidate) => candidate.name === name);
  if (!policy) throw ConfigError.single(field, `no policy named ${JSON.stringify(clip(name))}`, `known: ${known(ctx)}`);
  return policy;
}

const known = (ctx: ApiContext): string => ctx.config.policies.map((policy) => policy.name).join(', ');

export async function readPolicyStates(ctx: ApiContext, policies: PolicyConfig[]): Promise<PolicyState[]> {
  const now = ctx.clock.now();
  const inFlight = ctx.launcher.inFlight();
  return Promise.all(
    policies.map(async (policy) => {
      const [runs, pause, lease, streaks] = await Promise.all([
        ctx.control.listRuns({ policy: policy.name, limit: DEFAULT_RUNS_PER_POLICY }),
        ctx.control.pausedBy(policy.name),
        ctx.control.getLease(policy.name),
        ctx.control.attentionItems(policy.name, policy.attentionAfter),
      ]);
      const health = assessPolicy(policy, runs, now, {
        missedAfterMs: DEFAULT_MISSED_AFTER_MS,
        runsRead: DEFAULT_RUNS_PER_POLICY,
      });
      const running = inFlight.find((run) => run.policy === policy.name);
      return {
        policy,
        runs,
        pause,
        lease,
        health,
        running: running ? { runId: running.runId, dryRun: running.dryRun, progress: { ...running.progress } } : null,
        bytesToFree: bytesToFree(runs[0]),
        attentionOpen: streaks.filter((item) => isOpen(item, policy.attentionAfter)).length,
      };
    }),
  );
}

/** Known while the newest run is a dry run (its report says what a live run would free), or a live run that left nothing behind. */
function bytesToFree(newest: RunRecord | undefined): number | null {
  if (newest?.dryRun) return newest.report?.bytesToFree ?? null;
  return newest?.report?.backlog === 0 ? 0 : null;
}

/** A run record as lists show it: the report without its item list (that is `/items`). */
export function runSummary(run: RunRecord): RunRecord & { itemCount: number | null } {
  const items = run.report?.items;
  const report = run.report ? { ...run.report, items: undefined } : null;
  return { ...run, report, itemCount: items ? items.length : null };
}

export async function requireRun(ctx: ApiContext, runId: string): Promise<RunRecord> {
  const run = await ctx.control.getRun(runId);
  if (!run) throw ApiError.notFound(`no run ${JSON.stringify(clip(runId))} (see GET /api/runs)`);
  return run;
}

/** The audit trail as `retention audit` reads it: the control store's and the stores' own records. */
export async function readAudit(ctx: ApiContext, query: AuditQuery): Promise<AuditRecord[]> {
  const policies = ctx.config.policies.filter((policy) => query.policy === undefined || policy.name === query.policy);
  const stores = await Promise.all(policies.map((policy) => createStore(policy)));
  try {
    return await readAuditTrail(ctx.control, stores, query);
  } finally {
    for (const store of stores) await store.close?.();
  }
}
