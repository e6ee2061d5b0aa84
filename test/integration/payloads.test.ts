import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { createHealthHandler, type FunctionUrlEvent } from '../../lib/serverless/healthHandler.ts';
import { type HandlerResult, isErrorResult } from '../../lib/serverless/result.ts';
import { seedFiles } from '../support/cli.ts';
import {
  type FixtureOptions,
  FUNCTION_NAME,
  type HandlerFixture,
  handlerFixture,
  slowDeletes,
} from '../support/handlerFixture.ts';
import { type LambdaStandIn, startLambdaStandIn } from '../support/lambda.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * Every shape a data-class function accepts × every payload field, through the real handler
 * against embedded PostgreSQL and a directory store: each field is honoured (what is deleted shows
 * it) or the event is refused as `bad_payload` naming the field, with nothing touched. A dry run
 * sent in a scheduler envelope used to run live: the envelope's `detail` was parsed loosely.
 */
const DAY = 86_400_000;
const shared = usePostgresAndScratch('retention-payloads-');
let lambda: LambdaStandIn;
/** One deployment for every case (each reseeds the files it needs); fixtures cost a database each. */
let f: HandlerFixture;
const fixtures: HandlerFixture[] = [];

beforeAll(async () => {
  lambda = await startLambdaStandIn();
  f = await deployment();
});
afterAll(async () => {
  await Promise.all(fixtures.splice(0).map((fixture) => fixture.runtime.close()));
  await lambda?.stop();
});

/** Three files past the 30d retention (60, 50 and 40 days old) and one young file. */
const FILES = [
  { key: 'old/60d.bin', ageDays: 60 },
  { key: 'old/50d.bin', ageDays: 50 },
  { key: 'old/40d.bin', ageDays: 40 },
  { key: 'young/1d.bin', ageDays: 1 },
];
const ALL = FILES.map((file) => file.key).sort();

async function deployment(options: FixtureOptions = {}): Promise<HandlerFixture> {
  // At most 2 deletions per run: the 3 eligible files abort a run unless `force` or `limit` is honoured.
  const policy = { limits: { maxDeletesPerRun: 2, maxDeleteFraction: 1 }, ...options.policy };
  const fixture = await handlerFixture(shared.server, shared.scratch, { lambda: lambda.client, ...options, policy });
  fixtures.push(fixture);
  return fixture;
}

async function reseed(root: string): Promise<void> {
  await rm(root, { recursive: true, force: true });
  await seedFiles(
    root,
    FILES.map((file) => ({ key: file.key, mtime: new Date(Date.now() - file.ageDays * DAY) })),
  );
}

async function filesLeft(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}

function report(result: HandlerResult): RunReport {
  if (isErrorResult(result)) throw new Error(`expected a run report, got ${result.error.message}`);
  return result;
}

interface Shape {
  name: string;
  wrap: (fields: Record<string, unknown>) => unknown;
  /** Where the payload fields sit, as error paths name it. */
  at: string;
  trigger: 'scheduled' | 'manual';
}

const SHAPES: Shape[] = [
  {
    name: 'EventBridge rule envelope (aws.events)',
    wrap: (detail) => ({
      version: '0',
      id: '7bf73129-1428-4cd3-a780-95db273d1602',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: '2026-01-01T02:00:00Z',
      region: 'eu-west-1',
      resources: ['arn:aws:events:eu-west-1:123456789012:rule/files'],
      detail,
    }),
    at: 'payload.detail',
    trigger: 'scheduled',
  },
  {
    name: 'EventBridge Scheduler envelope (aws.scheduler)',
    wrap: (detail) => ({ 'detail-type': 'Scheduled Event', source: 'aws.scheduler', detail }),
    at: 'payload.detail',
    trigger: 'scheduled',
  },
  {
    name: 'deployed schedule input',
    wrap: (fields) => ({ ...fields, trigger: 'scheduled' }),
    at: 'payload',
    trigger: 'scheduled',
  },
  { name: 'manual payload', wrap: (fields) => fields, at: 'payload', trigger: 'manual' },
];

const daysAgo = (days: number) => new Date(Date.now() - days * DAY).toISOString();

/** Payload fields → what the run must have done: its report, and the files left afterwards. */
const HONOURED: Array<[string, Record<string, unknown>, Partial<RunReport>, string[]]> = [
  ['no field: the limits abort the run', {}, { status: 'aborted_limit', dryRun: false, deleted: 0 }, ALL],
  [
    'dryRun: deletes nothing, even forced',
    { dryRun: true, force: true },
    { status: 'completed', dryRun: true, eligible: 3, deleted: 0 },
    ALL,
  ],
  [
    'limit: the oldest only',
    { limit: 1 },
    { status: 'completed', deleted: 1 },
    ['old/40d.bin', 'old/50d.bin', 'young/1d.bin'],
  ],
  [
    'before: a tighter cutoff',
    { before: daysAgo(45) },
    { status: 'completed', deleted: 2 },
    ['old/40d.bin', 'young/1d.bin'],
  ],
  ['force: past the limits', { force: true }, { status: 'completed', deleted: 3 }, ['young/1d.bin']],
  [
    "list, actor and budget (the cloud API's): every item in the report",
    { force: true, list: true, actor: 'api:operator:alice', budget: '5m' },
    {
      status: 'completed',
      deleted: 3,
      items: expect.arrayContaining([expect.objectContaining({ key: 'old/40d.bin', outcome: 'deleted' })]),
    },
    ['young/1d.bin'],
  ],
  [
    'continue and hop: accepted, nothing left to continue',
    { force: true, continue: true, hop: 2 },
    { status: 'completed', deleted: 3 },
    ['young/1d.bin'],
  ],
];

/** Payload fields → the path under the shape's `at` and the start of the message. */
const REFUSED: Array<[Record<string, unknown>, string, string]> = [
  [{ dryrun: true }, '', 'unknown field "dryrun" (remove it or check its spelling)'],
  [{ dryRun: 'yes' }, '.dryRun', 'must be true or false'],
  [{ limit: 0 }, '.limit', 'must be a whole number above 0, e.g. 100'],
  [{ limit: 1.5 }, '.limit', 'must be a whole number above 0, e.g. 100'],
  [
    { before: '2024-02-30' },
    '.before',
    '"2024-02-30" is not a calendar date: February 2024 has 29 days (use a day from 01 to 29)',
  ],
  [{ before: '2024-01-31T25:00:00Z' }, '.before', '"2024-01-31T25:00:00Z" is not a time of day'],
  [{ before: '2024-01-31T00:00:00' }, '.before', '"2024-01-31T00:00:00" has no time zone'],
  [{ before: 20240131 }, '.before', 'must be an ISO date'],
  [{ force: 1 }, '.force', 'must be true or false'],
  [{ limit: '5' }, '.limit', 'must be a whole number above 0'],
  [{ continue: 'true' }, '.continue', 'must be true or false'],
  [{ continue: true, dryRun: true }, '.continue', 'cannot be combined with dryRun'],
  [{ continue: true, limit: 1 }, '.continue', 'cannot be combined with limit'],
  [{ continue: true, hop: 21 }, '.hop', 'must be a whole number from 0 to 20'],
  [{ runId: 'run-1' }, '.runId', 'must be a run id such as "20240131T020000Z-1a2b3c"'],
  [{ continue: true, runId: '20240131T020000Z-1a2b3c' }, '.continue', 'cannot be combined with runId'],
  [{ actor: 'alice smith' }, '.actor', 'must be 1 to 100 letters, digits or . _ : @ + -'],
  [{ list: 'yes' }, '.list', 'must be true or false'],
  [{ budget: '5' }, '.budget', '"5" has no unit'],
  [{ policy: undefined }, '.policy', 'missing (this field is required)'],
  [{ policy: '' }, '.policy', 'must name a policy'],
];

async function runCount(): Promise<number> {
  const { control } = await f.runtime.ready();
  return (await control.listRuns({ limit: 1000 })).length;
}

describe.each(SHAPES)('$name', (shape) => {
  it('honours every payload field: what is deleted shows it', async () => {
    for (const [what, fields, expected, left] of HONOURED) {
      await reseed(f.root);
      const run = report(await f.handler(shape.wrap({ policy: 'files', ...fields })));
      const trigger = shape.trigger === 'manual' && fields.continue ? 'backfill' : shape.trigger;
      expect(run, what).toMatchObject({ ...expected, trigger, policy: 'files' });
      expect(await filesLeft(f.root), what).toEqual(left);
    }
    expect(lambda.invocations).toEqual([]);
  });

  it('refuses a bad field as bad_payload naming it, and touches nothing', async () => {
    await reseed(f.root);
    const runs = await runCount();
    for (const [fields, suffix, message] of REFUSED) {
      // Through JSON, as Lambda delivers it (`policy: undefined` is then absent).
      const result = await f.handler(shape.wrap(JSON.parse(JSON.stringify({ policy: 'files', ...fields }))));
      expect(isErrorResult(result) && result.error.code, JSON.stringify(fields)).toBe('bad_payload');
      expect(isErrorResult(result) && result.error.message, JSON.stringify(fields)).toContain(
        `error: ${shape.at}${suffix}: ${message}`,
      );
    }
    expect(await filesLeft(f.root)).toEqual(ALL);
    expect(await runCount()).toBe(runs);
  });
});

describe('scheduler envelopes', () => {
  it('continue in an envelope re-invokes the function with the same fields and hop + 1', async () => {
    // A budget of at most 1.5 s and 0.8 s per delete batch: after the first batch no second one fits.
    const slow = await deployment({
      policy: { batchSize: 1 },
      wrapStore: slowDeletes(800),
      handler: { deadlineMarginMs: 1_500, maxHops: 1 },
      remainingMs: 3_000,
    });
    await Promise.all([reseed(slow.root), slow.runtime.ready()]);
    lambda.register(FUNCTION_NAME, async () => undefined);
    const run = report(await slow.handler(SHAPES[1]!.wrap({ policy: 'files', force: true, continue: true })));
    await lambda.idle();
    expect(run).toMatchObject({ trigger: 'scheduled', status: 'partial' });
    expect(lambda.invocations.splice(0).map((invocation) => [invocation.type, invocation.payload])).toEqual([
      ['Event', { policy: 'files', force: true, continue: true, hop: 1 }],
    ]);
  });

  it('refuses envelopes and events of any other shape as bad_payload, and touches nothing', async () => {
    const cases: Array<[unknown, string]> = [
      [
        { 'detail-type': 'Scheduled Event', source: 'aws.events', dryRun: true, detail: { policy: 'files' } },
        'payload: unknown field "dryRun"',
      ],
      [{ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: 'files' }, 'payload.detail:'],
      [{ 'detail-type': 'Scheduled Event', source: 'aws.events' }, 'payload.detail: missing'],
      [
        { 'detail-type': 'Object Created', source: 'aws.events', detail: { policy: 'files' } },
        'payload["detail-type"]:',
      ],
      [{ 'detail-type': 'Scheduled Event', source: 'aws.s3', detail: { policy: 'files' } }, 'payload.source:'],
      [
        {
          'detail-type': 'Scheduled Event',
          source: 'aws.events',
          resources: 'rule/files',
          detail: { policy: 'files' },
        },
        'payload.resources:',
      ],
      [{ policy: 'files', trigger: 'manual' }, 'payload.trigger:'],
      [{ policy: 'files', detail: { dryRun: true } }, 'payload: unknown field "detail"'],
      [null, 'payload: must be a JSON object, got null'],
      [[{ policy: 'files' }], 'payload: must be a JSON object, got an array'],
      ['files', 'payload: must be a JSON object, got string'],
      [42, 'payload: must be a JSON object, got number'],
    ];
    await reseed(f.root);
    const runs = await runCount();
    for (const [event, expected] of cases) {
      const result = await f.handler(event);
      expect(isErrorResult(result) && result.error.code, JSON.stringify(event)).toBe('bad_payload');
      expect(isErrorResult(result) && result.error.message).toContain(`error: ${expected}`);
    }
    expect(await filesLeft(f.root)).toEqual(ALL);
    expect(await runCount()).toBe(runs);
  });

  it('clips megabyte values in answers and log lines', async () => {
    f.lines.splice(0);
    const huge = 'x'.repeat(1_000_000);
    for (const event of [
      { policy: huge },
      SHAPES[0]!.wrap({ policy: huge }),
      { policy: 'files', [huge]: true },
      SHAPES[1]!.wrap({ policy: 'files', [huge]: 1 }),
      { policy: 'files', before: huge },
    ]) {
      const result = await f.handler(event);
      expect(isErrorResult(result)).toBe(true);
      expect(isErrorResult(result) && result.error.message.length).toBeLessThan(600);
      expect(isErrorResult(result) && result.error.message).toContain('(1000000 characters)');
    }
    expect(Math.max(...f.lines.map((line) => JSON.stringify(line).length))).toBeLessThan(2_000);
  });
});

describe('health handler events', () => {
  it('answers an event that is not an HTTP request with 400 bad_payload and no data', async () => {
    for (const event of [null, [], 'GET', 42]) {
      const response = await createHealthHandler(f.runtime, { token: 'token' })(event as unknown as FunctionUrlEvent);
      expect(response.statusCode, JSON.stringify(event)).toBe(400);
      expect(JSON.parse(response.body)).toEqual({
        error: 'bad_payload',
        message: expect.stringContaining('error: event: must be a Function URL request object'),
      });
    }
  });

  it('a non-text authorization header is unauthorized, not an internal error', async () => {
    const response = await createHealthHandler(f.runtime, { token: 'token' })({
      headers: { authorization: 42 as unknown as string },
    });
    expect([response.statusCode, JSON.parse(response.body)]).toEqual([401, { error: 'unauthorized' }]);
  });
});
