import { copyFile, mkdir, mkdtemp, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import { CONTROL_LOADERS } from '../../lib/control/registry.ts';
import { createApiHandler } from '../../lib/serverless/apiHandler.ts';
import { planDeployment } from '../../lib/serverless/deployment.ts';
import type { HttpResponse } from '../../lib/serverless/healthHandler.ts';
import { createRuntime, type Runtime } from '../../lib/serverless/runtime.ts';
import { seedFiles } from '../support/cli.ts';
import { functionUrlEvent } from '../support/functionUrl.ts';
import { FUNCTION_NAME, type HandlerFixture, handlerFixture, lambdaContext } from '../support/handlerFixture.ts';
import { type LambdaStandIn, startLambdaStandIn } from '../support/lambda.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * functions/api.ts's handler driven with Function URL events (payload format 2.0) against
 * embedded PostgreSQL as the control store, a directory store, and a local Lambda Invoke API (the
 * real SDK client) whose `blobs` function is the real data-class handler: tokens and roles, an
 * action recorded with its actor, a run started as an asynchronous invoke and run by that
 * function under the id the API answered with, run events as snapshots, the dashboard from the
 * files the deployment copies, and the refusal without tokens.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OPERATOR = 'operator-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789abcdef';
const DAY = 86_400_000;

const shared = usePostgresAndScratch('retention-api-lambda-');
let lambda: LambdaStandIn;
let fixture: HandlerFixture;
let apiRuntime: Runtime;
let handler: ReturnType<typeof createApiHandler>;
let dashboardDir: string;
const lines: Array<Record<string, unknown>> = [];

/** The dashboard files as sst.config.ts copies them into the API function's package. */
async function copyDashboard(): Promise<string> {
  const s3 = { kind: 's3', bucket: 'docs', region: 'us-east-1' };
  const policy = { name: 'docs', class: 'blobs', store: s3, retention: '30d', schedule: '0 3 * * *' };
  const plan = planDeployment(parseConfig({ policies: [policy] }), {
    app: 'app',
    stage: 'test',
    region: 'us-east-1',
    accountId: '123456789012',
  });
  const taskRoot = await mkdtemp(path.join(shared.scratch, 'task-'));
  for (const copy of plan.functions.find((fn) => fn.role === 'api')!.copyFiles) {
    await mkdir(path.dirname(path.join(taskRoot, copy.to)), { recursive: true });
    await copyFile(path.join(ROOT, copy.from), path.join(taskRoot, copy.to));
  }
  return path.join(taskRoot, 'dashboard');
}

beforeAll(async () => {
  lambda = await startLambdaStandIn();
  fixture = await handlerFixture(shared.server, shared.scratch, { lambda: lambda.client });
  await seedFiles(fixture.root, [
    { key: 'old-1.log', mtime: new Date(Date.now() - 40 * DAY) },
    { key: 'old-2.log', mtime: new Date(Date.now() - 50 * DAY) },
    { key: 'new.log', mtime: new Date(Date.now() - DAY) },
  ]);
  lambda.register(FUNCTION_NAME, (payload) => fixture.handler(payload, lambdaContext(60_000)));
  dashboardDir = await copyDashboard();
  apiRuntime = createRuntime({
    controls: CONTROL_LOADERS,
    env: { RETENTION_CONFIG: fixture.configPath },
    databaseUrl: fixture.databaseUrl,
    sink: { write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  handler = createApiHandler(apiRuntime, {
    tokens: { operator: OPERATOR, viewer: VIEWER },
    env: { RETENTION_FUNCTION_BLOBS: FUNCTION_NAME },
    lambda: lambda.client,
    dashboardDir,
  });
});
afterAll(async () => {
  await lambda?.stop();
  await Promise.all([apiRuntime?.close(), fixture?.runtime.close()]);
});

type Who = 'operator' | 'viewer' | 'none';

/** A request as a Function URL hands it to the function (payload format 2.0). */
function urlEvent(method: string, route: string, options: { who?: Who; body?: unknown; actor?: string } = {}) {
  const who = options.who ?? 'operator';
  const headers: Record<string, string> = { 'user-agent': 'test' };
  if (who !== 'none') headers.authorization = `Bearer ${who === 'operator' ? OPERATOR : VIEWER}`;
  if (options.actor) headers['x-retention-actor'] = options.actor;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  return functionUrlEvent(
    method,
    route,
    headers,
    options.body === undefined ? undefined : JSON.stringify(options.body),
  );
}

async function call(method: string, route: string, options: Parameters<typeof urlEvent>[2] = {}) {
  const response: HttpResponse & { isBase64Encoded?: boolean } = await handler(urlEvent(method, route, options));
  expect(response.isBase64Encoded ?? false, `${method} ${route} answers text`).toBe(false);
  const type = response.headers['content-type'] ?? '';
  return { ...response, json: type.includes('json') ? (JSON.parse(response.body) as any) : undefined };
}

describe('the API behind a Function URL', () => {
  it('answers 401 without a token or with a wrong one, and lets the viewer read', async () => {
    const none = await call('GET', '/api/policies', { who: 'none' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.json.error.code).toBe('unauthorized');
    const wrong = await handler({
      ...urlEvent('GET', '/api/policies', { who: 'none' }),
      headers: { authorization: `Bearer ${OPERATOR}x` },
    });
    expect(wrong.statusCode).toBe(401);
    const read = await call('GET', '/api/policies', { who: 'viewer' });
    expect(read.statusCode).toBe(200);
    expect(read.json.map((policy: { name: string; storeKind: string }) => [policy.name, policy.storeKind])).toEqual([
      ['files', 'fs'],
    ]);
  });

  it('refuses actions to the viewer (403, nothing paused) and records the operator pause with its actor', async () => {
    const refused = await call('POST', '/api/policies/files/pause', { who: 'viewer', body: { reason: 'no' } });
    expect(refused.statusCode).toBe(403);
    expect((await call('GET', '/api/pauses', { who: 'viewer' })).json).toEqual([]);

    const paused = await call('POST', '/api/policies/files/pause', { body: { reason: 'incident 7' }, actor: 'alice' });
    expect(paused.statusCode).toBe(200);
    expect((await call('GET', '/api/pauses', { who: 'viewer' })).json).toEqual([
      expect.objectContaining({ scope: 'files', by: 'api:operator:alice', reason: 'incident 7' }),
    ]);
    const governance = await call('GET', '/api/audit?policy=files', { who: 'viewer' });
    expect(governance.json).toContainEqual(
      expect.objectContaining({ action: 'paused', actor: 'api:operator:alice', rule: 'incident 7' }),
    );
    expect((await call('POST', '/api/policies/files/resume', { actor: 'alice' })).json).toMatchObject({
      wasPaused: true,
    });
  });

  it('starts a run as an asynchronous invoke of the data-class function, which runs it under the id answered', async () => {
    const started = await call('POST', '/api/policies/files/runs', { body: { dryRun: false }, actor: 'alice' });
    expect(started.statusCode).toBe(202);
    const { runId } = started.json as { runId: string };
    expect(runId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    expect(lambda.invocations).toEqual([
      {
        functionName: FUNCTION_NAME,
        type: 'Event',
        payload: { policy: 'files', dryRun: false, force: false, list: false, runId, actor: 'api:operator:alice' },
      },
    ]);
    await lambda.idle();
    const run = await call('GET', `/api/runs/${runId}`, { who: 'viewer' });
    expect(run.json).toMatchObject({ runId, policy: 'files', status: 'completed', progress: null });
    expect(run.json.report).toMatchObject({ deleted: 2, trigger: 'manual', dryRun: false });
    expect((await readdir(fixture.root)).sort()).toEqual(['new.log']);
    // Recorded with the caller as actor, not the function.
    const audit = (await call('GET', `/api/runs/${runId}/audit`, { who: 'viewer' })).json as Array<{
      status: string;
      actor: string;
    }>;
    expect(audit.filter((record) => record.status === 'deleted').map((record) => record.actor)).toEqual([
      'api:operator:alice',
      'api:operator:alice',
    ]);

    // A redelivered event (asynchronous invokes are retried) finds its run id taken: nothing runs twice.
    await expect(fixture.handler(lambda.invocations[0]!.payload)).rejects.toThrow(/started before|duplicate key/);
    expect((await call('GET', '/api/runs?policy=files', { who: 'viewer' })).json).toHaveLength(1);
  });

  it('answers run events as one snapshot per request: running with a retry, then done', async () => {
    const { control } = await apiRuntime.ready();
    const runId = '20261207T230000Z-abcdef';
    await control.startRun({ runId, policy: 'files', dryRun: true, startedAt: new Date() });
    const running = await call('GET', `/api/runs/${runId}/events`, { who: 'viewer' });
    expect(running.statusCode).toBe(200);
    expect(running.headers['content-type']).toContain('text/event-stream');
    expect(running.body).toMatch(/^event: running\ndata: \{.*"status":"running".*\}\nretry: 2000\n\n$/);

    const [latest] = (await call('GET', '/api/runs?policy=files&limit=2', { who: 'viewer' })).json.filter(
      (run: { runId: string }) => run.runId !== runId,
    );
    const done = await call('GET', `/api/runs/${latest.runId}/events`, { who: 'viewer' });
    expect(done.body).toMatch(/^event: done\ndata: \{.*"status":"completed".*\}\n\n$/);
    const document = (await call('GET', '/api/openapi.json', { who: 'none' })).json;
    expect(document.paths['/api/runs/{runId}/events'].get.summary).toContain('poll GET /api/runs/{runId}');
  });

  it('adds a hold and says it was not checked against the stores (the function has no access to them)', async () => {
    const added = await call('POST', '/api/holds', { body: { policy: 'files', key: 'new.log', reason: 'case 9' } });
    expect(added.statusCode).toBe(201);
    expect(added.json).toMatchObject({ key: 'new.log', createdBy: 'api:operator', checks: [{ policy: 'files' }] });
    expect(added.json.checks[0]).toMatchObject({ matched: null });
    expect(added.json.checks[0].warning).toContain('not checked (the cloud API is granted no access to the stores');
    expect((await call('DELETE', `/api/holds/${added.json.id}`)).statusCode).toBe(200);
  });

  it('serves the dashboard from the files the deployment copies beside the bundle', async () => {
    const page = await call('GET', '/', { who: 'none' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('<script type="module" src="/dashboard.js">');
    const chart = await call('GET', '/vendor/uPlot.iife.min.js', { who: 'none' });
    expect(chart.statusCode).toBe(200);
    expect(chart.body.length).toBeGreaterThan(10_000);
  });

  it('answers 502 naming the function when the invoke fails, and no run is recorded', async () => {
    const misnamed = createApiHandler(apiRuntime, {
      tokens: { operator: OPERATOR, viewer: VIEWER },
      env: { RETENTION_FUNCTION_BLOBS: 'app-test-missing' },
      lambda: lambda.client,
    });
    const runs = (await call('GET', '/api/runs', { who: 'viewer' })).json.length;
    const answer = await misnamed(urlEvent('POST', '/api/policies/files/runs', { body: { dryRun: true } }));
    expect(answer.statusCode).toBe(502);
    const { error } = JSON.parse(answer.body) as { error: { code: string; message: string } };
    expect(error.code).toBe('invoke_failed');
    expect(error.message).toContain('asynchronous invoke of app-test-missing failed');
    expect((await call('GET', '/api/runs', { who: 'viewer' })).json).toHaveLength(runs);
  });

  it('the deployed entry point (functions/api.ts) reads its tokens without SST links, its dashboard from the task root', async () => {
    const env = {
      RETENTION_CONFIG: fixture.configPath,
      RETENTION_DATABASE_URL: fixture.databaseUrl,
      RETENTION_VIEWER_TOKEN: VIEWER,
      RETENTION_LOG_LEVEL: 'error',
      LAMBDA_TASK_ROOT: path.dirname(dashboardDir),
    };
    Object.assign(process.env, env);
    try {
      const entry = (await import('../../functions/api.ts')).handler;
      const whoami = await entry(urlEvent('GET', '/api/whoami', { who: 'viewer' }));
      expect(JSON.parse(whoami.body)).toEqual({ role: 'viewer', actor: 'api:viewer' });
      // No operator token set: the operator's is refused like any unknown token.
      expect((await entry(urlEvent('GET', '/api/whoami'))).statusCode).toBe(401);
      expect((await entry(urlEvent('GET', '/', { who: 'none' }))).body).toContain('<script type="module"');
    } finally {
      for (const key of Object.keys(env)) delete process.env[key];
    }
  });

  it('refuses what did not come through the URL, and refuses everything without tokens', async () => {
    const direct = await handler({ policy: 'files' });
    expect(direct.statusCode).toBe(400);
    expect(JSON.parse(direct.body).error.message).toContain('error: event: must be a Function URL request');

    const unconfigured = createApiHandler(apiRuntime, {
      tokens: { operator: undefined, viewer: '' },
      env: {},
      lambda: lambda.client,
    });
    const refused = await unconfigured(urlEvent('GET', '/api/policies'));
    expect(refused.statusCode).toBe(503);
    const { error } = JSON.parse(refused.body) as { error: { code: string; message: string } };
    expect(error.code).toBe('not_configured');
    expect(error.message).toMatch(/^error: RetentionApiToken: neither RETENTION_API_TOKEN \(operator\) nor/);
    expect(error.message).toContain('npx sst secret set RetentionApiToken');
    expect(lines).toContainEqual(expect.objectContaining({ event: 'api_tokens_missing', level: 'error' }));
  });
});
