import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RetentionConfig } from '../../lib/config/schema.ts';
import { planDeployment } from '../../lib/serverless/deployment.ts';

/**
 * `sst.config.ts` evaluated with stubbed SST globals that record what it declares (the SST CLI
 * cannot run here), against a test config. The module path is computed so that tsc does not pull
 * sst.config.ts (which relies on SST's global types) into the program.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';

interface Declared {
  type: string;
  name: string;
  args: Record<string, any>;
}

const declared: Declared[] = [];
let app: { removal: string; protect: boolean };
let outputs: Record<string, unknown>;
let scratch: string;

function component(type: string) {
  return class {
    readonly arn: string;
    readonly url: string;
    readonly name: string;
    constructor(name: string, args: Record<string, any> = {}) {
      declared.push({ type, name, args });
      this.name = args.name ?? name;
      this.arn = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${this.name}`;
      this.url = `https://${name.toLowerCase()}.lambda-url.${REGION}.on.aws/`;
    }
  };
}

const policies = [
  { name: 'pdfs', class: 'blobs', store: { kind: 's3', bucket: 'docs', prefix: 'pdfs/', region: REGION }, retention: '7d', schedule: '0 3 * * *', budget: '10m', backup: { to: 's3://backups-bucket/retention/', keepFor: '30d' } },
  { name: 'uploads', class: 'blobs', store: { kind: 'vercel-blob', prefix: 'uploads/' }, retention: '30d', schedule: '*/30 * * * 1-5', budget: '14m', backup: { to: 's3://backups-bucket/retention/', keepFor: '90d' } },
  { name: 'scratch', class: 'blobs', store: { kind: 'fs', root: '/tmp/scratch' }, retention: '1d', schedule: '0 * * * *', enabled: false },
];

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'retention-sst-'));
  const configPath = path.join(scratch, 'retention.json');
  await writeFile(configPath, JSON.stringify({ policies }));
  const globals = globalThis as Record<string, unknown>;
  globals.$config = (definition: unknown) => definition;
  globals.$app = { name: 'data-retention', stage: 'production' };
  globals.aws = { getRegion: async () => ({ name: REGION }), getCallerIdentity: async () => ({ accountId: ACCOUNT }) };
  globals.sst = {
    Secret: component('sst.Secret'),
    aws: { Function: component('sst.aws.Function'), CronV2: component('sst.aws.CronV2'), Cron: component('sst.aws.Cron'), Dynamo: component('sst.aws.Dynamo'), Bucket: component('sst.aws.Bucket') },
  };
  process.env.RETENTION_CONFIG = configPath;
  try {
    const modulePath = pathToModule('sst.config.ts');
    const definition = (await import(modulePath)).default as { app(input: { stage: string }): typeof app; run(): Promise<Record<string, unknown>> };
    app = definition.app({ stage: 'production' });
    outputs = await definition.run();
  } finally {
    delete process.env.RETENTION_CONFIG;
  }
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function pathToModule(file: string): string {
  return new URL(file, `file://${ROOT}/`).href;
}

const ofType = (type: string) => declared.filter((entry) => entry.type === type);
const fn = (role: string) => ofType('sst.aws.Function').find((entry) => entry.args.name === `data-retention-production-${role}`)!;
const seconds = (timeout: string) => Number(/^(\d+) seconds$/.exec(timeout)![1]);

describe('sst.config.ts', () => {
  it('keeps production state when the app is removed', () => {
    expect(app).toMatchObject({ removal: 'retain', protect: true });
  });

  it('declares one EventBridge schedule per enabled policy, converted to EventBridge syntax, targeting its class function', () => {
    const crons = ofType('sst.aws.CronV2');
    expect(crons.map((cron) => [cron.args.event, cron.args.schedule])).toEqual([
      [{ policy: 'pdfs', trigger: 'scheduled' }, 'cron(0 3 * * ? *)'],
      [{ policy: 'uploads', trigger: 'scheduled' }, 'cron(0,30 * ? * 2-6 *)'],
    ]);
    for (const cron of crons) {
      expect(cron.args.function).toBe(`arn:aws:lambda:${REGION}:${ACCOUNT}:function:data-retention-production-blobs`);
      expect(cron.args.timezone).toBe('UTC');
    }
    expect(ofType('sst.aws.Cron')).toEqual([]);
  });

  it('declares functions whose handlers exist, on nodejs22.x, with timeouts above their policies\' budgets', () => {
    const functions = ofType('sst.aws.Function');
    expect(functions.map((entry) => entry.args.name).sort()).toEqual(['data-retention-production-blobs', 'data-retention-production-health']);
    for (const entry of functions) {
      const [file, exported] = (entry.args.handler as string).split('.');
      expect(existsSync(path.join(ROOT, `${file}.ts`)), entry.args.handler).toBe(true);
      expect(readFileSync(path.join(ROOT, `${file}.ts`), 'utf8')).toContain(`export const ${exported} =`);
      expect(entry.args.runtime).toBe('nodejs22.x');
    }
    // The longest blobs budget is 14m (uploads); the timeout leaves room for the final census and flush.
    expect(seconds(fn('blobs').args.timeout)).toBeGreaterThan(14 * 60);
    expect(seconds(fn('blobs').args.timeout)).toBeLessThanOrEqual(900);
    expect(fn('health').args.url).toEqual({ authorization: 'none' });
    expect(fn('blobs').args.url).toBeUndefined();
  });

  it('grants each function only the named buckets, prefixes and itself: no * resource', () => {
    const blobs = fn('blobs').args.permissions as Array<{ actions: string[]; resources: string[] }>;
    const resources = new Set(blobs.flatMap((permission) => permission.resources));
    expect([...resources].sort()).toEqual([
      'arn:aws:lambda:eu-west-1:123456789012:function:data-retention-production-blobs',
      'arn:aws:s3:::backups-bucket',
      'arn:aws:s3:::backups-bucket/retention/pdfs/*',
      'arn:aws:s3:::backups-bucket/retention/uploads/*',
      'arn:aws:s3:::docs',
      'arn:aws:s3:::docs/pdfs/*',
    ]);
    for (const permission of blobs) {
      expect(permission.actions.every((action) => !action.includes('*'))).toBe(true);
      expect(permission.resources.every((resource) => resource !== '*' && !/:\*|^\*/.test(resource))).toBe(true);
    }
    expect(fn('health').args.permissions).toEqual([]);
  });

  it('declares the secrets and links each function to the ones it reads', () => {
    expect(ofType('sst.Secret').map((secret) => secret.name).sort()).toEqual(['RetentionBlobToken', 'RetentionDatabaseUrl', 'RetentionHealthToken', 'RetentionSentryDsn']);
    const linked = (role: string) => (fn(role).args.link as Array<{ name: string }>).map((secret) => secret.name).sort();
    expect(linked('blobs')).toEqual(['RetentionBlobToken', 'RetentionDatabaseUrl', 'RetentionSentryDsn']);
    expect(linked('health')).toEqual(['RetentionDatabaseUrl', 'RetentionHealthToken']);
  });

  it('declares the control table and the backup bucket, expiring after the longest keepFor', () => {
    const [table] = ofType('sst.aws.Dynamo');
    expect(table!.args).toMatchObject({ primaryIndex: { hashKey: 'pk', rangeKey: 'sk' }, ttl: 'expiresAt', globalIndexes: { gsi1: { hashKey: 'gsi1pk' } } });
    const tableArgs: Record<string, unknown> = {};
    table!.args.transform.table(tableArgs);
    expect(tableArgs.name).toBe('data-retention-production-control');

    const [bucket, ...others] = ofType('sst.aws.Bucket');
    expect(others).toEqual([]);
    expect(bucket!.args.lifecycle).toEqual([{ id: 'expire-backups', expiresIn: '90 days' }]);
    const bucketArgs: Record<string, unknown> = {};
    bucket!.args.transform.bucket(bucketArgs);
    expect(bucketArgs.bucket).toBe('backups-bucket');
    expect(outputs).toMatchObject({ health: expect.stringContaining('lambda-url'), function_blobs: 'data-retention-production-blobs' });
  });
});

describe('planDeployment for kinds the schema is still gaining', () => {
  // DynamoDB tokens and a DynamoDB control store are read by kind string: a config shaped as they will be.
  const config = {
    control: { kind: 'dynamodb', table: 'retention-control' },
    policies: [
      { name: 'sessions', class: 'tokens', enabled: true, schedule: '0 * * * *', budget: '5m', store: { kind: 'dynamodb', table: 'sessions', region: 'us-east-1', index: 'byExpiry' } },
      { name: 'rows', class: 'rows', enabled: true, schedule: '0 2 * * *', budget: '20m', store: { kind: 'postgres', table: 'public.documents' } },
    ],
  } as unknown as RetentionConfig;
  const plan = planDeployment(config, { app: 'app', stage: 'dev', region: REGION, accountId: ACCOUNT });
  const resourcesOf = (role: string) => plan.functions.find((entry) => entry.role === role)!.permissions.flatMap((permission) => permission.resources);

  it('scopes a tokens table to the table and its configured index, and the control table to its own indexes', () => {
    expect(resourcesOf('tokens')).toEqual(
      expect.arrayContaining(['arn:aws:dynamodb:us-east-1:123456789012:table/sessions', 'arn:aws:dynamodb:us-east-1:123456789012:table/sessions/index/byExpiry', `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/retention-control`]),
    );
    for (const role of ['tokens', 'rows', 'health']) expect(resourcesOf(role).some((resource) => resource.includes('*'))).toBe(false);
    expect(plan.controlTable.name).toBe('retention-control');
    expect(plan.secrets).not.toContain('databaseUrl');
  });

  it('caps a budget beyond Lambda\'s 15 minutes at 900 s (the deadline then ends the run partial)', () => {
    expect(plan.functions.find((entry) => entry.role === 'rows')!.timeoutSeconds).toBe(900);
  });
});
