import { readdir } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { invokeCommand } from '../../lib/cli/invoke.ts';
import { CONTROL_LOADERS } from '../../lib/control/registry.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { createHealthHandler, type HttpResponse } from '../../lib/serverless/healthHandler.ts';
import { type HandlerResult, isErrorResult } from '../../lib/serverless/result.ts';
import { createRuntime } from '../../lib/serverless/runtime.ts';
import { seedFiles } from '../support/cli.ts';
import {
  type FixtureOptions,
  FUNCTION_NAME,
  failingScans,
  type HandlerFixture,
  handlerFixture,
  lambdaContext,
  slowDeletes,
} from '../support/handlerFixture.ts';
import { type LambdaStandIn, startLambdaStandIn } from '../support/lambda.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { type SentryIngest, startSentryIngest } from '../support/sentryIngest.ts';

/**
 * The data-class and health handlers in-process with a fake Lambda context, against embedded
 * PostgreSQL, a directory store, a local Sentry ingest and a local Lambda API.
 */
const DAY = 86_400_000;
const shared = usePostgresAndScratch('retention-handlers-');
let ingest: SentryIngest;
let lambda: LambdaStandIn;
const fixtures: HandlerFixture[] = [];

beforeAll(async () => {
  [ingest, lambda] = await Promise.all([startSentryIngest(), startLambdaStandIn()]);
});
afterAll(async () => {
  await Promise.all([ingest?.stop(), lambda?.stop()]);
});
beforeEach(() => ingest.clear());
afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((fixture) => fixture.runtime.close()));
});

async function deployment(
  options: FixtureOptions & { oldFiles?: number; youngFiles?: number } = {},
): Promise<HandlerFixture> {
  const fixture = await handlerFixture(shared.server, shared.scratch, {
    sentryDsn: ingest.dsn,
    lambda: lambda.client,
    ...options,
  });
  fixtures.push(fixture);
  const old = Array.from({ length: options.oldFiles ?? 3 }, (_, index) => ({
    key: `old/${index}.bin`,
    mtime: new Date(Date.now() - 40 * DAY),
  }));
  const young = Array.from({ length: options.youngFiles ?? 1 }, (_, index) => ({
    key: `young/${index}.bin`,
    mtime: new Date(Date.now() - DAY),
  }));
  await seedFiles(fixture.root, [...old, ...young]);
  return fixture;
}

function report(result: HandlerResult): RunReport {
  if (isErrorResult(result)) throw new Error(`expected a run report, got ${result.error.message}`);
  return result;
}

const fileCount = async (root: string) =>
  (await readdir(root, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).length;

const CLOUDWATCH_UNITS = new Set([
  'Seconds',
  'Microseconds',
  'Milliseconds',
  'Bytes',
  'Kilobytes',
  'Megabytes',
  'Gigabytes',
  'Terabytes',
  'Bits',
  'Kilobits',
  'Megabits',
  'Gigabits',
  'Terabits',
  'Percent',
  'Count',
  'Bytes/Second',
  'Kilobytes/Second',
  'Megabytes/Second',
  'Gigabytes/Second',
  'Terabytes/Second',
  'Bits/Second',
  'Kilobits/Second',
  'Megabits/Second',
  'Gigabits/Second',
  'Terabits/Second',
  'Count/Second',
  'None',
]);

/** The EMF specification's rules for one document, as CloudWatch enforces them. */
function expectValidEmf(document: Record<string, unknown>): void {
  const metadata = document._aws as {
    Timestamp: unknown;
    CloudWatchMetrics: Array<{
      Namespace: unknown;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit?: string }>;
    }>;
  };
  expect(Number.isInteger(metadata.Timestamp)).toBe(true);
  expect(metadata.CloudWatchMetrics).toHaveLength(1);
  const [directive] = metadata.CloudWatchMetrics;
  expect(directive!.Namespace).toBe('Retention');
  expect(directive!.Dimensions).toEqual([['policy']]);
  for (const key of directive!.Dimensions.flat()) expect(typeof document[key]).toBe('string');
  expect(directive!.Metrics.length).toBeGreaterThan(0);
  expect(directive!.Metrics.length).toBeLessThanOrEqual(100);
  expect(new Set(directive!.Metrics.map((metric) => metric.Name)).size).toBe(directive!.Metrics.length);
  for (const metric of directive!.Metrics) {
    expect(CLOUDWATCH_UNITS.has(metric.Unit ?? 'None'), metric.Name).toBe(true);
    expect(Number.isFinite(document[metric.Name]), metric.Name).toBe(true);
  }
  const names = directive!.Metrics.map((metric) => metric.Name);
  expect(names).toEqual(
    expect.arrayContaining([
      'Deleted',
      'Failed',
      'Held',
      'DurationSeconds',
      'BudgetUsedPercent',
      'Backlog',
      'OldestOverdueSeconds',
      'SlaBreach',
    ]),
  );
}

describe('data-class handler', () => {
  it('refuses a bad payload with field paths and touches nothing', async () => {
    const f = await deployment();
    const cases: Array<[unknown, string]> = [
      [{ policy: 'files', dryrun: true }, 'payload: unknown field "dryrun"'],
      [{ policy: 'files', limit: -1 }, 'payload.limit'],
      [{ policy: 'files', before: 'yesterday' }, 'payload.before'],
      [{ policy: 'files', continue: true, dryRun: true }, 'payload.continue: cannot be combined with dryRun'],
      [{ policy: 'files', hop: 21, continue: true }, 'payload.hop'],
      ['files', 'payload'],
    ];
    for (const [event, expected] of cases) {
      const result = await f.handler(event);
      expect(isErrorResult(result) && result.error.code, JSON.stringify(event)).toBe('bad_payload');
      expect(isErrorResult(result) && result.error.message).toContain(`error: ${expected}`);
    }
    const unknown = await f.handler({ policy: 'nope' });
    expect(isErrorResult(unknown) && unknown.error).toMatchObject({
      code: 'unknown_policy',
      issues: [{ path: 'payload.policy', fix: 'known in class blobs: files' }],
    });
    expect(await fileCount(f.root)).toBe(4);
    const { control } = await f.runtime.ready();
    expect(await control.listRuns({ limit: 10 })).toEqual([]);
  });

  it('refuses a policy of another data class', async () => {
    const f = await deployment({ dataClass: 'rows' });
    const result = await f.handler({ policy: 'files' });
    expect(isErrorResult(result) && result.error).toMatchObject({
      code: 'wrong_data_class',
      issues: [{ fix: 'invoke the blobs function' }],
    });
    expect(await fileCount(f.root)).toBe(4);
  });

  it('runs a scheduled event: check-ins in_progress then ok, and one valid EMF line', async () => {
    const f = await deployment();
    const run = report(await f.handler({ policy: 'files', trigger: 'scheduled' }));
    expect(run).toMatchObject({
      policy: 'files',
      trigger: 'scheduled',
      status: 'completed',
      deleted: 3,
      sla: { status: 'ok' },
    });
    expect(await fileCount(f.root)).toBe(1);

    const checkIns = ingest.checkIns();
    expect(checkIns.map((checkIn) => checkIn.status)).toEqual(['in_progress', 'ok']);
    expect(new Set(checkIns.map((checkIn) => checkIn.check_in_id)).size).toBe(1);
    expect(checkIns[1]!.duration).toBeGreaterThanOrEqual(0);
    expect(checkIns[0]).toMatchObject({
      monitor_slug: 'files',
      monitor_config: {
        schedule: { type: 'crontab', value: '0 * * * *' },
        checkin_margin: 5,
        max_runtime: 11,
        timezone: 'Etc/UTC',
      },
    });
    expect(ingest.events()).toEqual([]);

    const emf = f.lines.filter((line) => '_aws' in line);
    expect(emf).toHaveLength(1);
    expectValidEmf(emf[0]!);
    expect(emf[0]).toMatchObject({ policy: 'files', Deleted: 3, SlaBreach: 0, correlation_id: run.runId });
    expect(f.lines.find((line) => line.event === 'run_completed')).toMatchObject({
      correlation_id: run.runId,
      request_id: expect.any(String),
    });
  });

  it('recognises a raw EventBridge scheduled event', async () => {
    const f = await deployment();
    const event = {
      version: '0',
      id: 'e1',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      time: new Date().toISOString(),
      detail: { policy: 'files' },
    };
    expect(report(await f.handler(event))).toMatchObject({ trigger: 'scheduled', status: 'completed' });
  });

  it('an SLA breach is a Sentry error event fingerprinted [policy, reason], and the check-in errs', async () => {
    const f = await deployment({ policy: { limits: { maxDeletesPerRun: 2, maxDeleteFraction: 1 } } });
    const run = report(await f.handler({ policy: 'files' }));
    expect(run).toMatchObject({ status: 'aborted_limit', trigger: 'manual', deleted: 0, sla: { status: 'breach' } });
    expect(await fileCount(f.root)).toBe(4);
    expect(ingest.checkIns().map((checkIn) => checkIn.status)).toEqual(['in_progress', 'error']);
    // One event per reason: the limit, and the backlog it left overdue.
    const events = ingest.events();
    expect(events.map((event) => event.fingerprint)).toEqual([
      ['files', 'limit'],
      ['files', 'overdue'],
    ]);
    expect(events[0]).toMatchObject({
      level: 'error',
      fingerprint: ['files', 'limit'],
      tags: { policy: 'files', data_class: 'blobs', store: `fs:${f.root}`, status: 'aborted_limit', run_id: run.runId },
      contexts: { run_report: { runId: run.runId, status: 'aborted_limit', sla: { status: 'breach' } } },
    });
  });

  it('an SLA warning (paused policy) is a warning event; a dry run raises none and does not check in', async () => {
    const f = await deployment();
    const { control } = await f.runtime.ready();
    await control.pause('files', 'test', 'maintenance');
    expect(report(await f.handler({ policy: 'files', trigger: 'scheduled' })).status).toBe('skipped_paused');
    expect(ingest.events()).toMatchObject([{ level: 'warning', fingerprint: ['files', 'paused'] }]);
    expect(ingest.checkIns().map((checkIn) => checkIn.status)).toEqual(['in_progress', 'ok']);

    ingest.clear();
    await control.resume('files');
    expect(report(await f.handler({ policy: 'files', dryRun: true, limit: 1 }))).toMatchObject({
      dryRun: true,
      status: 'completed',
      eligible: 1,
    });
    expect(ingest.items).toEqual([]);
  });

  it('ends the run partial before the invocation deadline', async () => {
    const remainingMs = 2_500;
    const f = await deployment({
      oldFiles: 40,
      policy: { batchSize: 4 },
      wrapStore: slowDeletes(150),
      handler: { deadlineMarginMs: 1_500 },
      remainingMs,
    });
    const started = Date.now();
    const run = report(await f.handler({ policy: 'files' }));
    expect(Date.now() - started).toBeLessThan(remainingMs);
    expect(run.status).toBe('partial');
    expect(run.budgetSeconds).toBeLessThanOrEqual(1);
    expect(run.deleted).toBeGreaterThan(0);
    expect(run.deleted).toBeLessThan(40);
    expect(f.lines.some((line) => line.event === 'budget_exhausted')).toBe(true);
  });

  it('continue: true re-invokes itself with hop + 1 and stops at the hop bound', async () => {
    const f = await deployment({
      oldFiles: 60,
      policy: { batchSize: 2 },
      wrapStore: slowDeletes(100),
      handler: { deadlineMarginMs: 1_600, maxHops: 3 },
      remainingMs: 1_800,
    });
    const reports: RunReport[] = [];
    lambda.register(FUNCTION_NAME, async (payload) =>
      reports.push(report(await f.handler(payload, lambdaContext(1_800)))),
    );
    lambda.invocations.splice(0);

    reports.push(report(await f.handler({ policy: 'files', continue: true })));
    await lambda.idle();
    expect(lambda.invocations.map((invocation) => [invocation.type, invocation.payload])).toEqual(
      [1, 2, 3].map((hop) => ['Event', { policy: 'files', continue: true, hop }]),
    );
    expect(reports.map((run) => [run.trigger, run.status])).toEqual(Array(4).fill(['backfill', 'partial']));
    expect(f.lines.find((line) => line.event === 'continuation_stopped')).toMatchObject({
      reason: 'hop bound 3 reached',
      hop: 3,
    });
    expect(await fileCount(f.root)).toBe(61 - reports.reduce((sum, run) => sum + run.deleted, 0));
  });

  it('a failed run is reported, checked in as error and alerted with its run id', async () => {
    const f = await deployment({ wrapStore: failingScans('bucket went away') });
    const run = report(await f.handler({ policy: 'files', trigger: 'scheduled' }));
    expect(run).toMatchObject({ status: 'failed', error: { message: 'bucket went away' } });
    expect(ingest.checkIns().map((checkIn) => checkIn.status)).toEqual(['in_progress', 'error']);
    const failure = ingest.events().find((event) => event.fingerprint?.[1] === 'run_failed');
    expect(failure).toMatchObject({
      level: 'error',
      fingerprint: ['files', 'run_failed'],
      tags: { run_id: run.runId, status: 'failed' },
      message: expect.stringContaining('bucket went away'),
    });
  });

  it('the deployed entry point (functions/blobs.ts) reads its secrets from the environment without SST links', async () => {
    const f = await deployment();
    const env = { RETENTION_CONFIG: f.configPath, RETENTION_DATABASE_URL: f.databaseUrl, RETENTION_LOG_LEVEL: 'error' };
    Object.assign(process.env, env);
    try {
      const { handler } = await import('../../functions/blobs.ts');
      expect(report(await handler({ policy: 'files', dryRun: true }, lambdaContext(10_000)))).toMatchObject({
        policy: 'files',
        dryRun: true,
        eligible: 3,
      });
    } finally {
      for (const key of Object.keys(env)) delete process.env[key];
    }
  });

  it('retention invoke calls the deployed function and prints its report', async () => {
    const f = await deployment();
    lambda.register('custom-blobs', (payload) => f.handler(payload));
    const out: string[] = [];
    const io = {
      stdout: { write: (line: string) => void out.push(line) },
      stderr: { write: (line: string) => void out.push(line) },
      env: { RETENTION_FUNCTION_BLOBS: 'custom-blobs' },
      cwd: shared.scratch,
    };
    expect(await invokeCommand(io, f.configPath, 'files', { json: true, dryRun: true }, lambda.client)).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ policy: 'files', dryRun: true, trigger: 'manual', eligible: 3 });
    out.splice(0);
    expect(await invokeCommand(io, f.configPath, 'files', { dryRun: true, continue: true }, lambda.client)).toBe(2);
    expect(out.join('')).toContain('error: payload.continue: cannot be combined with dryRun');
  });
});

describe('health handler', () => {
  const TOKEN = 'health-token-for-tests';
  async function health(
    f: HandlerFixture,
    authorization?: string,
  ): Promise<HttpResponse & { json: Record<string, unknown> }> {
    const runtime = createRuntime({
      controls: CONTROL_LOADERS,
      env: { RETENTION_CONFIG: f.configPath },
      databaseUrl: f.databaseUrl,
      sink: { write: () => undefined },
    });
    try {
      const response = await createHealthHandler(runtime, { token: TOKEN })({
        headers: authorization ? { authorization } : {},
        requestContext: { http: { method: 'GET' } },
      });
      return { ...response, json: JSON.parse(response.body) as Record<string, unknown> };
    } finally {
      await runtime.close();
    }
  }

  it('answers 401 without the bearer token, and no data', async () => {
    const f = await deployment();
    for (const authorization of [undefined, `Bearer ${TOKEN}x`, TOKEN, 'Bearer ']) {
      const response = await health(f, authorization);
      expect(response.statusCode).toBe(401);
      expect(response.json).toEqual({ error: 'unauthorized' });
    }
  });

  it('is 503 before any run (missed), 200 after a good run, 503 after a breach or a failure', async () => {
    const f = await deployment({ policy: { limits: { maxDeletesPerRun: 2, maxDeleteFraction: 1 } } });
    const before = await health(f, `Bearer ${TOKEN}`);
    expect(before.statusCode).toBe(503);
    expect(before.json).toMatchObject({
      status: 'unhealthy',
      policies: [
        { policy: 'files', status: 'unhealthy', problems: [expect.stringMatching(/^missed: no run recorded/)] },
      ],
    });

    expect(report(await f.handler({ policy: 'files', trigger: 'scheduled' })).status).toBe('aborted_limit');
    const breached = await health(f, `Bearer ${TOKEN}`);
    expect(breached.statusCode).toBe(503);
    expect(breached.json).toMatchObject({
      policies: [{ sla_status: 'breach', problems: [expect.stringMatching(/^sla breach: run .*: limit:/)] }],
    });

    const good = report(await f.handler({ policy: 'files', force: true }));
    expect(good).toMatchObject({ status: 'completed', deleted: 3, sla: { status: 'ok' } });
    const healthy = await health(f, `bearer ${TOKEN}`);
    expect(healthy.statusCode).toBe(200);
    expect(healthy.json).toMatchObject({
      status: 'healthy',
      policies: [
        {
          policy: 'files',
          status: 'healthy',
          problems: [],
          last_run: { run_id: good.runId, status: 'completed' },
          deleted_last_24h: 3,
          failed_last_24h: 0,
          sla_status: 'ok',
          oldest_overdue_seconds: 0,
          next_run: expect.any(String),
          window_complete: true,
        },
      ],
    });

    const failing = await deployment({ wrapStore: failingScans('disk gone') });
    expect(report(await failing.handler({ policy: 'files', trigger: 'scheduled' })).status).toBe('failed');
    const failed = await health(failing, `Bearer ${TOKEN}`);
    expect(failed.statusCode).toBe(503);
    expect(failed.json).toMatchObject({
      policies: [{ problems: expect.arrayContaining([expect.stringMatching(/^failed: run .*: disk gone/)]) }],
    });
  });
});
