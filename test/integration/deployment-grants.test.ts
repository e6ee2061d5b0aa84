import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AttributeValue, CreateTableCommandInput, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteItemCommand, CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import type { RetentionConfigInput } from '../../lib/config/schema.ts';
import { controlTableDefinition } from '../../lib/control/dynamodb/definition.ts';
import { CONTROL_LOADERS } from '../../lib/control/registry.ts';
import { createRunMonitor } from '../../lib/observe/sentry.ts';
import { createApiHandler } from '../../lib/serverless/apiHandler.ts';
import { type DeploymentPlan, planDeployment } from '../../lib/serverless/deployment.ts';
import { createDataClassHandler } from '../../lib/serverless/handler.ts';
import { createHealthHandler } from '../../lib/serverless/healthHandler.ts';
import type { FunctionRole } from '../../lib/serverless/naming.ts';
import { createRuntime, type Runtime } from '../../lib/serverless/runtime.ts';
import { createStore } from '../../lib/stores/registry.ts';
import {
  denied,
  dynamoIamRequests,
  type IamRequest,
  type Recorder,
  s3IamRequests,
  startRecorder,
} from '../support/awsGrants.ts';
import { startDynalite, type TestDynamo } from '../support/dynalite.ts';
import { lambdaContext } from '../support/handlerFixture.ts';
import { type LambdaStandIn, startLambdaStandIn } from '../support/lambda.ts';
import { S3RVER_CREDENTIALS, startTestS3, type TestS3 } from '../support/s3.ts';

/**
 * The planned IAM statements against what the functions really send. The real handlers run
 * policies (S3 with a backup, DynamoDB tokens with and without a GSI, a DynamoDB control store)
 * against s3rver and dynalite behind recording proxies; every request is translated into the IAM
 * authorization AWS would make and checked against the plan's statements for that function.
 */
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const DAY_MS = 86_400_000;

/** The swept bucket and the backup bucket (which holds the inventory too). */
let docs: string;
let vault: string;
let s3: TestS3;
let dynamo: TestDynamo;
let admin: DynamoDBClient;
let s3Proxy: Recorder;
let dynamoProxy: Recorder;
let scratch: string;
let plan: DeploymentPlan;
let configPath: string;
let controlTable: string;
let lambda: LambdaStandIn;
const savedEnv = { ...process.env };

async function createTable(definition: CreateTableCommandInput): Promise<void> {
  await admin.send(new CreateTableCommand(definition));
  const status = async () =>
    (await admin.send(new DescribeTableCommand({ TableName: definition.TableName }))).Table?.TableStatus;
  while ((await status()) !== 'ACTIVE') await sleep(5);
}

async function putTokens(table: string, items: Array<Record<string, AttributeValue>>): Promise<void> {
  await admin.send(
    new BatchWriteItemCommand({ RequestItems: { [table]: items.map((Item) => ({ PutRequest: { Item } })) } }),
  );
}

beforeAll(async () => {
  [s3, dynamo, lambda] = await Promise.all([startTestS3(), startDynalite(), startLambdaStandIn()]);
  admin = dynamo.client();
  const dynamoEndpoint = await admin.config.endpoint!();
  controlTable = dynamo.tableName('control');
  s3Proxy = await startRecorder(s3.endpoint);
  // The control table as sst.config.ts declares it: TTL on (dynalite has no TTL API, so migrate()
  // would otherwise try to enable it, which the functions are not granted and need not do).
  dynamoProxy = await startRecorder(`http://${dynamoEndpoint.hostname}:${dynamoEndpoint.port}`, (request) =>
    String(request.headers['x-amz-target']).endsWith('.DescribeTimeToLive') && request.body.includes(controlTable)
      ? {
          status: 200,
          body: JSON.stringify({ TimeToLiveDescription: { TimeToLiveStatus: 'ENABLED', AttributeName: 'expiresAt' } }),
        }
      : undefined,
  );
  // The functions take credentials from the environment, as on Lambda; s3rver only knows its own.
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;

  [docs, vault] = await Promise.all([s3.createBucket(), s3.createBucket()]);
  const old = new Date(Date.now() - 60 * DAY_MS);
  await s3.seed(docs, [
    { key: 'pdfs/2024/a.pdf', timestamp: old },
    { key: 'pdfs/2024/b.pdf', timestamp: old },
    { key: 'pdfs/new.pdf', timestamp: new Date() },
    { key: 'other/old.pdf', timestamp: old },
  ]);
  await createTable(controlTableDefinition(controlTable));
  const sessions = dynamo.tableName('sessions');
  const grants = dynamo.tableName('grants');
  const keyOnly = {
    AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' as const }],
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' as const }],
    BillingMode: 'PAY_PER_REQUEST' as const,
  };
  await createTable({
    ...keyOnly,
    TableName: sessions,
    AttributeDefinitions: [
      ...keyOnly.AttributeDefinitions,
      { AttributeName: 'shard', AttributeType: 'S' },
      { AttributeName: 'expiresAt', AttributeType: 'N' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: 'byExpiry',
        KeySchema: [
          { AttributeName: 'shard', KeyType: 'HASH' },
          { AttributeName: 'expiresAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  });
  await createTable({ ...keyOnly, TableName: grants });
  const expired = String(Math.floor(old.getTime() / 1000));
  await putTokens(
    sessions,
    ['s1', 's2'].map((id) => ({ id: { S: id }, shard: { S: 'a' }, expiresAt: { N: expired } })),
  );
  await putTokens(
    grants,
    ['g1', 'g2'].map((id) => ({ id: { S: id }, expiresAt: { N: expired } })),
  );

  const common = { retention: '30d', schedule: '0 3 * * *', limits: { maxDeleteFraction: 1 } };
  const dynamoStore = { region: REGION, endpoint: dynamoProxy.endpoint, key: { partition: 'id' } };
  const config: RetentionConfigInput = {
    control: { kind: 'dynamodb', table: controlTable, region: REGION, endpoint: dynamoProxy.endpoint },
    policies: [
      {
        ...common,
        name: 'pdfs',
        class: 'blobs',
        store: {
          kind: 's3',
          bucket: docs,
          prefix: 'pdfs/',
          region: REGION,
          endpoint: s3Proxy.endpoint,
          forcePathStyle: true,
          // Shards of its S3 Inventory run in the same function, with the same statements.
          inventory: { bucket: vault, prefix: 'inventory/docs/daily/' },
        },
        backup: { to: `s3://${vault}/retention/`, keepFor: '1d' },
      },
      {
        ...common,
        name: 'sessions',
        class: 'tokens',
        retention: '1d',
        store: {
          ...dynamoStore,
          kind: 'dynamodb',
          table: sessions,
          index: { name: 'byExpiry', partition: 'shard', values: ['a'] },
        },
      },
      {
        ...common,
        name: 'grants',
        class: 'tokens',
        retention: '1d',
        store: { ...dynamoStore, kind: 'dynamodb', table: grants, conditional: false },
      },
    ],
  };
  scratch = await mkdtemp(path.join(os.tmpdir(), 'retention-grants-'));
  configPath = path.join(scratch, 'retention.json');
  await writeFile(configPath, JSON.stringify(config));
  plan = planDeployment(parseConfig(config), { app: 'app', stage: 'test', region: REGION, accountId: ACCOUNT });
});

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all([s3Proxy?.stop(), dynamoProxy?.stop()]);
  await Promise.all([s3?.stop(), dynamo?.stop(), lambda?.stop()]);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** A function's runtime, as each deployed function builds its own (config from RETENTION_CONFIG). */
function runtimeFor(): Runtime {
  return createRuntime({
    controls: CONTROL_LOADERS,
    env: { RETENTION_CONFIG: configPath },
    sink: { write: () => undefined },
  });
}

/** Runs `work` as one function and returns the IAM authorizations its requests needed. */
async function requestsOf(work: () => Promise<void>): Promise<IamRequest[]> {
  s3Proxy.reset();
  dynamoProxy.reset();
  const invoked = lambda.invocations.length;
  await work();
  const dynamoRequests = dynamoProxy.requests.flatMap((request) => dynamoIamRequests(request, ACCOUNT));
  // Lambda authorizes Invoke on the function's ARN, whatever its invocation type.
  const invokes = lambda.invocations.slice(invoked).map((invocation) => ({
    action: 'lambda:InvokeFunction',
    resource: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${invocation.functionName}`,
    call: `Invoke ${invocation.type}`,
  }));
  return [...s3Proxy.requests.flatMap(s3IamRequests), ...dynamoRequests, ...invokes];
}

const statementsOf = (role: FunctionRole) => plan.functions.find((entry) => entry.role === role)!.permissions;
const actionsOf = (requests: IamRequest[]) => [...new Set(requests.map((request) => request.action))].sort();

describe('the planned statements cover what the functions send', () => {
  it('blobs: an S3 run with its backup needs nothing beyond them but the bucket check of open()', async () => {
    const runtime = runtimeFor();
    const handler = createDataClassHandler('blobs', runtime, {
      createStore,
      monitor: createRunMonitor({ dsn: undefined, clock: runtime.clock }),
    });
    const requests = await requestsOf(async () => {
      const report = await handler({ policy: 'pdfs', trigger: 'scheduled' }, lambdaContext(60_000));
      expect(report).toMatchObject({ status: 'completed', deleted: 2 });
    });
    await runtime.close();
    const used = [
      's3:ListBucket',
      's3:GetObject',
      's3:PutObject',
      's3:DeleteObject',
      'dynamodb:PutItem',
      'dynamodb:Query',
    ];
    expect(actionsOf(requests)).toEqual(expect.arrayContaining(used));
    // The S3 store opens with a listing under its prefix (not HeadBucket, which IAM checks as an
    // unconditioned ListBucket), so a prefix-conditioned grant covers every request.
    expect(denied(statementsOf('blobs'), requests)).toEqual([]);
  });

  it('blobs: an S3 Inventory shard needs nothing beyond them, and never reads the inventory', async () => {
    const runtime = runtimeFor();
    const handler = createDataClassHandler('blobs', runtime, {
      monitor: createRunMonitor({ dsn: undefined, clock: runtime.clock }),
      createStore,
    });
    const old = new Date(Date.now() - 60 * DAY_MS);
    await s3.seed(docs, [{ key: 'pdfs/2023/c.pdf', timestamp: old }]);
    const items = ['pdfs/2023/c.pdf', 'other/old.pdf'].map((key) => ({
      Bucket: docs,
      Key: key,
      Size: '1',
      LastModifiedDate: old.toISOString(),
    }));
    const manifest = { bucket: vault, key: 'inventory/docs/daily/2026-12-07T01-00Z/manifest.json' };
    const requests = await requestsOf(async () => {
      const report = await handler({ policy: 'pdfs', shard: { manifest, id: 'run/0', items } }, lambdaContext(60_000));
      expect(report).toMatchObject({ status: 'completed', trigger: 'inventory', deleted: 1 });
    });
    await runtime.close();
    expect(requests.filter((request) => request.resource.includes(`${vault}/inventory/`))).toEqual([]);
    expect(denied(statementsOf('blobs'), requests)).toEqual([]);
  });

  it('tokens: DynamoDB runs through a GSI and by Scan with batch deletes need nothing beyond them', async () => {
    const runtime = runtimeFor();
    const handler = createDataClassHandler('tokens', runtime, {
      createStore,
      monitor: createRunMonitor({ dsn: undefined, clock: runtime.clock }),
    });
    const requests = await requestsOf(async () => {
      for (const policy of ['sessions', 'grants']) {
        expect(await handler({ policy, trigger: 'scheduled' }, lambdaContext(60_000))).toMatchObject({
          policy,
          status: 'completed',
          deleted: 2,
        });
      }
    });
    await runtime.close();
    expect(actionsOf(requests)).toEqual(
      expect.arrayContaining(['dynamodb:Query', 'dynamodb:Scan', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem']),
    );
    expect(requests.some((request) => request.resource.endsWith('/index/byExpiry'))).toBe(true);
    expect(denied(statementsOf('tokens'), requests)).toEqual([]);
  });

  it('api: pausing, holding, reading and starting runs need the control table and the invoke, nothing else', async () => {
    const runtime = runtimeFor();
    const api = plan.functions.find((fn) => fn.role === 'api')!;
    // The data-class functions' names as the deployment hands them over; they record invocations only
    // (their own requests are theirs, checked above), so the API answers without waiting for the run.
    for (const name of Object.values(api.environment)) lambda.register(name, async () => null);
    const handler = createApiHandler(runtime, {
      tokens: { operator: 'operator-token-0123456789abcdef', viewer: undefined },
      env: api.environment,
      lambda: lambda.client,
      recordWaitMs: 0,
    });
    const request = (method: string, rawPath: string, body?: unknown) => ({
      version: '2.0',
      rawPath,
      rawQueryString: '',
      headers: { authorization: 'Bearer operator-token-0123456789abcdef', 'content-type': 'application/json' },
      requestContext: { http: { method, path: rawPath, sourceIp: '203.0.113.7' } },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      isBase64Encoded: false,
    });
    const requests = await requestsOf(async () => {
      const answers = [
        await handler(request('GET', '/api/overview')),
        await handler(request('POST', '/api/policies/pdfs/pause', { reason: 'grants' })),
        await handler(request('POST', '/api/policies/pdfs/resume')),
        await handler(request('POST', '/api/holds', { policy: 'sessions', key: 's1', reason: 'grants' })),
        await handler(request('GET', '/api/holds')),
        await handler(request('GET', '/api/audit?policy=pdfs')),
        await handler(request('POST', '/api/policies/sessions/runs', { dryRun: true })),
      ];
      expect(answers.map((answer) => answer.statusCode)).toEqual([200, 200, 200, 201, 200, 200, 202]);
    });
    await runtime.close();
    // Every action of the read-write grant is used: it is not broader than the API needs.
    expect(actionsOf(requests)).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:BatchWriteItem',
      'dynamodb:DeleteItem',
      'dynamodb:DescribeTable',
      'dynamodb:DescribeTimeToLive',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'lambda:InvokeFunction',
    ]);
    // Only the control table (no bucket, no token table) and only the tokens function were touched.
    expect(
      requests.every(
        (entry) =>
          entry.resource.includes(`:table/${controlTable}`) || entry.resource.endsWith(':function:app-test-tokens'),
      ),
    ).toBe(true);
    expect(denied(statementsOf('api'), requests)).toEqual([]);
  });

  it('health: reading run history needs nothing beyond its read-only statements', async () => {
    const runtime = runtimeFor();
    const handler = createHealthHandler(runtime, { token: 'health-token' });
    const requests = await requestsOf(async () => {
      const response = await handler({
        headers: { authorization: 'Bearer health-token' },
        requestContext: { http: { method: 'GET' } },
      });
      const body = JSON.parse(response.body) as {
        policies?: Array<{ policy: string; last_run: unknown }>;
        error?: string;
      };
      expect(body.error).toBeUndefined();
      // The runs above are read back: history went through the index queries and record fetches.
      expect(body.policies?.map((entry) => [entry.policy, entry.last_run !== null])).toEqual([
        ['pdfs', true],
        ['sessions', true],
        ['grants', true],
      ]);
    });
    await runtime.close();
    expect(actionsOf(requests)).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:DescribeTable',
      'dynamodb:DescribeTimeToLive',
      'dynamodb:Query',
    ]);
    expect(denied(statementsOf('health'), requests)).toEqual([]);
  });
});
