import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { PolicyConfig } from '../config/schema.ts';
import type { Store } from '../core/store.ts';
import type { DataClass, RunReport } from '../core/types.ts';
import type { RunOptions } from '../engine/options.ts';
import { runPolicy } from '../engine/run.ts';
import { ConfigError, clip, describeCause, formatIssue, type InputIssue } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { monitorRun, type RunMonitor } from '../observe/sentry.ts';
import { redact, redactText } from '../redact.ts';
import type { ShardRows } from '../stores/s3/inventory.ts';
import { decideContinuation, invokeAsync } from './continuation.ts';
import { type Invocation, parseInvocation } from './payload.ts';
import { type ErrorCode, type ErrorResult, type HandlerResult, isErrorResult } from './result.ts';
import type { Environment, Runtime } from './runtime.ts';
import { isShardEvent, isShardInvocation, parseShard, shardDeps, shardMonitor, shardOf, shardResult } from './shard.ts';

/**
 * The handler of one data-class function (`blobs`, `rows`, `tokens`): validates the event, runs the
 * named policy within the invocation's remaining time, alerts, continues a backfill, and flushes
 * logs and Sentry before returning. Nothing is touched before the payload and the policy checked out.
 */
export interface LambdaContext {
  functionName: string;
  awsRequestId: string;
  getRemainingTimeInMillis(): number;
}

export interface DataClassDeps {
  /** Sentry check-ins and alerts (a disabled monitor without a DSN). */
  monitor: RunMonitor;
  /**
   * Store construction: the function entry passes its class's loaders (functions/), so its bundle
   * holds no other class's store code; tests wrap stores to slow them down or inject faults.
   */
  createStore: (policy: PolicyConfig) => Promise<Store>;
  /** For `continue: true` re-invocations; created on first use when absent. */
  lambda?: LambdaClient;
  /**
   * Time kept back from the invocation deadline for what follows the last batch (backlog census,
   * history, Sentry flush, re-invoke). The budget is `min(policy budget, remaining - margin)`.
   */
  deadlineMarginMs?: number;
  /** Bound on `continue` hops (at most MAX_HOPS). */
  maxHops?: number;
}

export const DEFAULT_DEADLINE_MARGIN_MS = 20_000;

export function createDataClassHandler(dataClass: DataClass, runtime: Runtime, deps: DataClassDeps) {
  const { monitor } = deps;
  const makeStore = deps.createStore;
  let lambda = deps.lambda;

  return async function handler(event: unknown, context: LambdaContext): Promise<HandlerResult> {
    const log = runtime.log.child({ request_id: context.awsRequestId, data_class: dataClass });
    try {
      // What leaves the function (its result, or the error the platform logs) carries no secret.
      const result = await handle(event, context, log);
      // A Distributed Map reads a shard's end from the error it throws (shard.ts `shardResult`).
      return redact(isShardEvent(event) ? shardResult(result) : result);
    } catch (error) {
      throw redactThrown(error);
    } finally {
      // A Lambda may be frozen right after returning: what is not sent now may never be.
      await Promise.all([runtime.flush(), monitor.flush()]);
    }
  };

  async function handle(event: unknown, context: LambdaContext, log: Logger): Promise<HandlerResult> {
    const parsed = isShardEvent(event) ? parseShard(event) : parseInvocation(event);
    if (!parsed.ok) return refuse(log, 'bad_payload', parsed.issues);
    const { invocation } = parsed;

    let environment: Environment;
    try {
      environment = await runtime.ready();
    } catch (error) {
      monitor.captureError(error, { stage: 'cold_start', requestId: context.awsRequestId });
      if (error instanceof ConfigError) return refuse(log, 'bad_config', error.issues);
      throw error;
    }
    const policy = selectPolicy(environment, invocation.policy, log);
    if ('error' in policy) {
      // A schedule naming a policy this function does not run is deployment drift: its return value goes nowhere.
      if (invocation.trigger === 'scheduled')
        monitor.captureError(new Error(policy.error.message), { stage: 'dispatch', requestId: context.awsRequestId });
      return policy;
    }

    const shard = isShardInvocation(invocation) ? shardOf(policy, invocation.shard) : undefined;
    if (shard && 'issues' in shard) return refuse(log, 'bad_payload', shard.issues);
    // Every line of a shard's run names the shard (the child execution), to find it from the map run.
    const runLog = isShardInvocation(invocation) ? log.child({ shard: invocation.shard.id }) : log;
    const result = await runChecked(policy, invocation, environment, context, runLog, shard?.rows);
    if (!isErrorResult(result)) await continueIfPartial(result, invocation, context, log);
    return result;
  }

  function selectPolicy(environment: Environment, name: string, log: Logger): PolicyConfig | ErrorResult {
    const policy = environment.config.policies.find((candidate) => candidate.name === name);
    if (!policy) {
      const known = environment.config.policies
        .filter((candidate) => candidate.class === dataClass)
        .map((candidate) => candidate.name);
      return refuse(log, 'unknown_policy', [
        {
          path: 'payload.policy',
          message: `no policy named ${JSON.stringify(clip(name))}`,
          fix: `known in class ${dataClass}: ${known.join(', ') || 'none'}`,
        },
      ]);
    }
    if (policy.class !== dataClass) {
      return refuse(log, 'wrong_data_class', [
        {
          path: 'payload.policy',
          message: `policy "${name}" is of class ${policy.class}; this function runs class ${dataClass}`,
          fix: `invoke the ${policy.class} function`,
        },
      ]);
    }
    return policy;
  }

  async function runChecked(
    policy: PolicyConfig,
    invocation: Invocation,
    environment: Environment,
    context: LambdaContext,
    log: Logger,
    shardRows?: ShardRows,
  ): Promise<HandlerResult> {
    let store: Store | undefined;
    try {
      return await monitorRun(
        shardRows ? shardMonitor(monitor) : monitor,
        policy,
        { dryRun: invocation.dryRun, requestId: context.awsRequestId },
        async () => {
          store = await makeStore(policy);
          const { control } = environment;
          // A shard runs over its rows only, under its own lease and checkpoint (serverless/shard.ts).
          const through =
            shardRows && isShardInvocation(invocation)
              ? shardDeps(policy, invocation.shard, shardRows, { store, control })
              : { store, control };
          return runPolicy(policy, runOptions(invocation, context), {
            control: through.control,
            store: through.store,
            clock: runtime.clock,
            log,
            actor: invocation.actor ?? `lambda:${context.functionName}`,
          });
        },
      );
    } catch (error) {
      // store.open() refused the store's configuration before anything was recorded or touched.
      if (error instanceof ConfigError) return refuse(log, 'bad_config', error.issues);
      log.error('error', { error: describeCause(error), stage: 'run' });
      throw error;
    } finally {
      await store?.close();
    }
  }

  function runOptions(invocation: Invocation, context: LambdaContext): RunOptions {
    const now = runtime.clock.now().getTime();
    return {
      trigger: invocation.trigger,
      dryRun: invocation.dryRun,
      force: invocation.force,
      list: invocation.list,
      deadline: {
        at: new Date(now + context.getRemainingTimeInMillis()),
        marginMs: deps.deadlineMarginMs ?? DEFAULT_DEADLINE_MARGIN_MS,
      },
      ...(invocation.limit !== undefined ? { limit: invocation.limit } : {}),
      ...(invocation.before !== undefined ? { before: invocation.before } : {}),
      ...(invocation.runId !== undefined ? { runId: invocation.runId } : {}),
      ...(invocation.budgetMs !== undefined ? { budgetMs: invocation.budgetMs } : {}),
    };
  }

  async function continueIfPartial(
    report: RunReport,
    invocation: Invocation,
    context: LambdaContext,
    log: Logger,
  ): Promise<void> {
    const decision = decideContinuation(report, invocation.continuation, deps.maxHops);
    const runLog = log.child({ correlation_id: report.runId, policy: report.policy });
    if (decision.next === 'none') return;
    if (decision.next === 'stop') {
      runLog.warn('continuation_stopped', {
        reason: decision.reason,
        hop: invocation.continuation?.hop ?? 0,
        backlog: report.backlog,
      });
      return;
    }
    try {
      lambda ??= new (await import('@aws-sdk/client-lambda')).LambdaClient({});
      await invokeAsync(lambda, context.functionName, decision.payload);
      runLog.info('run_continued', {
        next_hop: decision.payload.hop,
        function: context.functionName,
        backlog: report.backlog,
      });
    } catch (error) {
      // The run itself is done and recorded; the backlog waits for the next scheduled run.
      runLog.error('continuation_failed', { error: describeCause(error), next_hop: decision.payload.hop });
      monitor.captureError(error, { runId: report.runId, requestId: context.awsRequestId, stage: 'continue' });
    }
  }
}

function refuse(log: Logger, code: ErrorCode, issues: InputIssue[]): ErrorResult {
  const message = issues.map(formatIssue).join('\n');
  log.error('invocation_refused', { code, issues });
  return { error: { code, message, issues } };
}

/** The platform prints a thrown error's message and stack: redacted in place, so its class and cause stay. */
function redactThrown(error: unknown): unknown {
  if (!(error instanceof Error)) return typeof error === 'string' ? redactText(error) : redact(error);
  error.message = redactText(error.message);
  if (error.stack) error.stack = redactText(error.stack);
  return error;
}
