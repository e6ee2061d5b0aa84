import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BatchWriteItemCommand, CreateTableCommand, DescribeTableCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../lib/cli/run.ts';
import { chunks } from '../../lib/core/async.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { runCli, startCli } from '../support/cli.ts';
import { startDynalite, type TestDynamo } from '../support/dynalite.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { S3RVER_CREDENTIALS, startTestS3, type TestS3 } from '../support/s3.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.ts';
import { startVercelBlobStandIn, type VercelBlobStandIn } from '../support/vercelBlob.ts';

/**
 * A store that freezes mid-run costs the run at most its budget plus one request timeout (the
 * run's deadline), then the run ends `failed` with a report, history closed and the lease
 * released; deletions in flight keep their write-ahead intents, which the next run resolves.
 * The freeze is a proxy that lets a delete request through and then answers nothing more: the
 * backend did the work, and the run cannot know it.
 */
const shared = usePostgresAndScratch('retention-frozen-');
let s3: TestS3;
let dynamo: TestDynamo;
let blob: VercelBlobStandIn;
let proxy: TcpProxy | undefined;

beforeAll(async () => {
  [s3, dynamo, blob] = await Promise.all([startTestS3(), startDynalite(), startVercelBlobStandIn()]);
});
afterAll(async () => {
  await Promise.all([s3?.stop(), dynamo?.stop(), blob?.stop()]);
});
afterEach(async () => {
  await proxy?.stop();
  proxy = undefined;
});

const DAY = 86_400_000;
const EXPIRED = 300;
/**
 * Object stores delete in batches of 1000 keys whatever `batchSize`: a second batch to freeze on
 * (of 50: the next run confirms each key gone by a listing of its own), or, for Vercel Blob, a
 * whole one whose del times out before the budget stops the run.
 */
const EXPIRED_S3 = 1_050;
const EXPIRED_BLOBS = 2_050;
const BUDGET_MS = 4_000;
const REQUEST_TIMEOUT_MS = 2_000;
/**
 * Budget + one request timeout, plus process start and exit (several seconds on a loaded 2-core
 * machine). Without the deadline a frozen store costs every attempt of every request: ≥ 45 s here.
 */
const BOUND_MS = BUDGET_MS + REQUEST_TIMEOUT_MS + 20_000;

interface FrozenCase {
  name: string;
  /** class, store and retention of the policy. */
  policy: Record<string, unknown>;
  env: Record<string, string>;
  /** The request after which the backend answers nothing more (its text on the wire). */
  delete: RegExp;
}

/**
 * Runs the policy until its first batch is deleted, then mutes the store from its next delete
 * request on; checks the bound, the report, the history, and that the next run (store back) is
 * not locked out and finishes. Returns the frozen run's report, the next run and the audit trail.
 */
async function frozenRun({ name, policy, env, delete: deleteRequest }: FrozenCase) {
  const configPath = path.join(shared.scratch, `${name}.json`);
  await writeFile(
    configPath,
    JSON.stringify({
      policies: [
        {
          name,
          schedule: '0 * * * *',
          batchSize: 10,
          limits: { maxDeleteFraction: 1, maxDeletesPerRun: 1_000_000 },
          ...policy,
        },
      ],
    }),
  );
  const fullEnv = {
    RETENTION_DATABASE_URL: await shared.server.createDatabase(name),
    RETENTION_REQUEST_TIMEOUT: `${REQUEST_TIMEOUT_MS / 1000}s`,
    ...env,
  };
  const cli = async <T>(...args: string[]): Promise<T> => {
    const result = await runCli(['--config', configPath, ...args, '--json'], { env: fullEnv });
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };

  const started = Date.now();
  const run = startCli(['--config', configPath, 'run', '--json', '--budget', `${BUDGET_MS / 1000}s`], fullEnv);
  await run.afterBatches(1);
  proxy!.muteFrom(deleteRequest);
  const ended = await run.exited;
  const elapsedMs = Date.now() - started;
  expect(ended.signal).toBeNull();
  expect(elapsedMs, ended.stderr).toBeLessThan(BOUND_MS);
  expect(ended.code, ended.stderr).toBe(EXIT.failed);
  // The exit code is the report's, not a crash's: no rejection went unhandled.
  expect(ended.stderr).not.toMatch(/unhandled|triggerUncaughtException/i);
  const report = JSON.parse(ended.stdout) as RunReport;
  expect(report.status).toBe('failed');
  const history = await cli<Array<{ runId: string; status: string }>>('history', '--policy', name);
  expect(history.find((entry) => entry.runId === report.runId)?.status).toBe('failed');

  // The store is back: the lease was released (no `skipped_locked`), and the next run finishes.
  proxy!.restore();
  const next = await runCli(['--config', configPath, 'run', '--json'], { env: fullEnv });
  expect(next.code, next.stderr).toBe(0);
  expect((JSON.parse(next.stdout) as RunReport).status).toBe('completed');
  const audit = await cli<Array<{ key: string; status: string }>>('audit', '--policy', name, '--limit', '10000');
  expect(audit.filter((record) => record.status === 'pending')).toEqual([]);
  return { report, next, audit };
}

/** Every expired item was deleted exactly once, by the record: the next run resolved the batch in flight from the store. */
function expectOneDeletionEach(
  next: { stderr: string },
  audit: Array<{ key: string; status: string }>,
  expired: number,
): void {
  expect(next.stderr).toContain('"event":"intents_recovered"');
  const deleted = audit.filter((record) => record.status === 'deleted').map((record) => record.key);
  expect(new Set(deleted).size).toBe(expired);
  expect(deleted).toHaveLength(expired);
}

/** `store: what stopped: the run's deadline passed (budget 4s + 2s for the request in flight)`. */
function deadlineMessage(location: string): RegExp {
  const escaped = location.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return new RegExp(
    `^${escaped}: .* stopped: the run's deadline passed \\(budget 4s \\+ 2s for the request in flight\\)`,
  );
}

async function proxyTo(endpoint: string): Promise<TcpProxy> {
  const upstream = new URL(endpoint);
  proxy = await startTcpProxy({ host: upstream.hostname, port: Number(upstream.port) });
  return proxy;
}

describe('a frozen store costs a run at most its budget plus one request timeout', () => {
  it('S3: failed at the deadline; the DeleteObjects in flight is resolved by the next run', async () => {
    const bucket = await s3.createBucket();
    await s3.seedFiles(bucket, [
      ...Array.from({ length: EXPIRED_S3 }, (_, i) => ({
        key: `old/${String(i).padStart(4, '0')}.tmp`,
        timestamp: new Date(Date.now() - 60 * DAY),
      })),
      { key: 'young.tmp', timestamp: new Date(Date.now() - DAY) },
    ]);
    const { port } = await proxyTo(s3.endpoint);
    const { report, next, audit } = await frozenRun({
      name: 'frozen-s3',
      policy: {
        class: 'blobs',
        retention: '30d',
        store: {
          kind: 's3',
          bucket,
          region: 'us-east-1',
          endpoint: `http://127.0.0.1:${port}`,
          forcePathStyle: true,
          // One batch at a time: the first batch's log line comes before the second is sent.
          deleteConcurrency: 1,
        },
      },
      env: {
        AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      },
      delete: /^POST \/[^ ]*\?delete/m,
    });
    expect(report.error?.message).toMatch(deadlineMessage(`s3://${bucket}/`));
    expectOneDeletionEach(next, audit, EXPIRED_S3);
    const left = await s3.client().send(new ListObjectsV2Command({ Bucket: bucket }));
    expect((left.Contents ?? []).map((object) => object.Key)).toEqual(['young.tmp']);
  });

  it('DynamoDB tokens: failed at the deadline; the DeleteItems in flight are resolved by the next run', async () => {
    const table = dynamo.tableName('frozen');
    const client = dynamo.client();
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      }),
    );
    while ((await client.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus !== 'ACTIVE')
      await new Promise((resolve) => setTimeout(resolve, 5));
    const expiresAt = (agoMs: number) => ({ N: String(Math.floor((Date.now() - agoMs) / 1000)) });
    const items = [
      ...Array.from({ length: EXPIRED }, (_, i) => ({ id: { S: `t${i}` }, expiresAt: expiresAt(2 * DAY) })),
      { id: { S: 'live' }, expiresAt: expiresAt(-DAY) },
    ];
    for (const chunk of chunks(items, 25))
      await client.send(
        new BatchWriteItemCommand({ RequestItems: { [table]: chunk.map((Item) => ({ PutRequest: { Item } })) } }),
      );
    const { port } = await proxyTo(dynamo.endpoint);
    const { report, next, audit } = await frozenRun({
      name: 'frozen-dynamodb',
      policy: {
        class: 'tokens',
        retention: '1h',
        store: {
          kind: 'dynamodb',
          table,
          key: { partition: 'id' },
          region: 'us-east-1',
          endpoint: `http://127.0.0.1:${port}`,
        },
      },
      env: { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' },
      delete: /^x-amz-target: DynamoDB_20120810\.DeleteItem/im,
    });
    expect(report.error?.message).toMatch(deadlineMessage(`dynamodb://${table}`));
    expectOneDeletionEach(next, audit, EXPIRED);
    const left = await client.send(new ScanCommand({ TableName: table }));
    expect((left.Items ?? []).map((item) => item.id?.S)).toEqual(['live']);
  });

  it('Vercel Blob: an API that stops answering ends the run within the bound, failed, and the next run finishes', async () => {
    blob.clear();
    blob.seed([
      ...Array.from({ length: EXPIRED_BLOBS }, (_, i) => ({
        pathname: `files/${String(i).padStart(4, '0')}.tmp`,
        uploadedAt: new Date(Date.now() - 60 * DAY),
      })),
      { pathname: 'files/young.tmp', uploadedAt: new Date(Date.now() - DAY) },
    ]);
    const { port } = await proxyTo(blob.apiUrl);
    const { report } = await frozenRun({
      name: 'frozen-vercel-blob',
      policy: { class: 'blobs', retention: '30d', store: { kind: 'vercel-blob', prefix: 'files/' } },
      env: {
        VERCEL_BLOB_API_URL: `http://127.0.0.1:${port}/api/blob`,
        BLOB_READ_WRITE_TOKEN: blob.token,
        VERCEL_BLOB_RETRIES: '0',
      },
      delete: /^POST \/api\/blob\/delete/m,
    });
    // @vercel/blob does not retry an aborted request: one request timeout ends it, or the run's deadline does.
    expect(report.error?.message).toMatch(
      /^(vercel-blob:files\/: .* stopped: the run's deadline passed|cannot list Vercel Blob prefix "files\/": .*aborted)/i,
    );
    expect(blob.get('files/0000.tmp')).toBeUndefined();
    expect(blob.get('files/young.tmp')).toBeDefined();
  });
});
