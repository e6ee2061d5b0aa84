import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { startDynalite, type TestDynamo } from '../support/dynalite.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { S3RVER_CREDENTIALS, startTestS3, type TestS3 } from '../support/s3.ts';

/** `retention lifecycle` (issue 16, item 5): push a policy down to S3 Lifecycle or DynamoDB TTL, or say why not. */
const shared = usePostgresAndScratch('retention-lifecycle-');
let s3: TestS3;
let dynamo: TestDynamo;

beforeAll(async () => {
  [s3, dynamo] = await Promise.all([startTestS3(), startDynalite()]);
});
afterAll(async () => {
  await s3?.stop();
  await dynamo?.stop();
});

async function cli(policy: Record<string, unknown>, env: Record<string, string>, ...args: string[]) {
  const configPath = path.join(shared.scratch, `${policy.name}-${Math.random()}.json`);
  await writeFile(configPath, JSON.stringify({ policies: [policy] }));
  const control = await shared.server.createDatabase('lifecycle');
  return (...more: string[]) =>
    runCli(['--config', configPath, ...args, ...more], { env: { RETENTION_DATABASE_URL: control, ...env } });
}

describe('retention lifecycle', () => {
  it('an S3 age-by-prefix policy becomes Lifecycle rules; a hold makes it not equivalent, and says so', async () => {
    const bucket = await s3.createBucket();
    const env = {
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    };
    const run = await cli(
      {
        name: 'pdfs',
        class: 'blobs',
        schedule: '0 3 * * *',
        retention: { by: 'prefix', rules: { 'pdfs/testing/': '24h', 'pdfs/financial/': '1y' }, default: '2y' },
        store: {
          kind: 's3',
          bucket,
          prefix: 'pdfs/',
          region: 'us-east-1',
          endpoint: s3.endpoint,
          forcePathStyle: true,
        },
      },
      env,
    );
    const planned = await run('lifecycle', '--policy', 'pdfs', '--json');
    expect(planned.code, planned.stderr).toBe(0);
    expect(JSON.parse(planned.stdout)).toMatchObject({
      policy: 'pdfs',
      mechanism: 's3_lifecycle',
      equivalent: true,
      reasons: [],
      configuration: {
        Rules: [
          { ID: 'retention-pdfs-1', Status: 'Enabled', Filter: { Prefix: 'pdfs/' }, Expiration: { Days: 730 } },
          { ID: 'retention-pdfs-2', Status: 'Enabled', Filter: { Prefix: 'pdfs/testing/' }, Expiration: { Days: 1 } },
          {
            ID: 'retention-pdfs-3',
            Status: 'Enabled',
            Filter: { Prefix: 'pdfs/financial/' },
            Expiration: { Days: 365 },
          },
        ],
      },
    });
    const printed = await run('lifecycle', '--policy', 'pdfs');
    expect(printed.stdout).toContain("S3 Lifecycle can do this policy's deleting");
    expect(printed.stdout).toContain(`aws s3api put-bucket-lifecycle-configuration --bucket ${bucket}`);

    expect((await run('hold', 'add', '--policy', 'pdfs', '--prefix', 'pdfs/case-7/', '--reason', 'case 7')).code).toBe(
      0,
    );
    const held = JSON.parse((await run('lifecycle', '--policy', 'pdfs', '--json')).stdout) as {
      equivalent: boolean;
      reasons: string[];
    };
    expect(held.equivalent).toBe(false);
    expect(held.reasons.join('\n')).toMatch(/1 legal hold\(s\) apply to the policy/);
  });

  it('a DynamoDB tokens policy: TTL state read from the table, a backstop, never a replacement', async () => {
    const table = dynamo.tableName('tokens');
    await dynamo.client().send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      }),
    );
    const run = await cli(
      {
        name: 'sessions',
        class: 'tokens',
        schedule: '0 * * * *',
        retention: '1h',
        store: { kind: 'dynamodb', table, key: { partition: 'id' }, region: 'us-east-1', endpoint: dynamo.endpoint },
      },
      { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' },
    );
    const planned = await run('lifecycle', '--policy', 'sessions', '--json');
    expect(planned.code, planned.stderr).toBe(0);
    const plan = JSON.parse(planned.stdout) as Record<string, unknown> & { reasons: string[]; notes: string[] };
    expect(plan).toMatchObject({ mechanism: 'dynamodb_ttl', equivalent: false, current: 'TTL disabled' });
    expect(plan.reasons[0]).toMatch(/cannot keep the policy's grace of 1h/);
    expect(plan.notes[0]).toMatch(/TTL is off/);
    expect(plan.apply).toBe(
      `aws dynamodb update-time-to-live --table-name ${table} --time-to-live-specification "Enabled=true, AttributeName=expiresAt"`,
    );
  });

  it('a store without an expiry of its own: exit 2 naming --policy', async () => {
    const root = path.join(shared.scratch, 'files');
    await mkdir(root, { recursive: true });
    const run = await cli(
      {
        name: 'tmp',
        class: 'blobs',
        schedule: '0 * * * *',
        retention: '7d',
        store: { kind: 'fs', root },
      },
      {},
    );
    const refused = await run('lifecycle', '--policy', 'tmp');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--policy: tmp keeps its data in a fs store, which has no expiry of its own');
  });
});
