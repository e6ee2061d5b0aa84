import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import { PostgresControlStore } from '../../lib/control/postgres/store.ts';
import type { ControlStore } from '../../lib/core/control.ts';
import { Logger } from '../../lib/observe/log.ts';
import { tokensFromEnv } from '../../lib/server/auth.ts';
import { DASHBOARD_PATHS } from '../../lib/server/dashboard.ts';
import { openApiPath } from '../../lib/server/openapi.ts';
import { type ApiServer, startApiServer } from '../../lib/server/server.ts';
import { createSqlClient } from '../../lib/sql/client.ts';
import { runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * The REST API in-process against a real control store (PostgreSQL) and real directories: every
 * route with no token, the viewer's and the operator's; bad bodies named by field; actions
 * recorded with their actor; a pause through the API stopping a run in flight.
 */
const OPERATOR = 'operator-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789abcdef';
const DAY = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms);

const shared = usePostgresAndScratch('retention-api-');
let control: PostgresControlStore;
let server: ApiServer;
let roots: Record<'files' | 'slow', string>;
const logLines: Array<Record<string, unknown>> = [];
/** Holds the second write-ahead batch of a run until released: a run "in flight" at a known point. */
let gate: { calls: number; reached: () => void; released: Promise<void> } | null = null;

function gated(target: ControlStore): ControlStore {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      if (property !== 'recordIntents') return value.bind(object);
      return async (...args: unknown[]) => {
        if (gate && ++gate.calls === 2) {
          gate.reached();
          await gate.released;
        }
        return (value as (...given: unknown[]) => Promise<void>).apply(object, args);
      };
    },
  });
}

beforeAll(async () => {
  control = new PostgresControlStore(createSqlClient({ url: await shared.server.createDatabase('api') }));
  await control.migrate();
  roots = { files: path.join(shared.scratch, 'files'), slow: path.join(shared.scratch, 'slow') };
  await seedFiles(roots.files, [
    { key: 'old-1.log', mtime: ago(40 * DAY) },
    { key: 'old-2.log', mtime: ago(50 * DAY) },
    { key: 'new.log', mtime: ago(DAY) },
  ]);
  await seedFiles(
    roots.slow,
    Array.from({ length: 30 }, (_, index) => ({
      key: `f-${String(index).padStart(2, '0')}.bin`,
      mtime: ago(40 * DAY),
    })),
  );
  const policy = (name: string, overrides = {}) => ({
    name,
    class: 'blobs',
    store: { kind: 'fs', root: roots[name as keyof typeof roots] },
    retention: '30d',
    schedule: '0 * * * *',
    limits: { maxDeleteFraction: 1 },
    ...overrides,
  });
  const config = parseConfig({ policies: [policy('files'), policy('slow', { batchSize: 5 })] });
  const log = new Logger({
    sink: { write: (line) => logLines.push(JSON.parse(line) as Record<string, unknown>) },
    level: 'debug',
  });
  server = await startApiServer({
    config,
    control: gated(control),
    log,
    tokens: { operator: OPERATOR, viewer: VIEWER },
    port: 0,
    host: '127.0.0.1',
  });
});

afterAll(async () => {
  await server?.close();
  await control?.close();
});

type Who = 'none' | 'viewer' | 'operator';

async function call(
  method: string,
  route: string,
  options: { who?: Who; body?: unknown; rawBody?: string; actor?: string } = {},
) {
  const headers: Record<string, string> = {};
  const who = options.who ?? 'operator';
  if (who !== 'none') headers.authorization = `Bearer ${who === 'operator' ? OPERATOR : VIEWER}`;
  if (options.actor) headers['x-retention-actor'] = options.actor;
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await fetch(`${server.url}${route}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  return { status: response.status, type, text, json: type.includes('json') ? (JSON.parse(text) as any) : undefined };
}

/** Starts a run and reads its server-sent events to the end. */
async function runToEnd(policy: string, body: Record<string, unknown>, actor?: string) {
  const started = await call('POST', `/api/policies/${policy}/runs`, { body, ...(actor ? { actor } : {}) });
  expect(started.status, started.text).toBe(202);
  const events = await call('GET', `/api/runs/${started.json.runId}/events`);
  return { runId: started.json.runId as string, events: parseEvents(events.text) };
}

function parseEvents(text: string): Array<{ event: string; data: any }> {
  return text
    .split('\n\n')
    .filter((block) => block.includes('data:'))
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)![1]!, data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) }));
}

describe('REST API access', () => {
  it('answers every route by token: 401 without one, 403 for the viewer on actions, else success', async () => {
    const { runId } = await runToEnd('files', { dryRun: true, list: true });
    const document = (await call('GET', '/api/openapi.json', { who: 'none' })).json;
    const operations = Object.entries(document.paths as Record<string, Record<string, { 'x-access': string }>>).flatMap(
      ([route, methods]) =>
        Object.entries(methods).map(([method, operation]) => ({
          method: method.toUpperCase(),
          route,
          access: operation['x-access'],
        })),
    );
    // What each route is called with: a route without an entry here fails the test, so none goes untested.
    const examples: Record<string, { query?: string; body?: unknown; ok: number[] }> = {
      'GET /healthz': { ok: [200, 503] },
      'GET /api/openapi.json': { ok: [200] },
      'GET /api/whoami': { ok: [200] },
      'GET /api/overview': { ok: [200] },
      'GET /api/policies': { ok: [200] },
      'GET /api/policies/{policy}': { ok: [200] },
      'GET /api/runs': { query: '?policy=files&limit=5', ok: [200] },
      'GET /api/runs/{runId}': { ok: [200] },
      'GET /api/runs/{runId}/items': { ok: [200] },
      'GET /api/runs/{runId}/audit': { ok: [200] },
      'GET /api/runs/{runId}/events': { ok: [200] },
      'GET /api/audit': { query: '?key=old-1.log', ok: [200] },
      'GET /api/stats': { query: '?days=7', ok: [200] },
      'GET /api/holds': { ok: [200] },
      'GET /api/pauses': { ok: [200] },
      'GET /api/disk': { ok: [200] },
      'POST /api/policies/{policy}/pause': { body: { reason: 'access test' }, ok: [200] },
      'POST /api/policies/{policy}/resume': { ok: [200] },
      'POST /api/pause': { body: { reason: 'access test' }, ok: [200] },
      'POST /api/resume': { ok: [200] },
      'POST /api/holds': { body: { policy: 'files', key: 'access-test', reason: 'access test' }, ok: [201] },
      'DELETE /api/holds/{id}': { ok: [200] },
      'POST /api/policies/{policy}/runs': { body: { dryRun: true }, ok: [202] },
      'GET /api/attention': { ok: [200] },
      'POST /api/policies/{policy}/attention/dismiss': {
        body: { key: 'access-test', reason: 'access test' },
        ok: [200],
      },
      // Nothing open in files (the streak below is one failure long): answered without a run.
      'POST /api/policies/{policy}/attention/retry': { ok: [200] },
    };
    await control.noteFailureStreaks({
      policy: 'files',
      runId: 'access-test',
      failed: [{ key: 'access-test', error: 'EPERM' }],
      settled: [],
      wholePass: false,
    });
    expect(operations.map(({ method, route }) => `${method} ${route}`).sort()).toEqual(Object.keys(examples).sort());
    for (const { method, route, access } of operations) {
      const example = examples[`${method} ${route}`]!;
      const holdId =
        method === 'DELETE'
          ? (
              await control.addHold({
                policy: 'files',
                key: 'to-remove',
                prefix: false,
                reason: 'r',
                createdBy: 'test',
              })
            ).id
          : 0;
      const concrete =
        route.replace('{policy}', 'files').replace('{runId}', runId).replace('{id}', String(holdId)) +
        (example.query ?? '');
      const send = (who: Who) =>
        call(method, concrete, { who, ...(example.body !== undefined ? { body: example.body } : {}) });
      const label = `${method} ${route}`;

      const anonymous = await send('none');
      if (access === 'public') expect(example.ok, label).toContain(anonymous.status);
      else expect([anonymous.status, anonymous.json?.error.code], label).toEqual([401, 'unauthorized']);

      const viewer = await send('viewer');
      if (access === 'operator') expect([viewer.status, viewer.json?.error.code], label).toEqual([403, 'forbidden']);
      else expect(example.ok, `${label}: ${viewer.text}`).toContain(viewer.status);

      const operator = await send('operator');
      expect(example.ok, `${label}: ${operator.text}`).toContain(operator.status);
      if (operator.status === 202) await server.api.launcher.get(operator.json.runId)!.finished;
    }
    // Undo what the operator's calls did, for the tests after this one.
    await call('POST', '/api/resume');
    await call('POST', '/api/policies/files/resume');
    for (const hold of await control.listHolds()) await control.removeHold(hold.id);
  });

  it('gives no data without a token: /healthz says only healthy or not', async () => {
    const anonymous = await call('GET', '/healthz', { who: 'none' });
    expect(Object.keys(anonymous.json)).toEqual(['status']);
    const viewer = await call('GET', '/healthz', { who: 'viewer' });
    // The Lambda health function's assessment: per policy, with problems (these never ran on schedule).
    expect(viewer.json.policies.map((policy: { policy: string }) => policy.policy)).toEqual(['files', 'slow']);
    expect(viewer.json.policies[0].problems.join()).toContain('missed');
    expect(viewer.status).toBe(viewer.json.status === 'healthy' ? 200 : 503);
  });

  it('refuses wrong, malformed and other-scheme credentials alike', async () => {
    for (const authorization of [
      `Bearer ${OPERATOR}x`,
      `Bearer ${OPERATOR.slice(0, -1)}`,
      `Basic ${OPERATOR}`,
      OPERATOR,
      'Bearer',
      `Bearer ${VIEWER} ${OPERATOR}`,
    ]) {
      const response = await fetch(`${server.url}/api/policies`, { headers: { authorization } });
      expect(response.status, authorization).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
    }
  });

  it('lists every route it serves in the OpenAPI document, and nothing else', async () => {
    const document = (await call('GET', '/api/openapi.json', { who: 'none' })).json;
    const documented = Object.entries(document.paths as Record<string, object>).flatMap(([route, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${route}`),
    );
    const served = server.api.app.routes
      .map((route) => `${route.method} ${openApiPath(route.path)}`)
      .filter((route) => !DASHBOARD_PATHS.some((asset) => route === `GET ${asset}`));
    expect([...new Set(served)].sort()).toEqual(documented.sort());
    // Bodies are documented from the schemas that check them.
    expect(document.paths['/api/holds'].post.requestBody.content['application/json'].schema.required).toEqual([
      'reason',
    ]);
  });
});

describe('REST API input', () => {
  const cases: Array<[string, string, { body?: unknown; rawBody?: string; actor?: string }, string]> = [
    ['POST', '/api/holds', { body: { key: 'a' } }, 'error: reason: missing (this field is required)'],
    [
      'POST',
      '/api/holds',
      { body: { key: 'a', prefix: 'b', reason: 'r' } },
      'error: key: give exactly one of key or prefix',
    ],
    ['POST', '/api/holds', { body: { prefix: '', reason: 'r' } }, 'error: prefix: must not be empty'],
    [
      'POST',
      '/api/holds',
      { body: { key: 'a', reason: 'r', policy: 'nope' } },
      'error: policy: no policy named "nope" (known: files, slow)',
    ],
    ['POST', '/api/policies/files/runs', { body: { dryrun: true } }, 'error: dryrun: unknown field "dryrun"'],
    ['POST', '/api/policies/files/runs', { body: { dryRun: 'yes' } }, 'error: dryRun: must be true or false'],
    ['POST', '/api/policies/files/runs', {}, 'error: dryRun: missing (this field is required)'],
    [
      'POST',
      '/api/policies/files/runs',
      { body: { dryRun: true, limit: 0 } },
      'error: limit: must be a whole number above 0',
    ],
    ['POST', '/api/policies/files/runs', { body: { dryRun: true, budget: '30' } }, 'error: budget:'],
    [
      'POST',
      '/api/policies/files/runs',
      { body: { dryRun: true, before: '2024-02-30' } },
      'error: before: "2024-02-30" is not a calendar date',
    ],
    ['POST', '/api/policies/files/pause', { body: { reason: '' } }, 'error: reason: must not be empty'],
    ['POST', '/api/resume', { body: { scope: '*' } }, 'error: scope: unknown field'],
    ['POST', '/api/pause', { rawBody: '{"reason": ' }, 'error: (body): is not JSON'],
    [
      'POST',
      '/api/pause',
      { body: { reason: 'x' }, actor: 'alice; rm -rf' },
      'error: X-Retention-Actor: must be 1 to 64 letters',
    ],
    ['GET', '/api/runs?limit=lots', {}, 'error: limit: must be a whole number from 1 to 1000'],
    ['GET', '/api/runs?policy=nope', {}, 'error: policy: no policy named "nope"'],
    ['GET', '/api/audit', {}, 'error: key: say which records'],
    ['DELETE', '/api/holds/abc', {}, 'error: id: is not a hold id'],
  ];
  it.each(cases)('%s %s %j → 400: %s', async (method, route, options, message) => {
    const response = await call(method, route, options);
    expect(response.status, response.text).toBe(400);
    expect(response.json.error.code).toBe('bad_request');
    expect(response.json.error.message).toContain(message);
    // Nothing was changed.
    expect(await control.listPauses()).toEqual([]);
    expect((await control.listHolds()).filter((hold) => hold.createdBy.startsWith('api:'))).toEqual([]);
  });

  it('answers unknown policies, runs and routes with 404 in the same error shape', async () => {
    for (const route of ['/api/policies/nope', '/api/runs/nope', '/api/nothing-here']) {
      const response = await call('GET', route);
      expect([response.status, response.json.error.code], route).toEqual([404, 'not_found']);
    }
    expect((await call('DELETE', '/api/holds/987654')).status).toBe(404);
  });
});

describe('REST API actions', () => {
  const actor = 'alice@example.com';

  it('records every action with the caller as actor, through the control store the CLI uses', async () => {
    expect((await call('GET', '/api/whoami', { actor })).json).toEqual({
      role: 'operator',
      actor: `api:operator:${actor}`,
    });
    expect((await call('POST', '/api/policies/files/pause', { body: { reason: 'incident 4411' }, actor })).status).toBe(
      200,
    );
    expect(await control.listPauses()).toEqual([
      expect.objectContaining({ scope: 'files', by: `api:operator:${actor}`, reason: 'incident 4411' }),
    ]);
    expect((await call('GET', '/api/policies/files', { who: 'viewer' })).json).toMatchObject({
      status: 'paused',
      paused: { by: `api:operator:${actor}` },
    });
    expect((await call('POST', '/api/policies/files/resume', { actor })).json).toMatchObject({ wasPaused: true });

    const hold = await call('POST', '/api/holds', {
      body: { policy: 'files', key: 'old-2.log', reason: 'litigation 17' },
      actor,
    });
    expect(hold.json).toMatchObject({
      policy: 'files',
      key: 'old-2.log',
      prefix: false,
      createdBy: `api:operator:${actor}`,
      checks: [{ policy: 'files', matched: true }],
    });

    const { runId, events } = await runToEnd('files', { dryRun: false }, actor);
    const done = events.at(-1)!;
    expect(done.event).toBe('done');
    expect(done.data).toMatchObject({
      runId,
      status: 'completed',
      deleted: 1,
      held: 1,
      trigger: 'manual',
      dryRun: false,
    });
    expect((await readdir(roots.files)).sort()).toEqual(['new.log', 'old-2.log']);
    const audit = (await call('GET', `/api/runs/${runId}/audit`, { who: 'viewer' })).json as Array<{
      key: string;
      status: string;
      actor: string;
    }>;
    expect(audit.map(({ key, status, actor: by }) => [key, status, by]).sort()).toEqual([
      ['old-1.log', 'deleted', `api:operator:${actor}`],
      ['old-2.log', 'held', `api:operator:${actor}`],
    ]);
    expect((await call('GET', '/api/audit?key=old-1.log', { who: 'viewer' })).json[0]).toMatchObject({
      runId,
      status: 'deleted',
    });

    expect((await call('DELETE', `/api/holds/${hold.json.id}`, { actor })).status).toBe(200);
    const logged = logLines.filter((line) =>
      ['policy_paused', 'policy_resumed', 'hold_added', 'hold_removed'].includes(line.event as string),
    );
    expect(logged.filter((line) => line.by === `api:operator:${actor}`).map((line) => line.event)).toEqual([
      'policy_paused',
      'policy_resumed',
      'hold_added',
      'hold_removed',
    ]);
    // The same governance records as the CLI's (invariant 13), the caller as actor.
    const governance = (await control.audit({ policy: 'files', limit: 1000 }))
      .filter((record) => record.actor === `api:operator:${actor}` && record.action !== 'delete')
      .map((record) => record.action);
    expect(governance.sort()).toEqual(['hold', 'hold_added', 'hold_removed', 'paused', 'resumed']);
  });

  it('says, as `hold add` does, when a new hold matches nothing in a policy (kept all the same)', async () => {
    const hold = await call('POST', '/api/holds', { body: { policy: 'files', key: 'old-9.log', reason: 'typo?' } });
    expect(hold.status).toBe(201);
    expect(hold.json.checks).toEqual([
      {
        policy: 'files',
        matched: false,
        warning: expect.stringMatching(
          /^hold #\d+ matches nothing in policy files \(yet\): check the key \(fs: a path/,
        ),
      },
    ]);
    expect((await control.listHolds('files')).map((entry) => entry.key)).toContain('old-9.log');
    expect((await call('DELETE', `/api/holds/${hold.json.id}`)).status).toBe(200);
  });

  it('stops a run in flight when its policy is paused through the API, before its next deletion', async () => {
    let reached!: () => void;
    let release!: () => void;
    const atSecondBatch = new Promise<void>((resolve) => (reached = resolve));
    gate = { calls: 0, reached, released: new Promise<void>((resolve) => (release = resolve)) };
    try {
      const started = await call('POST', '/api/policies/slow/runs', { body: { dryRun: false }, actor });
      expect(started.status).toBe(202);
      const stream = call('GET', `/api/runs/${started.json.runId}/events`, { who: 'viewer' });
      await atSecondBatch;
      expect((await call('POST', '/api/policies/slow/pause', { body: { reason: 'stop now' }, actor })).status).toBe(
        200,
      );
      release();
      const events = parseEvents((await stream).text);
      // Progress stopped at the first batch: the second was never deleted.
      const progress = events.filter((event) => event.event === 'progress');
      expect(progress.at(-1)).toMatchObject({ data: { deleted: 5, planned: 30, fraction: 5 / 30 } });
      expect(events.at(-1)).toMatchObject({
        event: 'done',
        data: { status: 'partial', stopReason: 'paused', deleted: 5 },
      });
      expect(events.at(-1)!.data.error.message).toContain(`paused by api:operator:${actor} (stop now)`);
      expect(await readdir(roots.slow)).toHaveLength(25);
      const audit = await control.audit({ runId: started.json.runId, limit: 100 });
      expect(audit.filter((record) => record.status === 'deleted')).toHaveLength(5);
      expect(audit.filter((record) => record.status === 'abandoned')).toHaveLength(5);
    } finally {
      gate = null;
      await call('POST', '/api/policies/slow/resume');
    }
  });

  it('shows the run in history, its items, the overview and the chart series', async () => {
    const { runId } = await runToEnd('slow', { dryRun: true, list: true });
    const items = (await call('GET', `/api/runs/${runId}/items?limit=10&offset=20`, { who: 'viewer' })).json;
    expect(items).toMatchObject({ runId, listed: true, total: 25, bytesToFree: 25 * 'content of f-00.bin'.length });
    expect(items.items).toHaveLength(5);
    const overview = (await call('GET', '/api/overview', { who: 'viewer' })).json;
    expect(overview).toMatchObject({
      policies: 2,
      itemsToClean: 25,
      unmeasured: [],
      bytesToFreeFrom: ['files', 'slow'],
      deletedLast30d: 6,
      running: 0,
      attentionOpen: 0,
    });
    const stats = (await call('GET', '/api/stats?days=3', { who: 'viewer' })).json;
    expect(stats.days.map((day: { deleted: number }) => day.deleted)).toEqual([0, 0, 6]);
    const history = (await call('GET', '/api/runs?policy=slow', { who: 'viewer' })).json;
    expect(history[0]).toMatchObject({ runId, dryRun: true, status: 'completed', itemCount: 25 });
    expect(history[0].report.items).toBeUndefined();
  });

  it('lists the attention queue for viewers; an operator dismisses (recorded) and retries from the start of the scope', async () => {
    const fail = (runId: string, keys: string[]) =>
      control.noteFailureStreaks({
        policy: 'files',
        runId,
        failed: keys.map((key) => ({ key, error: 'EPERM: operation not permitted' })),
        settled: [],
        wholePass: false,
      });
    for (const runId of ['r1', 'r2', 'r3']) await fail(runId, ['stuck.log', 'other.log']);
    const listed = await call('GET', '/api/attention', { who: 'viewer' });
    expect(listed.json[0]).toMatchObject({ policy: 'files', after: 3, open: 2 });
    expect(listed.json[0].items[0]).toEqual({
      policy: 'files',
      key: 'other.log',
      failures: 3,
      open: true,
      firstFailedAt: expect.any(String),
      lastFailedAt: expect.any(String),
      lastRunId: 'r3',
      lastError: 'EPERM: operation not permitted',
      dismissed: null,
    });
    expect(listed.json[1]).toMatchObject({ policy: 'slow', open: 0, items: [] });

    const missing = await call('POST', '/api/policies/files/attention/dismiss', { body: { key: 'stuck.log' }, actor });
    expect([missing.status, missing.json.error.message]).toEqual([
      400,
      'error: reason: missing (this field is required)',
    ]);
    const unknown = await call('POST', '/api/policies/files/attention/dismiss', {
      body: { key: 'no.log', reason: 'r' },
    });
    expect(unknown.status).toBe(404);
    const body = { key: 'other.log', reason: 'owned by team X' };
    const dismissed = await call('POST', '/api/policies/files/attention/dismiss', { body, actor });
    expect(dismissed.json).toMatchObject({ dismissed: true, failures: 3, by: `api:operator:${actor}` });
    const [record] = await control.audit({
      policy: 'files',
      action: 'attention_dismissed',
      key: 'other.log',
      limit: 5,
    });
    expect(record).toMatchObject({ actor: `api:operator:${actor}`, rule: 'owned by team X', runId: 'r3' });
    expect((await call('GET', '/api/attention', { who: 'viewer' })).json[0].open).toBe(1);
    expect((await call('GET', '/api/overview', { who: 'viewer' })).json.attentionOpen).toBe(1);

    // Neither item exists: the retry's whole pass no longer meets them, and their streaks end.
    const retry = await call('POST', '/api/policies/files/attention/retry', { actor });
    expect(retry.status, retry.text).toBe(202);
    await server.api.launcher.get(retry.json.runId)!.finished;
    expect((await control.getRun(retry.json.runId))?.report).toMatchObject({ attention: { open: 0, after: 3 } });
    expect((await call('GET', '/api/attention', { who: 'viewer' })).json[0]).toMatchObject({ open: 0, items: [] });
  });
});

describe('retention serve', () => {
  it('refuses to start without a token (exit 2, nothing opened), or with a guessable or shared one', async () => {
    const dir = path.join(shared.scratch, 'serve-config');
    await mkdir(dir, { recursive: true });
    const config = path.join(dir, 'retention.json');
    await writeFile(
      config,
      JSON.stringify({
        policies: [
          {
            name: 'files',
            class: 'blobs',
            store: { kind: 'fs', root: roots.files },
            retention: '30d',
            schedule: '0 * * * *',
          },
        ],
      }),
    );
    const home = path.join(dir, 'home');
    const none = await runCli(['--config', config, 'serve', '--port', '0'], {
      env: { RETENTION_API_TOKEN: '', RETENTION_VIEWER_TOKEN: '', RETENTION_HOME: home },
    });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(
      'error: RETENTION_API_TOKEN: neither RETENTION_API_TOKEN (operator) nor RETENTION_VIEWER_TOKEN (read only) is',
    );
    // The other refusals come from the same check (in-process: a CLI start costs seconds).
    expect(() => tokensFromEnv({ RETENTION_VIEWER_TOKEN: 'secret' })).toThrow(
      'error: RETENTION_VIEWER_TOKEN: is 6 characters long, shorter than 16',
    );
    expect(() => tokensFromEnv({ RETENTION_API_TOKEN: OPERATOR, RETENTION_VIEWER_TOKEN: OPERATOR })).toThrow(
      'error: RETENTION_VIEWER_TOKEN: equals RETENTION_API_TOKEN',
    );
    expect(tokensFromEnv({ RETENTION_VIEWER_TOKEN: VIEWER })).toEqual({ viewer: VIEWER });
    // The control store was never opened: no embedded server was started in the home.
    await expect(readdir(home)).rejects.toThrow();
  });
});

describe('disk cards', () => {
  it('GET /api/disk: the file system under both roots, once, with its policies, percent used and level', async () => {
    const response = await call('GET', '/api/disk', { who: 'viewer' });
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ warning: 80, critical: 90 });
    expect(response.json.filesystems).toHaveLength(1);
    const [filesystem] = response.json.filesystems;
    expect(filesystem).toMatchObject({ roots: [roots.files, roots.slow], policies: ['files', 'slow'] });
    expect(['ok', 'warning', 'critical']).toContain(filesystem.level);
    expect(filesystem.usedPercent).toBeGreaterThan(0);
  });
});
