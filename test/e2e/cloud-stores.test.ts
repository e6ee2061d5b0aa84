import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { createStore } from '../../lib/stores/registry.ts';
import { runCli } from '../support/cli.ts';
import { type FaultProxy, startFaultProxy } from '../support/faultProxy.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { S3RVER_CREDENTIALS, startTestS3, type TestS3 } from '../support/s3.ts';
import { startVercelBlobStandIn, type VercelBlobStandIn } from '../support/vercelBlob.ts';

/** The CLI against object stores, as an operator points it at them: config + the SDKs' env. */
const shared = usePostgresAndScratch('retention-cloud-e2e-');
let s3: TestS3;
let blob: VercelBlobStandIn;
let proxy: FaultProxy;
const DAY = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms);

beforeAll(async () => {
  [s3, blob] = await Promise.all([startTestS3(), startVercelBlobStandIn()]);
  proxy = await startFaultProxy(s3.endpoint);
});
afterAll(async () => {
  await proxy?.stop();
  await s3?.stop();
  await blob?.stop();
});

async function runJson(
  policy: Record<string, unknown>,
  env: Record<string, string>,
  ...args: string[]
): Promise<RunReport> {
  const configPath = path.join(shared.scratch, `${policy.name}-${Date.now()}.json`);
  await writeFile(configPath, JSON.stringify({ policies: [policy] }));
  const result = await runCli(['--config', configPath, 'run', '--json', ...args], {
    env: { RETENTION_DATABASE_URL: await shared.server.createDatabase('cloud'), ...env },
  });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as RunReport;
}

describe('CLI against object stores', () => {
  it('sweeps an S3 prefix with per-purpose prefixes, keys as stored, leaving young and foreign objects', async () => {
    const bucket = await s3.createBucket();
    await s3.seed(bucket, [
      { key: 'pdfs/testing/run 1+2.pdf', timestamp: ago(2 * DAY) },
      { key: 'pdfs/financial/2023 report%.pdf', timestamp: ago(200 * DAY) },
      { key: 'pdfs/financial/2019 report.pdf', timestamp: ago(400 * DAY) },
      { key: 'pdfs/misc/ünïcode #1.pdf', timestamp: ago(40 * DAY) },
      { key: 'other/old.pdf', timestamp: ago(400 * DAY) },
    ]);
    const report = await runJson(
      {
        name: 'pdfs',
        class: 'blobs',
        schedule: '0 3 * * *',
        retention: { by: 'prefix', rules: { 'pdfs/testing/': '24h', 'pdfs/financial/': '1y' }, default: '30d' },
        store: {
          kind: 's3',
          bucket,
          prefix: 'pdfs/',
          region: 'us-east-1',
          endpoint: s3.endpoint,
          forcePathStyle: true,
        },
        limits: { maxDeleteFraction: 1 },
      },
      { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey },
      '--list',
    );
    expect(report).toMatchObject({ status: 'completed', store: `s3://${bucket}/pdfs/`, deleted: 3, scanned: 4 });
    expect(report.items!.map((item) => [item.key, item.outcome]).sort()).toEqual([
      ['pdfs/financial/2019 report.pdf', 'deleted'],
      ['pdfs/misc/ünïcode #1.pdf', 'deleted'],
      ['pdfs/testing/run 1+2.pdf', 'deleted'],
    ]);
    const client = s3.client();
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const left = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect((left.Contents ?? []).map((object) => object.Key).sort()).toEqual([
      'other/old.pdf',
      'pdfs/financial/2023 report%.pdf',
    ]);
  });

  it('a store from the registry checks its backend once, however often it is opened', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      VERCEL_BLOB_API_URL: blob.apiUrl,
      BLOB_READ_WRITE_TOKEN: blob.token,
      VERCEL_BLOB_RETRIES: '0',
    });
    try {
      const [policy] = parseConfig({
        policies: [
          {
            name: 'invoices',
            class: 'blobs',
            schedule: '0 4 * * *',
            retention: '1y',
            store: { kind: 'vercel-blob', prefix: 'invoices/' },
          },
        ],
      }).policies;
      const store = await createStore(policy!);
      blob.resetCounters();
      await store.open();
      await store.open();
      expect(blob.calls.list).toBe(1);
    } finally {
      process.env = saved;
    }
  });

  it('sweeps Vercel Blob through the real SDK, with the token and API base from the environment', async () => {
    blob.clear();
    blob.seed([
      { pathname: 'invoices/2019.pdf', uploadedAt: ago(400 * DAY) },
      { pathname: 'invoices/2026.pdf', uploadedAt: ago(10 * DAY) },
      { pathname: 'avatars/a.png', uploadedAt: ago(400 * DAY) },
    ]);
    blob.resetCounters();
    const report = await runJson(
      {
        name: 'invoices',
        class: 'blobs',
        schedule: '0 4 * * *',
        retention: '1y',
        store: { kind: 'vercel-blob', prefix: 'invoices/' },
        limits: { maxDeleteFraction: 1 },
      },
      { VERCEL_BLOB_API_URL: blob.apiUrl, BLOB_READ_WRITE_TOKEN: blob.token, VERCEL_BLOB_RETRIES: '0' },
    );
    expect(report).toMatchObject({ status: 'completed', deleted: 1, scanned: 2 });
    expect(blob.get('invoices/2019.pdf')).toBeUndefined();
    expect(blob.get('invoices/2026.pdf')).toBeDefined();
    expect(blob.get('avatars/a.png')).toBeDefined();
    expect(blob.calls.head).toBe(0);
  });

  it('a short budget ends partial; repeated runs resume and delete every eligible object exactly once', async () => {
    // Budgets start at 1s: each DeleteObjects (of 1000 keys, one at a time) held 0.6 s by the proxy leaves room for one per run.
    const bucket = await s3.createBucket();
    const expired = 1_200;
    await s3.seedFiles(bucket, [
      ...Array.from({ length: expired }, (_, i) => ({
        key: `old/${String(i).padStart(4, '0')}.tmp`,
        timestamp: ago(60 * DAY),
      })),
      { key: 'young.tmp', timestamp: ago(DAY) },
    ]);
    proxy.reset();
    proxy.delayDeletes(600);
    const policy = {
      name: 'tmp',
      class: 'blobs',
      schedule: '0 * * * *',
      retention: '30d',
      batchSize: 5,
      limits: { maxDeleteFraction: 1 },
      store: {
        kind: 's3',
        bucket,
        region: 'us-east-1',
        endpoint: proxy.endpoint,
        forcePathStyle: true,
        deleteConcurrency: 1,
      },
    };
    const configPath = path.join(shared.scratch, `budget-${Date.now()}.json`);
    await writeFile(configPath, JSON.stringify({ policies: [policy] }));
    const env = {
      RETENTION_DATABASE_URL: await shared.server.createDatabase('cloud'),
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    };
    const cli = async (...args: string[]) => {
      const result = await runCli(['--config', configPath, ...args, '--json'], { env });
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as unknown;
    };

    const statuses: string[] = [];
    for (let attempt = 0; attempt < 6; attempt += 1) {
      const report = (await cli('run', '--budget', '1s')) as RunReport;
      statuses.push(report.status);
      if (report.status === 'completed') break;
    }
    expect(statuses[0]).toBe('partial');
    expect(statuses.at(-1)).toBe('completed');
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const left = await s3.client().send(new ListObjectsV2Command({ Bucket: bucket }));
    expect((left.Contents ?? []).map((object) => object.Key)).toEqual(['young.tmp']);
    const records = (await cli('audit', '--policy', 'tmp', '--limit', '10000')) as Array<{
      key: string;
      status: string;
    }>;
    const deletedKeys = records.filter((record) => record.status === 'deleted').map((record) => record.key);
    expect(deletedKeys).toHaveLength(expired);
    expect(new Set(deletedKeys).size).toBe(expired);
    expect(records.every((record) => record.status === 'deleted')).toBe(true);
  });
});
