import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../lib/config/load.ts';
import type { RetentionConfigInput } from '../../lib/config/schema.ts';
import type { Condition, Statement } from '../../lib/core/backend.ts';
import { ConfigError } from '../../lib/errors.ts';
import { type DeploymentPlan, planDeployment } from '../../lib/serverless/deployment.ts';
import type { FunctionRole } from '../../lib/serverless/naming.ts';
import { STORE_BACKENDS } from '../../lib/stores/registry.ts';

/**
 * The deployment plan from parsed configs (the real schema, no hand-built shapes): per function,
 * the exact IAM statements and secrets each store kind, linked store, backup and control store
 * needs.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CONTEXT = { app: 'app', stage: 'test', region: 'eu-west-1', accountId: '123456789012' };
const ARN = {
  lambda: 'arn:aws:lambda:eu-west-1:123456789012:function',
  dynamodb: 'arn:aws:dynamodb:eu-west-1:123456789012:table',
};

type PolicyInput = RetentionConfigInput['policies'][number];
const COMMON = { retention: '30d', schedule: '0 3 * * *' } as const;

function plan(policies: PolicyInput[], control?: RetentionConfigInput['control']): DeploymentPlan {
  return planDeployment(parseConfig({ ...(control ? { control } : {}), policies }), CONTEXT);
}

function fn(deployment: DeploymentPlan, role: FunctionRole) {
  const found = deployment.functions.find((candidate) => candidate.role === role);
  if (!found) throw new Error(`no ${role} function in the plan`);
  return found;
}

/** A data-class function's statements without the self-invoke every one of them gets. */
function storeStatements(deployment: DeploymentPlan, role: FunctionRole): Statement[] {
  return fn(deployment, role).permissions.filter((statement) => !statement.actions.includes('lambda:InvokeFunction'));
}

const onPrefix = (...values: string[]): Condition[] => [{ test: 'StringLike', variable: 's3:prefix', values }];

describe('the shipped retention.config.ts', () => {
  it('loads through the real loader and plans: prefix-conditioned listing, the backup location, the Vercel token', async () => {
    const { config } = await loadConfig('retention.config.ts', ROOT);
    const deployment = planDeployment(config, CONTEXT);
    expect(deployment.functions.map((entry) => entry.role)).toEqual(['blobs', 'health', 'api']);
    expect(fn(deployment, 'blobs').permissions).toEqual([
      { actions: ['s3:ListBucket'], resources: ['arn:aws:s3:::acme-docs'], conditions: onPrefix('pdfs/*') },
      {
        actions: ['s3:GetObject', 's3:DeleteObject', 's3:GetObjectLegalHold', 's3:GetObjectRetention'],
        resources: ['arn:aws:s3:::acme-docs/pdfs/*'],
      },
      {
        actions: ['s3:ListBucket'],
        resources: ['arn:aws:s3:::acme-retention-backups'],
        conditions: onPrefix('pdfs/*'),
      },
      { actions: ['s3:PutObject', 's3:DeleteObject'], resources: ['arn:aws:s3:::acme-retention-backups/pdfs/*'] },
      { actions: ['lambda:InvokeFunction'], resources: [`${ARN.lambda}:app-test-blobs`] },
    ]);
    // No control configured: PostgreSQL at the RetentionDatabaseUrl secret; `uploads` has no token of its own.
    expect(fn(deployment, 'blobs').secrets).toEqual(['databaseUrl', 'blobToken', 'sentryDsn']);
    expect(fn(deployment, 'health')).toMatchObject({ permissions: [], secrets: ['databaseUrl', 'healthToken'] });
    // The API: the control store (its URL secret), its tokens, and invoking the one data-class function.
    expect(fn(deployment, 'api')).toMatchObject({
      handler: 'functions/api.handler',
      url: true,
      permissions: [{ actions: ['lambda:InvokeFunction'], resources: [`${ARN.lambda}:app-test-blobs`] }],
      secrets: ['databaseUrl', 'apiToken', 'viewerToken'],
      environment: { RETENTION_STAGE: 'test', RETENTION_FUNCTION_BLOBS: 'app-test-blobs' },
    });
    expect(deployment.controlTable).toBeNull();
    expect(deployment.backupBuckets).toEqual([
      { component: 'BackupAcmeRetentionBackups', bucket: 'acme-retention-backups', expiresInDays: 30 },
    ]);
  });
});

const s3 = (fields: Record<string, unknown> = {}) => ({
  kind: 's3' as const,
  bucket: 'docs',
  region: 'eu-west-1',
  ...fields,
});
// Shorthands for policy inputs; parseConfig checks each against the schema.
type Fields = Record<string, unknown>;
const database = { kind: 'postgres', url: 'postgres://app@db/app' };
const rows = (fields: Fields) =>
  ({
    ...COMMON,
    name: 'documents',
    class: 'rows',
    store: database,
    table: 'public.documents',
    timestamp: 'created_at',
    ...fields,
  }) as PolicyInput;
const tokens = (store: Fields) =>
  ({ ...COMMON, name: 'sessions', class: 'tokens', store, retention: '1d' }) as PolicyInput;
const blobs = (store: Fields, fields: Fields = {}) =>
  ({ ...COMMON, name: 'files', class: 'blobs', store, ...fields }) as PolicyInput;
const sessionsTable = { kind: 'dynamodb', table: 'sessions', key: { partition: 'id' } };

interface Case {
  name: string;
  /** The store kinds the case plans, for the coverage check below. */
  kinds: string[];
  policy: PolicyInput;
  role: FunctionRole;
  statements: Statement[];
  secrets: string[];
}

const CASES: Case[] = [
  {
    name: 's3 under a prefix: listing conditioned on it, deletes scoped to it',
    kinds: ['s3'],
    policy: blobs(s3({ prefix: 'pdfs/' })),
    role: 'blobs',
    statements: [
      { actions: ['s3:ListBucket'], resources: ['arn:aws:s3:::docs'], conditions: onPrefix('pdfs/*') },
      {
        actions: ['s3:DeleteObject', 's3:GetObjectLegalHold', 's3:GetObjectRetention'],
        resources: ['arn:aws:s3:::docs/pdfs/*'],
      },
    ],
    secrets: ['databaseUrl', 'sentryDsn'],
  },
  {
    name: 's3 over a whole bucket: no condition to add',
    kinds: ['s3'],
    policy: blobs(s3()),
    role: 'blobs',
    statements: [
      { actions: ['s3:ListBucket'], resources: ['arn:aws:s3:::docs'] },
      {
        actions: ['s3:DeleteObject', 's3:GetObjectLegalHold', 's3:GetObjectRetention'],
        resources: ['arn:aws:s3:::docs/*'],
      },
    ],
    secrets: ['databaseUrl', 'sentryDsn'],
  },
  {
    name: 's3 sharded, every version: each shard, and the version actions',
    kinds: ['s3'],
    policy: blobs(s3({ prefix: 'logs/', prefixes: ['logs/a/', 'logs/b/'], versions: 'all' })),
    role: 'blobs',
    statements: [
      {
        actions: ['s3:ListBucket', 's3:ListBucketVersions'],
        resources: ['arn:aws:s3:::docs'],
        conditions: onPrefix('logs/a/*', 'logs/b/*'),
      },
      {
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObjectLegalHold', 's3:GetObjectRetention'],
        resources: ['arn:aws:s3:::docs/logs/a/*', 'arn:aws:s3:::docs/logs/b/*'],
      },
    ],
    secrets: ['databaseUrl', 'sentryDsn'],
  },
  {
    name: "s3 backed up to S3: read the source, write and prune the policy's folder of the backup location",
    kinds: ['s3'],
    policy: blobs(s3({ prefix: 'pdfs/' }), { backup: { to: 's3://vault/retention', keepFor: '30d' } }),
    role: 'blobs',
    statements: [
      { actions: ['s3:ListBucket'], resources: ['arn:aws:s3:::docs'], conditions: onPrefix('pdfs/*') },
      {
        actions: ['s3:GetObject', 's3:DeleteObject', 's3:GetObjectLegalHold', 's3:GetObjectRetention'],
        resources: ['arn:aws:s3:::docs/pdfs/*'],
      },
      { actions: ['s3:ListBucket'], resources: ['arn:aws:s3:::vault'], conditions: onPrefix('retention/files/*') },
      { actions: ['s3:PutObject', 's3:DeleteObject'], resources: ['arn:aws:s3:::vault/retention/files/*'] },
    ],
    secrets: ['databaseUrl', 'sentryDsn'],
  },
  {
    name: 'vercel-blob: no IAM, the token secret',
    kinds: ['vercel-blob'],
    policy: blobs({ kind: 'vercel-blob', prefix: 'uploads/' }, { backup: { to: 'backups/', keepFor: '7d' } }),
    role: 'blobs',
    statements: [],
    secrets: ['databaseUrl', 'blobToken', 'sentryDsn'],
  },
  {
    name: 'vercel-blob with its token in the config: no secret',
    kinds: ['vercel-blob'],
    policy: blobs({ kind: 'vercel-blob', token: 'vercel_blob_rw_store_secret' }),
    role: 'blobs',
    statements: [],
    secrets: ['databaseUrl', 'sentryDsn'],
  },
  {
    name: 'dynamodb tokens through a GSI: Query on the index only, conditional deletes',
    kinds: ['dynamodb'],
    policy: tokens({ ...sessionsTable, index: { name: 'byExpiry', partition: 'shard', values: ['a', 'b'] } }),
    role: 'tokens',
    statements: [
      {
        actions: ['dynamodb:DescribeTable', 'dynamodb:BatchGetItem', 'dynamodb:DeleteItem'],
        resources: [`${ARN.dynamodb}/sessions`],
      },
      { actions: ['dynamodb:Query'], resources: [`${ARN.dynamodb}/sessions/index/byExpiry`] },
    ],
    secrets: ['databaseUrl', 'sentryDsn'],
  },
  {
    name: 'dynamodb tokens without a GSI, in their own region, batch deletes: Scan and BatchWriteItem',
    kinds: ['dynamodb'],
    policy: tokens({ ...sessionsTable, region: 'us-west-2', conditional: false }),
    role: 'tokens',
    statements: [
      {
        actions: ['dynamodb:DescribeTable', 'dynamodb:BatchGetItem', 'dynamodb:Scan', 'dynamodb:BatchWriteItem'],
        resources: ['arn:aws:dynamodb:us-west-2:123456789012:table/sessions'],
      },
    ],
    secrets: ['databaseUrl', 'sentryDsn'],
  },
  {
    name: 'postgres tokens: the URL is in the config, no IAM',
    kinds: ['postgres'],
    policy: tokens({ kind: 'postgres', url: 'postgres://app@db/app', table: 'sessions' }),
    role: 'tokens',
    statements: [],
    secrets: ['databaseUrl', 'sentryDsn'],
  },
  {
    name: 'rows backed up to a copy table: no IAM',
    kinds: ['postgres'],
    policy: rows({ backup: { to: 'archive.documents', keepFor: '30d' } }),
    role: 'rows',
    statements: [],
    secrets: ['databaseUrl', 'sentryDsn'],
  },
  {
    name: 'rows with linked files in S3: the rows function may delete them',
    kinds: ['postgres', 's3'],
    policy: rows({ blob: { column: 'file_key', store: s3({ bucket: 'uploads', prefix: 'files/' }) } }),
    role: 'rows',
    statements: [
      { actions: ['s3:ListBucket'], resources: ['arn:aws:s3:::uploads'], conditions: onPrefix('files/*') },
      {
        actions: ['s3:DeleteObject', 's3:GetObjectLegalHold', 's3:GetObjectRetention'],
        resources: ['arn:aws:s3:::uploads/files/*'],
      },
    ],
    secrets: ['databaseUrl', 'sentryDsn'],
  },
  {
    name: 'rows with linked files in Vercel Blob: the rows function reads the token',
    kinds: ['postgres', 'vercel-blob'],
    policy: rows({ blob: { column: 'file_url', store: { kind: 'vercel-blob', prefix: 'files/' } } }),
    role: 'rows',
    statements: [],
    secrets: ['databaseUrl', 'blobToken', 'sentryDsn'],
  },
];

describe('planDeployment per store kind', () => {
  it.each(CASES)('$name', ({ policy, role, statements, secrets }) => {
    const deployment = plan([policy]);
    expect(storeStatements(deployment, role)).toEqual(statements);
    expect(fn(deployment, role).secrets).toEqual(secrets);
    // Each data-class function may invoke itself (backfills), and no other function.
    expect(
      fn(deployment, role).permissions.filter((statement) => statement.actions.includes('lambda:InvokeFunction')),
    ).toEqual([{ actions: ['lambda:InvokeFunction'], resources: [`${ARN.lambda}:app-test-${role}`] }]);
  });

  it("grants a policy's stores to its own class's function only", () => {
    const deployment = plan([
      blobs(s3({ prefix: 'pdfs/' })),
      rows({ blob: { column: 'file_key', store: s3({ bucket: 'uploads', prefix: 'files/' }) } }),
    ]);
    const buckets = (role: FunctionRole) => [
      ...new Set(storeStatements(deployment, role).flatMap((statement) => statement.resources)),
    ];
    expect(buckets('blobs')).toEqual(['arn:aws:s3:::docs', 'arn:aws:s3:::docs/pdfs/*']);
    expect(buckets('rows')).toEqual(['arn:aws:s3:::uploads', 'arn:aws:s3:::uploads/files/*']);
  });

  it('refuses stores a Lambda function cannot reach, naming each field: fs (own or linked), an S3 backup outside S3', () => {
    const refused = (policies: PolicyInput[]) => {
      try {
        plan(policies);
      } catch (error) {
        if (error instanceof ConfigError) return error.issues.map((issue) => issue.path);
        throw error;
      }
      throw new Error('planned');
    };
    expect(refused([blobs({ kind: 'fs', root: '/srv/scratch' }, { enabled: false })])).toEqual([
      'policies[0].store.kind',
    ]);
    expect(refused([rows({ blob: { column: 'path', store: { kind: 'fs', root: '/srv/files' } } })])).toEqual([
      'policies[0].blob.store.kind',
    ]);
    expect(refused([blobs(s3(), { backup: { to: '/var/backups', keepFor: '7d' } })])).toEqual([
      'policies[0].backup.to',
    ]);
    expect(() => plan([blobs({ kind: 'fs', root: '/srv/scratch' })])).toThrow(
      /policies\[0\]\.store\.kind: "fs" is a directory .* \(run local policies with the CLI/,
    );
  });
});

describe('the control store', () => {
  const dynamoControl = { kind: 'dynamodb', table: 'retention-control' } as const;
  const table = `${ARN.dynamodb}/retention-control`;
  const indexes = ['gsi1', 'gsi2', 'gsi3', 'gsi4'].map((index) => `${table}/index/${index}`);

  it('DynamoDB: data-class functions read and write the table, health only reads it; both Query its indexes', () => {
    const deployment = plan(
      [tokens({ kind: 'postgres', url: 'postgres://app@db/app', table: 'sessions' })],
      dynamoControl,
    );
    const reads = [
      'dynamodb:DescribeTable',
      'dynamodb:DescribeTimeToLive',
      'dynamodb:GetItem',
      'dynamodb:BatchGetItem',
      'dynamodb:Query',
    ];
    const writes = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];
    expect(storeStatements(deployment, 'tokens')).toEqual([
      { actions: [...reads, ...writes], resources: [table] },
      { actions: ['dynamodb:Query'], resources: indexes },
    ]);
    expect(fn(deployment, 'health')).toMatchObject({
      permissions: [
        { actions: reads, resources: [table] },
        { actions: ['dynamodb:Query'], resources: indexes },
      ],
      secrets: ['healthToken'],
    });
    expect(fn(deployment, 'tokens').secrets).toEqual(['sentryDsn']);
    // The API reads and writes the table as the data-class functions do, and starts runs in them.
    expect(fn(deployment, 'api')).toMatchObject({
      permissions: [
        { actions: [...reads, ...writes], resources: [table] },
        { actions: ['dynamodb:Query'], resources: indexes },
        { actions: ['lambda:InvokeFunction'], resources: [`${ARN.lambda}:app-test-tokens`] },
      ],
      secrets: ['apiToken', 'viewerToken'],
    });
    expect(deployment.secrets).toEqual(['sentryDsn', 'healthToken', 'apiToken', 'viewerToken']);
    expect(deployment.controlTable).toMatchObject({
      name: 'retention-control',
      primaryIndex: { hashKey: 'pk', rangeKey: 'sk' },
      ttl: 'expiresAt',
    });
  });

  it('PostgreSQL named in the config: its URL travels with the config, no secret; none named: the URL secret', () => {
    const policy = blobs(s3());
    expect(plan([policy], { kind: 'postgres', url: 'postgres://retention@db/retention' }).secrets).toEqual([
      'sentryDsn',
      'healthToken',
      'apiToken',
      'viewerToken',
    ]);
    expect(plan([policy]).secrets).toEqual(['databaseUrl', 'sentryDsn', 'healthToken', 'apiToken', 'viewerToken']);
  });

  it('refuses a DynamoDB control table in another region than the one it is declared in', () => {
    expect(() => plan([blobs(s3())], { ...dynamoControl, region: 'us-east-1' })).toThrow(
      /control\.region: the control table is declared in the deploy region eu-west-1/,
    );
  });
});

describe('the health function', () => {
  const everyKind = [
    blobs(s3({ prefix: 'pdfs/' }), { backup: { to: 's3://vault/', keepFor: '7d' } }),
    { ...blobs({ kind: 'vercel-blob' }), name: 'uploads' },
    tokens({ ...sessionsTable, index: { name: 'byExpiry', partition: 'shard', values: ['a'] } }),
    { ...tokens({ kind: 'postgres', url: 'postgres://app@db/app', table: 'grants' }), name: 'grants' },
    rows({ blob: { column: 'file_key', store: s3({ bucket: 'uploads', prefix: 'files/' }) } }),
  ] as PolicyInput[];
  // Anything that creates, changes, deletes or invokes, in any service.
  const WRITE = /:(Put|Update|Delete|BatchWrite|Create|TransactWrite|Restore|Invoke|Copy)/;

  it.each([
    ['DynamoDB', { kind: 'dynamodb', table: 'retention-control' } as const],
    ['PostgreSQL', undefined],
  ])('holds no write action and no store, whatever the policies (%s control store)', (_name, control) => {
    const health = fn(plan(everyKind, control), 'health');
    expect(health.permissions.flatMap((statement) => statement.actions).filter((action) => WRITE.test(action))).toEqual(
      [],
    );
    expect(
      health.permissions
        .flatMap((statement) => statement.resources)
        .every((resource) => resource.includes(':table/retention-control')),
    ).toBe(true);
    expect(health.secrets).not.toContain('blobToken');
  });
});

describe('the registered store kinds', () => {
  // Every kind has its descriptor's grant (the compiler requires it; test/unit/registry.test.ts
  // checks the schema, factory and plan read every kind): here, its exact statements.
  it('are each exercised above, so a new kind comes with its expected statements', () => {
    const planned = new Set(CASES.flatMap((entry) => entry.kinds));
    expect(STORE_BACKENDS.map((backend) => backend.kind).filter((kind) => kind !== 'fs' && !planned.has(kind))).toEqual(
      [],
    );
  });
});
