import { setTimeout as sleep } from 'node:timers/promises';
import { type SSEStreamingApi, streamSSE } from 'hono/streaming';
import { attentionView } from '../core/attention.ts';
import type { RunRecord } from '../core/control.ts';
import type { RunReport } from '../core/types.ts';
import { describeCause } from '../errors.ts';
import { redact } from '../redact.ts';
import { assessHealth } from '../reports/health.ts';
import { AuditQuery, HoldsQuery, ItemsQuery, RunsQuery, StatsQuery } from './bodies.ts';
import { parseQuery, send } from './http.ts';
import type { RunEvent } from './launcher.ts';
import { callerOf, pathParam, type Routes } from './routes.ts';
import {
  type ApiContext,
  fieldPolicy,
  pathPolicy,
  readAudit,
  readPolicyStates,
  requireRun,
  runSummary,
} from './state.ts';
import { overview, policyView, stats } from './views.ts';

/** How often a stream following another process's run (CLI, daemon) looks at its history. */
const EXTERNAL_POLL_MS = 1_000;
const OK = { 200: 'OK' };
const OR_404 = { 200: 'OK', 404: 'no such policy or run' };
const OR_400 = { 200: 'OK', 400: 'a bad query parameter, named' };

/** The read side: everything a viewer token may see. */
export function addReadRoutes(routes: Routes, ctx: ApiContext): void {
  routes.add(
    {
      method: 'get',
      path: '/healthz',
      access: 'public',
      summary: 'Health: status only without a token; per policy with one (503 when unhealthy)',
      responses: { 200: 'healthy', 503: 'unhealthy' },
    },
    async (c) => {
      const health = await assessHealth(ctx.config.policies, ctx.control, ctx.clock.now()).catch((error: unknown) => {
        ctx.log.error('health_check_failed', { error: describeCause(error) });
        return null;
      });
      // Unable to look is unhealthy: a health check must not pass by failing to check.
      const status = health?.status ?? 'unhealthy';
      const body = c.get('caller') && health ? health : { status };
      return send(c, body, status === 'healthy' ? 200 : 503);
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/whoami',
      access: 'viewer',
      summary: "The caller's role and the actor its actions are recorded as",
      responses: OK,
    },
    (c) => send(c, callerOf(c)),
  );
  routes.add(
    { method: 'get', path: '/api/overview', access: 'viewer', summary: 'The overview cards', responses: OK },
    async (c) => {
      const states = await readPolicyStates(ctx, ctx.config.policies);
      const now = ctx.clock.now();
      return send(
        c,
        overview(
          states,
          states.map((state) => policyView(state, now)),
          now,
        ),
      );
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/policies',
      access: 'viewer',
      summary: 'Policies with status, SLA and next run',
      responses: OK,
    },
    async (c) => {
      const now = ctx.clock.now();
      return send(
        c,
        (await readPolicyStates(ctx, ctx.config.policies)).map((state) => policyView(state, now)),
      );
    },
  );
  routes.add(
    { method: 'get', path: '/api/policies/:policy', access: 'viewer', summary: 'One policy', responses: OR_404 },
    async (c) => {
      const [state] = await readPolicyStates(ctx, [pathPolicy(ctx, pathParam(c, 'policy'))]);
      return send(c, policyView(state!, ctx.clock.now()));
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/runs',
      access: 'viewer',
      summary: 'Run history, newest first',
      query: RunsQuery,
      responses: OR_400,
    },
    async (c) => {
      const query = parseQuery(c, RunsQuery);
      const policy = query.policy === undefined ? {} : { policy: fieldPolicy(ctx, query.policy).name };
      return send(c, (await ctx.control.listRuns({ ...policy, limit: query.limit })).map(runSummary));
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/runs/:runId',
      access: 'viewer',
      summary: 'One run (with its progress while in flight here)',
      responses: OR_404,
    },
    async (c) => {
      const run = await requireRun(ctx, pathParam(c, 'runId'));
      return send(c, { ...runSummary(run), progress: ctx.launcher.get(run.runId)?.progress ?? null });
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/runs/:runId/items',
      access: 'viewer',
      summary: "A run's listed items (runs started with list: true)",
      query: ItemsQuery,
      responses: OR_404,
    },
    async (c) => {
      const { limit, offset } = parseQuery(c, ItemsQuery);
      const run = await requireRun(ctx, pathParam(c, 'runId'));
      const items = run.report?.items;
      const bytesToFree = run.report?.bytesToFree ?? null;
      return send(c, {
        runId: run.runId,
        listed: items !== undefined,
        total: items?.length ?? 0,
        bytesToFree,
        items: (items ?? []).slice(offset, offset + limit),
      });
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/runs/:runId/audit',
      access: 'viewer',
      summary: "A run's audit records",
      query: ItemsQuery,
      responses: OR_404,
    },
    async (c) => {
      const { limit } = parseQuery(c, ItemsQuery);
      const run = await requireRun(ctx, pathParam(c, 'runId'));
      return send(c, await readAudit(ctx, { runId: run.runId, policy: run.policy, limit }));
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/runs/:runId/events',
      access: 'viewer',
      summary: ctx.streaming
        ? "A run's progress as server-sent events: progress, then done"
        : "A run's state as one server-sent event per request (responses are buffered here): " +
          '`running` with `retry` (ask again then), or `done`; or poll GET /api/runs/{runId}',
      stream: true,
      responses: OR_404,
    },
    async (c) => {
      const runId = pathParam(c, 'runId');
      const launched = ctx.launcher.get(runId);
      if (!launched) await requireRun(ctx, runId);
      if (!ctx.streaming) return streamSSE(c, (stream) => snapshot(stream, ctx, runId));
      return streamSSE(c, (stream) =>
        launched ? follow(stream, launched.subscribe) : followExternal(stream, ctx, runId),
      );
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/audit',
      access: 'viewer',
      summary: 'Audit search by key, policy and/or run',
      query: AuditQuery,
      responses: OR_400,
    },
    async (c) => {
      const query = parseQuery(c, AuditQuery);
      if (query.policy !== undefined) fieldPolicy(ctx, query.policy);
      const { run, ...rest } = query;
      return send(c, await readAudit(ctx, { ...rest, ...(run !== undefined ? { runId: run } : {}) }));
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/stats',
      access: 'viewer',
      summary: 'Chart series: deletions per day, oldest overdue over time',
      query: StatsQuery,
      responses: OR_400,
    },
    async (c) => {
      const { days } = parseQuery(c, StatsQuery);
      const runs = await Promise.all(
        ctx.config.policies.map((policy) => ctx.control.listRuns({ policy: policy.name, limit: 1000 })),
      );
      return send(c, stats(runs.flat(), ctx.clock.now(), days));
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/holds',
      access: 'viewer',
      summary: 'Legal holds (of one policy: its own and global ones)',
      query: HoldsQuery,
      responses: OR_400,
    },
    async (c) => {
      const { policy } = parseQuery(c, HoldsQuery);
      return send(c, await ctx.control.listHolds(policy === undefined ? undefined : fieldPolicy(ctx, policy).name));
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/attention',
      access: 'viewer',
      summary: 'Per policy: items that failed in attentionAfter consecutive runs (open, or dismissed)',
      responses: OK,
    },
    async (c) => {
      const policies = await Promise.all(
        ctx.config.policies.map(async ({ name, attentionAfter: after }) => {
          const items = (await ctx.control.attentionItems(name, after)).map((item) => attentionView(item, after));
          return { policy: name, after, open: items.filter((item) => item.open).length, items };
        }),
      );
      return send(c, policies);
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/api/pauses',
      access: 'viewer',
      summary: 'Pauses in force (`*`: every policy)',
      responses: OK,
    },
    async (c) => send(c, await ctx.control.listPauses()),
  );
}

type Subscribe = (listener: (event: RunEvent) => void) => () => void;

/** Writes the run's events in order until it is done (or the client goes away). */
async function follow(stream: SSEStreamingApi, subscribe: Subscribe): Promise<void> {
  let writing = Promise.resolve();
  let finish!: () => void;
  const ended = new Promise<void>((resolve) => (finish = resolve));
  const unsubscribe = subscribe((event) => {
    const data = eventData(
      event.type === 'progress'
        ? event.progress
        : event.type === 'done'
          ? summary(event.report)
          : { message: event.message },
    );
    writing = writing.then(() => stream.writeSSE({ event: event.type, data }));
    if (event.type !== 'progress') void writing.then(finish);
  });
  stream.onAbort(finish);
  await ended;
  unsubscribe();
}

/** A run of another process: its history, looked at until it is finished. */
async function followExternal(stream: SSEStreamingApi, ctx: ApiContext, runId: string): Promise<void> {
  for (;;) {
    const run = await ctx.control.getRun(runId);
    if (run?.status !== 'running') {
      await stream.writeSSE({ event: 'done', data: eventData(ended(run, runId)) });
      return;
    }
    if (stream.aborted || ctx.closing.aborted) return;
    await sleep(EXTERNAL_POLL_MS, undefined, { signal: ctx.closing }).catch(() => undefined);
  }
}

/**
 * Where a response is sent only once complete (a Function URL buffers it), a stream that follows
 * a run would be cut by the function's timeout: each request gets the run's state now, and
 * `retry` tells the client when to ask again.
 */
async function snapshot(stream: SSEStreamingApi, ctx: ApiContext, runId: string): Promise<void> {
  const run = await ctx.control.getRun(runId);
  if (run?.status === 'running') {
    const data = eventData({ runId, policy: run.policy, status: run.status, startedAt: run.startedAt });
    await stream.writeSSE({ event: 'running', data, retry: EXTERNAL_POLL_MS * 2 });
    return;
  }
  await stream.writeSSE({ event: 'done', data: eventData(ended(run, runId)) });
}

/** A finished run's report; a crashed run has none: its record says how it ended. */
function ended(run: RunRecord | null, runId: string): unknown {
  return run?.report ? summary(run.report) : { runId, policy: run?.policy, status: run?.status ?? 'unknown' };
}

const summary = (report: RunReport): RunReport => ({ ...report, items: undefined });
/** Redacted like every JSON answer (`send`). */
const eventData = (value: unknown): string => JSON.stringify(redact(value));
