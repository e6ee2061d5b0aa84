import type { RetentionConfig, StoreConfig, StoreKind } from '../config/schema.ts';
import { controlTableDefinition } from '../control/dynamodb/table.ts';
import type { InputIssue } from '../errors.ts';
import type { SecretKey } from './naming.ts';

/**
 * What each backend needs from a deployment, one function per kind: the IAM statements a
 * function needs to use a store (and to back up through it) or the control store, and the
 * secrets it reads. The tables are `satisfies`-checked against the config schema's kinds, so a new
 * kind without an entry is a type error. Actions are exactly the calls the backend's code sends
 * (test/integration/deployment-grants.test.ts replays real runs against them); resources are
 * named tables, indexes, buckets and prefixes, never `*`.
 */

/** One IAM statement, in the shape of SST's `FunctionPermissionArgs` (effect: allow). */
export interface Statement {
  actions: string[];
  resources: string[];
  conditions?: Condition[];
}

export interface Condition {
  test: 'StringLike';
  variable: 's3:prefix';
  values: string[];
}

export interface Grant {
  statements: Statement[];
  secrets: SecretKey[];
}

/** The account and region the functions run in; ARNs use a store's own region where it has one. */
export interface AwsScope {
  region: string;
  accountId: string;
}

export interface StoreUse {
  aws: AwsScope;
  policy: string;
  /** Where the policy copies what it deletes, when it backs up through this store. */
  backupTo?: string | undefined;
}

/** The store cannot be served by a Lambda function; `path` is relative to the store's parent (`store.kind`). */
export interface Refusal {
  refused: InputIssue;
}

type StoreOf<K extends StoreKind> = Extract<StoreConfig, { kind: K }>;
type StorePermissions<K extends StoreKind> = (store: StoreOf<K>, use: StoreUse) => Grant | Refusal;

const NOTHING: Grant = { statements: [], secrets: [] };

export const STORE_PERMISSIONS = {
  fs: () => ({
    refused: {
      path: 'store.kind',
      message: '"fs" is a directory on the machine that runs the tool; a Lambda function has no such directory',
      fix: 'run local policies with the CLI, and deploy a config without them (RETENTION_CONFIG=<file> npx sst deploy)',
    },
  }),
  s3: s3Permissions,
  // Vercel Blob is reached with its token (the SDK reads BLOB_READ_WRITE_TOKEN), never with IAM.
  // Backups are copies inside the same store: the same token.
  'vercel-blob': (store) => ({ statements: [], secrets: store.token === undefined ? ['blobToken'] : [] }),
  dynamodb: dynamoTokensPermissions,
  // The database URL is part of the store config, bundled with it; a backup is a copy table there.
  postgres: () => NOTHING,
} satisfies { [K in StoreKind]: StorePermissions<K> };

/** `permissionsFor(store)` of its kind. */
export function storePermissions(store: StoreConfig, use: StoreUse): Grant | Refusal {
  return (STORE_PERMISSIONS[store.kind] as StorePermissions<StoreKind>)(store, use);
}

/**
 * S3: listing and deleting under the store's prefixes. ListBucket on a prefixed store carries an
 * `s3:prefix` condition (every listing the store sends names its prefix or a key under it); the
 * object actions are scoped by the object ARNs. GetObject only with a backup: CopyObject reads
 * the source.
 */
function s3Permissions(store: StoreOf<'s3'>, use: StoreUse): Grant | Refusal {
  const shards = store.prefixes ?? [store.prefix];
  const allVersions = store.versions === 'all';
  const lists = allVersions ? ['s3:ListBucket', 's3:ListBucketVersions'] : ['s3:ListBucket'];
  // An AccessDenied delete is explained by reading the object's Object Lock (held, not failed).
  const lockReads = ['s3:GetObjectLegalHold', 's3:GetObjectRetention'];
  const deletes = [...(allVersions ? ['s3:DeleteObject', 's3:DeleteObjectVersion'] : ['s3:DeleteObject']), ...lockReads];
  const listing = listStatement(store.bucket, shards, lists);
  if (use.backupTo === undefined) {
    return { statements: [listing, { actions: deletes, resources: objectArns(store.bucket, shards) }], secrets: [] };
  }

  const location = s3Location(use.backupTo);
  if (!location) {
    const message = `"${use.backupTo}" is not an S3 location`;
    return { refused: { path: 'backup.to', message, fix: 'use s3://<bucket>/<prefix>' } };
  }
  // The store writes copies under `<prefix><policy>/<runId>/` and prunes whole run folders there.
  const copies = `${location.prefix}${use.policy}/`;
  return {
    statements: [
      listing,
      { actions: ['s3:GetObject', ...deletes], resources: objectArns(store.bucket, shards) },
      listStatement(location.bucket, [copies], ['s3:ListBucket']),
      { actions: ['s3:PutObject', 's3:DeleteObject'], resources: objectArns(location.bucket, [copies]) },
    ],
    secrets: [],
  };
}

function listStatement(bucket: string, prefixes: string[], actions: string[]): Statement {
  const statement: Statement = { actions, resources: [`arn:aws:s3:::${bucket}`] };
  // An empty prefix is the whole bucket: no condition to add.
  if (prefixes.some((prefix) => prefix === '')) return statement;
  const values = prefixes.map((prefix) => `${prefix}*`);
  return { ...statement, conditions: [{ test: 'StringLike', variable: 's3:prefix', values }] };
}

function objectArns(bucket: string, prefixes: string[]): string[] {
  return prefixes.map((prefix) => `arn:aws:s3:::${bucket}/${prefix}*`);
}

/** `s3://bucket/prefix` → the bucket and a prefix ending with `/` (or empty); null for anything else. */
export function s3Location(to: string): { bucket: string; prefix: string } | null {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(to);
  if (!match) return null;
  const prefix = match[2] ?? '';
  return { bucket: match[1]!, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
}

/**
 * DynamoDB tokens: DescribeTable (open checks the key schema), BatchGetItem (which keys are still
 * there), then either Query on the configured GSI or Scan of the table, and conditional
 * DeleteItem or unconditional BatchWriteItem.
 */
function dynamoTokensPermissions(store: StoreOf<'dynamodb'>, use: StoreUse): Grant {
  const table = tableArn(use.aws, store.region, store.table);
  const tableActions = [
    'dynamodb:DescribeTable',
    'dynamodb:BatchGetItem',
    ...(store.index ? [] : ['dynamodb:Scan']),
    store.conditional ? 'dynamodb:DeleteItem' : 'dynamodb:BatchWriteItem',
  ];
  const statements: Statement[] = [{ actions: tableActions, resources: [table] }];
  if (store.index) {
    statements.push({ actions: ['dynamodb:Query'], resources: [`${table}/index/${store.index.name}`] });
  }
  return { statements, secrets: [] };
}

function tableArn(aws: AwsScope, region: string | undefined, table: string): string {
  return `arn:aws:dynamodb:${region ?? aws.region}:${aws.accountId}:table/${table}`;
}

type ControlConfig = NonNullable<RetentionConfig['control']>;
export type ControlKind = ControlConfig['kind'];
type ControlOf<K extends ControlKind> = Extract<ControlConfig, { kind: K }>;
/** Data-class functions run policies; health only reads run history. */
export type ControlAccess = 'read-write' | 'read-only';
type ControlPermissions<K extends ControlKind> = (
  control: ControlOf<K>,
  access: ControlAccess,
  aws: AwsScope,
) => Grant;

/**
 * Both kinds open the store as every caller does: `migrate()` first, which on DynamoDB only
 * describes the table and its TTL when the table exists as declared (sst.config.ts declares it;
 * creating it or enabling TTL is not granted). Index reads fetch their records with BatchGetItem.
 */
const CONTROL_READS = [
  'dynamodb:DescribeTable',
  'dynamodb:DescribeTimeToLive',
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
];
const CONTROL_WRITES = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];

export const CONTROL_PERMISSIONS = {
  // A configured PostgreSQL is reached through the URL in the config. (Read-only there would be a
  // database role: the health function runs migrate() like the others.)
  postgres: () => NOTHING,
  dynamodb: (control, access, aws) => {
    const table = tableArn(aws, control.region, control.table);
    const indexes = (controlTableDefinition(control.table).GlobalSecondaryIndexes ?? []).map(
      (index) => `${table}/index/${index.IndexName}`,
    );
    const actions = access === 'read-only' ? CONTROL_READS : [...CONTROL_READS, ...CONTROL_WRITES];
    return {
      statements: [
        { actions, resources: [table] },
        { actions: ['dynamodb:Query'], resources: indexes },
      ],
      secrets: [],
    };
  },
} satisfies { [K in ControlKind]: ControlPermissions<K> };

/** The control store, with the access the function needs; none configured: PostgreSQL at the URL secret. */
export function controlPermissions(
  control: ControlConfig | undefined,
  access: ControlAccess,
  aws: AwsScope,
): Grant {
  if (!control) return { statements: [], secrets: ['databaseUrl'] };
  return (CONTROL_PERMISSIONS[control.kind] as ControlPermissions<ControlKind>)(control, access, aws);
}
