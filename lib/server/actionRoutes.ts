import type { Context } from 'hono';
import { isOpen } from '../core/attention.ts';
import { dismissAttention, type Operator, pauseScope, removeHold, resumeScope } from '../engine/governed.ts';
import { addCheckedHold } from '../engine/holdCheck.ts';
import { ConfigError } from '../errors.ts';
import { DismissBody, EmptyBody, HoldBody, PauseBody, RunBody } from './bodies.ts';
import { ApiError, parseBody, send } from './http.ts';
import type { LaunchOptions } from './launcher.ts';
import { type ApiEnv, callerOf, pathParam, type Routes } from './routes.ts';
import { type ApiContext, fieldPolicy, pathPolicy } from './state.ts';

const BAD_BODY = { 400: 'a bad body, the field named' };

/**
 * The operator's actions, through the same control-store calls as the CLI's commands (`pause`,
 * `resume`, `hold add`, `hold remove`, `attention dismiss`) and the engine's `runPolicy` for runs, each recorded with
 * the caller as actor: the pause's `by`, the hold's `createdBy`, the run's audit records.
 */
export function addActionRoutes(routes: Routes, ctx: ApiContext): void {
  // Recorded like the CLI's: the same log lines and governance records, the caller as actor.
  const operatorOf = (actor: string): Operator => ({ control: ctx.control, clock: ctx.clock, log: ctx.log, actor });
  const pause = async (c: Context<ApiEnv>, scope: string): Promise<Response> => {
    const { actor } = callerOf(c);
    const { reason = 'paused from the API' } = await parseBody(c, PauseBody);
    await pauseScope(operatorOf(actor), scope, reason);
    return send(c, { scope, paused: true, by: actor, reason });
  };
  const resume = async (c: Context<ApiEnv>, scope: string): Promise<Response> => {
    const { actor } = callerOf(c);
    await parseBody(c, EmptyBody);
    const resumed = await resumeScope(operatorOf(actor), scope, 'resumed from the API');
    return send(c, { scope, paused: false, wasPaused: resumed });
  };
  const scopeOf = (c: Context<ApiEnv>): string => pathPolicy(ctx, pathParam(c, 'policy')).name;
  /** Starts a run of the path's policy; answers at once with its id and where to follow it. */
  const launch = async (c: Context<ApiEnv>, options: LaunchOptions): Promise<Response> => {
    const { actor } = callerOf(c);
    const policy = pathPolicy(ctx, pathParam(c, 'policy'));
    if (options.force) ctx.log.warn('api_force_requested', { policy: policy.name, by: actor });
    const run = await ctx.launcher.start(policy, options, actor).catch((error: unknown) => {
      // The policy's store cannot be opened (a missing root): the config's problem, not the request's.
      throw error instanceof ConfigError ? new ApiError(409, 'store_unavailable', error.message) : error;
    });
    const links = {
      run: `/api/runs/${run.runId}`,
      events: `/api/runs/${run.runId}/events`,
      items: `/api/runs/${run.runId}/items`,
    };
    return send(c, { runId: run.runId, policy: policy.name, dryRun: run.dryRun, actor, links }, 202);
  };

  routes.add(
    {
      method: 'post',
      path: '/api/policies/:policy/pause',
      access: 'operator',
      summary: 'Pause a policy: runs in flight stop before their next deletion',
      body: PauseBody,
      responses: { 200: 'paused', ...BAD_BODY },
    },
    (c) => pause(c, scopeOf(c)),
  );
  routes.add(
    {
      method: 'post',
      path: '/api/policies/:policy/resume',
      access: 'operator',
      summary: "Lift a policy's own pause",
      responses: { 200: 'resumed (or was not paused)' },
    },
    (c) => resume(c, scopeOf(c)),
  );
  routes.add(
    {
      method: 'post',
      path: '/api/pause',
      access: 'operator',
      summary: 'The kill switch: pause every policy',
      body: PauseBody,
      responses: { 200: 'paused', ...BAD_BODY },
    },
    (c) => pause(c, '*'),
  );
  routes.add(
    {
      method: 'post',
      path: '/api/resume',
      access: 'operator',
      summary: 'Lift the global pause',
      responses: { 200: 'resumed (or was not paused)' },
    },
    (c) => resume(c, '*'),
  );

  routes.add(
    {
      method: 'post',
      path: '/api/holds',
      access: 'operator',
      summary: 'Add a legal hold on a key or prefix',
      body: HoldBody,
      responses: { 201: 'the hold, with `checks`: per policy, whether anything matches it', ...BAD_BODY },
    },
    async (c) => {
      const { actor } = callerOf(c);
      const body = await parseBody(c, HoldBody);
      const policy = body.policy == null ? null : fieldPolicy(ctx, body.policy).name;
      const [key, prefix] = body.key !== undefined ? [body.key, false] : [body.prefix!, true];
      const request = { policy, key, prefix, reason: body.reason };
      // As `hold add --json` answers: the hold and, per policy it covers, whether anything matches.
      const hold = await addCheckedHold(operatorOf(actor), ctx.config.policies, request, ctx.holdChecking);
      return send(c, hold, 201);
    },
  );
  routes.add(
    {
      method: 'delete',
      path: '/api/holds/:id',
      access: 'operator',
      summary: 'Remove a hold',
      responses: { 200: 'removed', 400: 'not a hold id', 404: 'no such hold' },
    },
    async (c) => {
      const { actor } = callerOf(c);
      const id = pathParam(c, 'id');
      if (!/^\d{1,15}$/.test(id)) throw ConfigError.single('id', 'is not a hold id', 'see ids with GET /api/holds');
      if (!(await removeHold(operatorOf(actor), Number(id), 'removed from the API')))
        throw ApiError.notFound(`no hold with id ${id} (see GET /api/holds)`);
      return send(c, { id: Number(id), removed: true });
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/api/policies/:policy/attention/dismiss',
      access: 'operator',
      summary: 'Acknowledge an item that keeps failing: no longer open while it fails (a governance record)',
      body: DismissBody,
      responses: { 200: 'dismissed', ...BAD_BODY, 404: 'no failing item with that key' },
    },
    async (c) => {
      const { actor } = callerOf(c);
      const policy = scopeOf(c);
      const { key, reason } = await parseBody(c, DismissBody);
      const item = await dismissAttention(operatorOf(actor), { policy, key, reason });
      if (!item)
        throw ApiError.notFound(`no failing item ${JSON.stringify(key)} in ${policy} (see GET /api/attention)`);
      return send(c, { policy, key, failures: item.failures, dismissed: true, by: actor, reason });
    },
  );
  routes.add(
    {
      method: 'post',
      path: '/api/policies/:policy/attention/retry',
      access: 'operator',
      summary: 'Run the policy now from the start of its scope, reaching its open items; then GET /api/attention',
      responses: { 200: 'nothing open: no run', 202: 'started', 409: "the policy's store cannot be opened" },
    },
    async (c) => {
      await parseBody(c, EmptyBody);
      const policy = pathPolicy(ctx, pathParam(c, 'policy'));
      const streaks = await ctx.control.attentionItems(policy.name, policy.attentionAfter);
      // As `retention attention retry`: with nothing open, nothing to retry.
      if (!streaks.some((item) => isOpen(item, policy.attentionAfter)))
        return send(c, { policy: policy.name, open: 0, runId: null });
      return launch(c, { dryRun: false, force: false, list: false, fromStart: true });
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/api/policies/:policy/runs',
      access: 'operator',
      summary: 'Start a dry run or a live run; answers with its id at once (follow /api/runs/{runId}/events)',
      body: RunBody,
      responses: { 202: 'started', ...BAD_BODY, 409: "the policy's store cannot be opened" },
    },
    async (c) => {
      const { budget, before, ...flags } = await parseBody(c, RunBody);
      return launch(c, {
        ...flags,
        ...(budget !== undefined ? { budgetMs: budget } : {}),
        ...(before !== undefined ? { before } : {}),
      });
    },
  );
}
