import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config/load.ts';
import type { RetentionConfigInput } from '../../lib/config/schema.ts';
import { FUNCTION_BUNDLING } from '../../lib/serverless/bundling.ts';
import { planDeployment } from '../../lib/serverless/deployment.ts';

/**
 * `sst.config.ts` evaluated with stubbed SST globals that record what it declares (the SST CLI
 * cannot run here): once with the shipped retention.config.ts it bundles, once with a test config
 * named by RETENTION_CONFIG. The module path is computed so that tsc does not pull sst.config.ts
 * (which relies on SST's global types) into the program.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';

interface Declared {
  type: string;
  name: string;
  args: Record<string, any>;
}

interface Evaluation {
  app: { removal: string; protect: boolean };
  outputs: Record<string, unknown>;
  declared: Declared[];
}

let recording: Declared[] = [];
let scratch: string;
let shipped: Evaluation;
let custom: Evaluation;

function component(type: string) {
  return class {
    readonly arn: string;
    readonly url: string;
    readonly name: string;
    constructor(name: string, args: Record<string, any> = {}) {
      recording.push({ type, name, args });
      this.name = args.name ?? name;
      this.arn = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${this.name}`;
      this.url = `https://${name.toLowerCase()}.lambda-url.${REGION}.on.aws/`;
    }
  };
}

const policies: RetentionConfigInput['policies'] = [
  {
    name: 'pdfs',
    class: 'blobs',
    store: { kind: 's3', bucket: 'docs', prefix: 'pdfs/', region: REGION },
    retention: '7d',
    schedule: '0 3 * * *',
    budget: '10m',
    backup: { to: 's3://backups-bucket/retention/', keepFor: '30d' },
  },
  {
    name: 'uploads',
    class: 'blobs',
    store: { kind: 'vercel-blob', prefix: 'uploads/' },
    retention: '30d',
    schedule: '*/30 * * * 1-5',
    budget: '14m',
    backup: { to: 'backups/', keepFor: '90d' },
  },
  {
    name: 'sessions',
    class: 'tokens',
    store: {
      kind: 'dynamodb',
      table: 'sessions',
      key: { partition: 'id' },
      index: { name: 'byExpiry', partition: 'shard', values: ['a'] },
    },
    retention: '1d',
    schedule: '0 * * * *',
    budget: '5m',
  },
  {
    name: 'documents',
    class: 'rows',
    store: { kind: 'postgres', url: 'postgres://app@db/app' },
    table: 'public.documents',
    timestamp: 'created_at',
    retention: '1y',
    schedule: '0 2 * * *',
    budget: '20m',
    enabled: false,
  },
];

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'retention-sst-'));
  const configPath = path.join(scratch, 'retention.json');
  await writeFile(configPath, JSON.stringify({ control: { kind: 'dynamodb', table: 'retention-control' }, policies }));
  const globals = globalThis as Record<string, unknown>;
  globals.$config = (definition: unknown) => definition;
  globals.$app = { name: 'data-retention', stage: 'production' };
  globals.aws = { getRegion: async () => ({ name: REGION }), getCallerIdentity: async () => ({ accountId: ACCOUNT }) };
  globals.sst = {
    Secret: component('sst.Secret'),
    aws: Object.fromEntries(
      ['Function', 'CronV2', 'Cron', 'Dynamo', 'Bucket'].map((type) => [type, component(`sst.aws.${type}`)]),
    ),
  };
  type Definition = { app(input: { stage: string }): Evaluation['app']; run(): Promise<Record<string, unknown>> };
  const definition = (await import(new URL('sst.config.ts', `file://${ROOT}/`).href)).default as Definition;
  const evaluate = async (): Promise<Evaluation> => {
    recording = [];
    const outputs = await definition.run();
    return { app: definition.app({ stage: 'production' }), outputs, declared: recording };
  };
  delete process.env.RETENTION_CONFIG;
  shipped = await evaluate();
  process.env.RETENTION_CONFIG = configPath;
  try {
    custom = await evaluate();
  } finally {
    delete process.env.RETENTION_CONFIG;
  }
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const ofType = (evaluation: Evaluation, type: string) => evaluation.declared.filter((entry) => entry.type === type);
const fn = (evaluation: Evaluation, role: string) =>
  ofType(evaluation, 'sst.aws.Function').find((entry) => entry.args.name === `data-retention-production-${role}`)!;
const seconds = (timeout: string) => Number(/^(\d+) seconds$/.exec(timeout)![1]);
const linked = (evaluation: Evaluation, role: string) =>
  (fn(evaluation, role).args.link as Array<{ name: string }>).map((secret) => secret.name).sort();

describe('sst.config.ts with the shipped retention.config.ts', () => {
  it('keeps production state when the app is removed', () => {
    expect(shipped.app).toMatchObject({ removal: 'retain', protect: true });
  });

  it('gives each function exactly the planned statements, s3:prefix conditions included', async () => {
    const { config } = await loadConfig('retention.config.ts', ROOT);
    const plan = planDeployment(config, {
      app: 'data-retention',
      stage: 'production',
      region: REGION,
      accountId: ACCOUNT,
    });
    for (const planned of plan.functions)
      expect(fn(shipped, planned.role).args.permissions).toEqual(planned.permissions);
    expect(fn(shipped, 'blobs').args.permissions[0]).toEqual({
      actions: ['s3:ListBucket'],
      resources: ['arn:aws:s3:::acme-docs'],
      conditions: [{ test: 'StringLike', variable: 's3:prefix', values: ['pdfs/*'] }],
    });
    expect(fn(shipped, 'health').args.permissions).toEqual([]);
  });

  it('declares the secrets the config needs and links each function to the ones it reads', () => {
    expect(
      ofType(shipped, 'sst.Secret')
        .map((secret) => secret.name)
        .sort(),
    ).toEqual([
      'RetentionApiToken',
      'RetentionBlobToken',
      'RetentionDatabaseUrl',
      'RetentionHealthToken',
      'RetentionSentryDsn',
      'RetentionViewerToken',
    ]);
    expect(linked(shipped, 'blobs')).toEqual(['RetentionBlobToken', 'RetentionDatabaseUrl', 'RetentionSentryDsn']);
    expect(linked(shipped, 'health')).toEqual(['RetentionDatabaseUrl', 'RetentionHealthToken']);
    expect(linked(shipped, 'api')).toEqual(['RetentionApiToken', 'RetentionDatabaseUrl', 'RetentionViewerToken']);
  });

  it('declares no DynamoDB table for a PostgreSQL control store, and the backup bucket', () => {
    expect(ofType(shipped, 'sst.aws.Dynamo')).toEqual([]);
    expect(shipped.outputs).not.toHaveProperty('controlTable');
    const [bucket, ...others] = ofType(shipped, 'sst.aws.Bucket');
    expect(others).toEqual([]);
    expect(bucket!.args.lifecycle).toEqual([{ id: 'expire-backups', expiresIn: '30 days' }]);
    const bucketArgs: Record<string, unknown> = {};
    bucket!.args.transform.bucket(bucketArgs);
    expect(bucketArgs.bucket).toBe('acme-retention-backups');
  });
});

describe('sst.config.ts with RETENTION_CONFIG', () => {
  it('declares one EventBridge schedule per enabled policy, converted to EventBridge syntax, targeting its class function', () => {
    const crons = ofType(custom, 'sst.aws.CronV2');
    expect(crons.map((cron) => [cron.args.event, cron.args.schedule, cron.args.function])).toEqual([
      [
        { policy: 'pdfs', trigger: 'scheduled' },
        'cron(0 3 * * ? *)',
        `arn:aws:lambda:${REGION}:${ACCOUNT}:function:data-retention-production-blobs`,
      ],
      [
        { policy: 'uploads', trigger: 'scheduled' },
        'cron(0,30 * ? * 2-6 *)',
        `arn:aws:lambda:${REGION}:${ACCOUNT}:function:data-retention-production-blobs`,
      ],
      [
        { policy: 'sessions', trigger: 'scheduled' },
        'cron(0 * * * ? *)',
        `arn:aws:lambda:${REGION}:${ACCOUNT}:function:data-retention-production-tokens`,
      ],
    ]);
    for (const cron of crons) expect(cron.args.timezone).toBe('UTC');
    expect(ofType(custom, 'sst.aws.Cron')).toEqual([]);
  });

  it("declares functions whose handlers exist, on nodejs22.x, with timeouts above their policies' budgets", () => {
    const functions = ofType(custom, 'sst.aws.Function');
    expect(functions.map((entry) => entry.args.name).sort()).toEqual(
      ['api', 'blobs', 'health', 'rows', 'tokens'].map((role) => `data-retention-production-${role}`),
    );
    for (const entry of functions) {
      const [file, exported] = (entry.args.handler as string).split('.');
      expect(existsSync(path.join(ROOT, `${file}.ts`)), entry.args.handler).toBe(true);
      expect(readFileSync(path.join(ROOT, `${file}.ts`), 'utf8')).toContain(`export const ${exported} =`);
      expect(entry.args.runtime).toBe('nodejs22.x');
      // Bundled as test/integration/bundle.test.ts bundles them: lazy chunks for stores and control stores.
      expect(entry.args.nodejs).toEqual(FUNCTION_BUNDLING);
    }
    // The longest blobs budget is 14m (uploads); the timeout leaves room for the final census and flush.
    expect(seconds(fn(custom, 'blobs').args.timeout)).toBe(14 * 60 + 60);
    // A budget beyond Lambda's 15 minutes is capped at 900 s (the deadline then ends the run partial).
    expect(seconds(fn(custom, 'rows').args.timeout)).toBe(900);
    expect(fn(custom, 'health').args.url).toEqual({ authorization: 'none' });
    expect(fn(custom, 'blobs').args.url).toBeUndefined();
    expect(fn(custom, 'api').args.url).toEqual({ authorization: 'none' });
    expect(seconds(fn(custom, 'api').args.timeout)).toBe(30);
  });

  it('declares the API with its dashboard files copied beside the bundle, each from a file that exists', () => {
    const api = fn(custom, 'api').args;
    const copies = api.copyFiles as Array<{ from: string; to: string }>;
    expect(copies.map((copy) => copy.to).sort()).toEqual(
      [
        'charts.js',
        'dashboard.css',
        'dashboard.js',
        'index.html',
        'ui.js',
        'vendor/uPlot.iife.min.js',
        'vendor/uPlot.min.css',
      ].map((file) => `dashboard/${file}`),
    );
    for (const copy of copies) expect(existsSync(path.join(ROOT, copy.from)), copy.from).toBe(true);
    for (const role of ['blobs', 'health']) expect(fn(custom, role).args.copyFiles).toBeUndefined();
    // The API finds the data-class functions by these names, and may invoke exactly them.
    expect(api.environment).toEqual({
      RETENTION_STAGE: 'production',
      RETENTION_FUNCTION_BLOBS: 'data-retention-production-blobs',
      RETENTION_FUNCTION_ROWS: 'data-retention-production-rows',
      RETENTION_FUNCTION_TOKENS: 'data-retention-production-tokens',
    });
    const control = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/retention-control`;
    const reads = ['DescribeTable', 'DescribeTimeToLive', 'GetItem', 'BatchGetItem', 'Query'];
    const writes = ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem'];
    expect(api.permissions).toEqual([
      { actions: [...reads, ...writes].map((action) => `dynamodb:${action}`), resources: [control] },
      {
        actions: ['dynamodb:Query'],
        resources: ['gsi1', 'gsi2', 'gsi3', 'gsi4'].map((gsi) => `${control}/index/${gsi}`),
      },
      {
        actions: ['lambda:InvokeFunction'],
        resources: ['blobs', 'rows', 'tokens'].map(
          (role) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:data-retention-production-${role}`,
        ),
      },
    ]);
    expect(linked(custom, 'api')).toEqual(['RetentionApiToken', 'RetentionViewerToken']);
    expect(custom.outputs).toMatchObject({ api: expect.stringContaining('lambda-url') });
  });

  it('declares the DynamoDB control table under its configured name, and no database secret', () => {
    const [table, ...others] = ofType(custom, 'sst.aws.Dynamo');
    expect(others).toEqual([]);
    expect(table!.args).toMatchObject({
      primaryIndex: { hashKey: 'pk', rangeKey: 'sk' },
      ttl: 'expiresAt',
      globalIndexes: { gsi1: { hashKey: 'gsi1pk' } },
    });
    const tableArgs: Record<string, unknown> = {};
    table!.args.transform.table(tableArgs);
    expect(tableArgs.name).toBe('retention-control');
    expect(custom.outputs).toMatchObject({
      controlTable: 'retention-control',
      health: expect.stringContaining('lambda-url'),
      function_tokens: 'data-retention-production-tokens',
    });
    expect(
      ofType(custom, 'sst.Secret')
        .map((secret) => secret.name)
        .sort(),
    ).toEqual([
      'RetentionApiToken',
      'RetentionBlobToken',
      'RetentionHealthToken',
      'RetentionSentryDsn',
      'RetentionViewerToken',
    ]);
    expect(linked(custom, 'tokens')).toEqual(['RetentionSentryDsn']);
  });

  it('grants the tokens function its table and GSI, and health only reads the control table', () => {
    const resources = (role: string) =>
      (fn(custom, role).args.permissions as Array<{ resources: string[] }>).flatMap((statement) => statement.resources);
    expect(resources('tokens')).toContain(`arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/sessions/index/byExpiry`);
    expect(
      resources('health').every((resource) =>
        resource.startsWith(`arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/retention-control`),
      ),
    ).toBe(true);
    const healthActions = (fn(custom, 'health').args.permissions as Array<{ actions: string[] }>).flatMap(
      (statement) => statement.actions,
    );
    expect([...new Set(healthActions)].sort()).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:DescribeTable',
      'dynamodb:DescribeTimeToLive',
      'dynamodb:GetItem',
      'dynamodb:Query',
    ]);
  });
});
