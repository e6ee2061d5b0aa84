import type { Grant, Refusal, Statement, StoreDeployment, StoreUse } from '../../core/backend.ts';
import type { S3StoreConfig } from './schema.ts';

/**
 * What a function needs to use an S3 store: exactly the calls the store sends
 * (test/integration/deployment-grants.test.ts replays real runs against them), on named buckets
 * and prefixes, never `*`.
 */
export const s3Deployment: StoreDeployment<S3StoreConfig> = {
  grant: s3Grant,
  buckets: {
    swept: (store) => [store.bucket],
    backup: (to) => s3Location(to)?.bucket,
  },
};

/**
 * Listing and deleting under the store's prefixes. ListBucket on a prefixed store carries an
 * `s3:prefix` condition (every listing the store sends names its prefix or a key under it); the
 * object actions are scoped by the object ARNs. GetObject only with a backup: CopyObject reads
 * the source.
 */
function s3Grant(store: S3StoreConfig, use: StoreUse): Grant | Refusal {
  const shards = store.prefixes ?? [store.prefix];
  const allVersions = store.versions === 'all';
  const lists = allVersions ? ['s3:ListBucket', 's3:ListBucketVersions'] : ['s3:ListBucket'];
  // An AccessDenied delete is explained by reading the object's Object Lock (held, not failed).
  const lockReads = ['s3:GetObjectLegalHold', 's3:GetObjectRetention'];
  const deletes = [
    ...(allVersions ? ['s3:DeleteObject', 's3:DeleteObjectVersion'] : ['s3:DeleteObject']),
    ...lockReads,
  ];
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
function s3Location(to: string): { bucket: string; prefix: string } | null {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(to);
  if (!match) return null;
  const prefix = match[2] ?? '';
  return { bucket: match[1]!, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
}
