import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_LOADERS } from '../../lib/control/registry.ts';
import { createRunMonitor } from '../../lib/observe/sentry.ts';
import { createDataClassHandler } from '../../lib/serverless/handler.ts';
import { isErrorResult } from '../../lib/serverless/result.ts';
import { createRuntime } from '../../lib/serverless/runtime.ts';
import { createStore } from '../../lib/stores/registry.ts';
import { expectRefused, runInProcess, startTripwire } from '../support/badInputs.ts';
import { seedFiles } from '../support/cli.ts';
import { lambdaContext } from '../support/handlerFixture.ts';

/**
 * Issue 11 item 6: every bad input — config fields of every store kind, CLI flags of every
 * command, Lambda payloads — exits 2 (or is refused as `bad_payload`/`bad_config`) with
 * `error: <path>: <what> (<fix>)`, echoes at most ~200 characters of a value, and touches
 * nothing. Every backend of these configs is a tripwire that counts connections, the control
 * store too, and the first policy would delete an expired file: a refusal that came late shows.
 * The CLI runs in-process through `main(argv)`, as the binary does (test/e2e/bad-inputs.test.ts
 * runs a few through the real process).
 */
const scratch = await mkdtemp(path.join(os.tmpdir(), 'retention-bad-inputs-'));
const trip = await startTripwire();
const ROOT = path.join(scratch, 'files');
const HOME = path.join(scratch, 'home');
const ENV = { RETENTION_DATABASE_URL: trip.postgres, RETENTION_HOME: HOME, RETENTION_LOG_LEVEL: 'info' };
// Any AWS or Vercel request these inputs could cause goes to the tripwire too, never to the cloud.
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL: trip.http,
  VERCEL_BLOB_API_URL: trip.http,
});
delete process.env.BLOB_READ_WRITE_TOKEN;

beforeAll(() => seedFiles(ROOT, [{ key: 'expired.bin', mtime: new Date(Date.now() - 400 * 86_400_000) }]));
afterAll(async () => {
  await trip.close();
  await rm(scratch, { recursive: true, force: true });
});

type Doc = Record<string, unknown>;
const when = { retention: '30d', schedule: '0 * * * *' };
const FILES = {
  name: 'files',
  class: 'blobs',
  store: { kind: 'fs', root: ROOT },
  ...when,
  limits: { maxDeleteFraction: 1 },
};
const OTHER = { ...FILES, name: 'other' };
const S3_STORE = { kind: 's3', bucket: 'acme-docs', region: 'us-east-1', endpoint: trip.http, forcePathStyle: true };
const S3 = { name: 'pdfs', class: 'blobs', store: S3_STORE, ...when };
const VERCEL = {
  name: 'uploads',
  class: 'blobs',
  store: { kind: 'vercel-blob', token: 'vercel_blob_rw_store1_abc' },
  ...when,
};
const ROWS = {
  name: 'documents',
  class: 'rows',
  store: { kind: 'postgres', url: trip.postgres },
  table: 'public.documents',
  timestamp: 'created_at',
  ...when,
};
const PG_TOKENS = {
  name: 'sessions',
  class: 'tokens',
  store: { kind: 'postgres', url: trip.postgres, table: 'sessions' },
  ...when,
};
const DYNAMO_STORE = {
  kind: 'dynamodb',
  table: 'sessions',
  key: { partition: 'pk' },
  region: 'us-east-1',
  endpoint: trip.http,
};
const DYNAMO = { name: 'refresh-tokens', class: 'tokens', store: DYNAMO_STORE, ...when };

/** A config whose second policy is `base` with `fields` (a bad second policy must stop the first). */
const policy = (base: Doc, fields: Doc): Doc => ({ policies: [FILES, { ...base, ...fields }] });
const store = (base: Doc, fields: Doc): Doc => policy(base, { store: { ...(base.store as Doc), ...fields } });
const control = (fields: Doc): Doc => ({ control: fields, policies: [FILES] });
const HUGE = 'x'.repeat(1_000_000);
const CLIPPED = '… (1000000 characters)';

/** [what, config, field path, start of the message]: each config is loaded by `retention run --all`. */
const CONFIGS: Array<[string, Doc, string, string]> = [
  ['a name not in kebab-case', policy(OTHER, { name: 'Temp Files' }), 'policies[1].name', 'must be kebab-case'],
  ['a name that is a number', policy(OTHER, { name: 42 }), 'policies[1].name', 'must be a string, not 42'],
  ['a name of a megabyte', policy(OTHER, { name: HUGE }), 'policies[1].name', 'is 1000000 characters long'],
  [
    'a duplicate name',
    policy(OTHER, { name: 'files' }),
    'policies[1].name',
    'duplicate policy name "files" (also policies[0])',
  ],
  [
    'a description that is a number',
    policy(OTHER, { description: 5 }),
    'policies[1].description',
    'must be a string, not 5',
  ],
  ['a misspelt field', policy(OTHER, { retentoin: '1d' }), 'policies[1]', 'unknown field "retentoin"'],
  [
    'a field name of a megabyte',
    policy(OTHER, { [HUGE]: 1 }),
    'policies[1]',
    `unknown field "${'x'.repeat(200)}${CLIPPED}"`,
  ],
  ['an unknown data class', policy(OTHER, { class: 'files' }), 'policies[1].class', 'unknown data class'],
  ['enabled as text', policy(OTHER, { enabled: 'yes' }), 'policies[1].enabled', 'must be true or false, not a string'],
  [
    'a retention that is a number',
    policy(OTHER, { retention: 30 }),
    'policies[1].retention',
    'must be a duration like "30d"',
  ],
  ['a retention without a unit', policy(OTHER, { retention: '30' }), 'policies[1].retention', '"30" has no unit'],
  [
    'a retention of a megabyte',
    policy(OTHER, { retention: HUGE }),
    'policies[1].retention',
    `"${'x'.repeat(200)}${CLIPPED}"`,
  ],
  ['a retention under 1h', policy(OTHER, { retention: '30m' }), 'policies[1].retention', 'retention 30m is under 1h'],
  [
    'a retention map without rules',
    policy(OTHER, { retention: { by: 'purpose', rules: {} } }),
    'policies[1].retention.rules',
    'needs at least one rule',
  ],
  [
    'a retention map rule that is no duration',
    policy(OTHER, { retention: { by: 'purpose', rules: { General: 'forever' } } }),
    'policies[1].retention.rules.General',
    '"forever" is not a duration',
  ],
  [
    'a retention map rule for an empty value',
    policy(OTHER, { retention: { by: 'purpose', rules: { '': '30d' } } }),
    'policies[1].retention.rules[""]',
    'must not be empty',
  ],
  [
    'a retention map without by',
    policy(OTHER, { retention: { rules: { General: '30d' } } }),
    'policies[1].retention.by',
    'missing',
  ],
  [
    'a retention map with a misspelt default',
    policy(OTHER, { retention: { by: 'p', rules: { a: '30d' }, defualt: '1y' } }),
    'policies[1].retention',
    'unknown field "defualt"',
  ],
  [
    'a schedule with seconds',
    policy(OTHER, { schedule: '0 * * * * *' }),
    'policies[1].schedule',
    '"0 * * * * *" has 6 fields, not 5',
  ],
  ['a schedule hour of 25', policy(OTHER, { schedule: '0 25 * * *' }), 'policies[1].schedule', '"0 25 * * *"'],
  [
    'a schedule of a megabyte',
    policy(OTHER, { schedule: HUGE }),
    'policies[1].schedule',
    `"${'x'.repeat(200)}${CLIPPED}"`,
  ],
  ['a schedule that is a number', policy(OTHER, { schedule: 5 }), 'policies[1].schedule', 'must be a string, not 5'],
  ['a budget without a unit', policy(OTHER, { budget: '10' }), 'policies[1].budget', '"10" has no unit'],
  [
    'a fractional batch size',
    policy(OTHER, { batchSize: 1.5 }),
    'policies[1].batchSize',
    'must be a whole number, not 1.5',
  ],
  [
    'a batch size as text',
    policy(OTHER, { batchSize: '500' }),
    'policies[1].batchSize',
    'must be a number, not a string',
  ],
  ['a batch size of 0', policy(OTHER, { batchSize: 0 }), 'policies[1].batchSize', 'must be above 0, not 0'],
  [
    'a batch size above 10000',
    policy(OTHER, { batchSize: 100_000 }),
    'policies[1].batchSize',
    'must be at most 10000, not 100000',
  ],
  [
    'an attentionAfter of 0',
    policy(OTHER, { attentionAfter: 0 }),
    'policies[1].attentionAfter',
    'must be at least 1, not 0',
  ],
  [
    'a negative maxDeletesPerRun',
    policy(OTHER, { limits: { maxDeletesPerRun: -1 } }),
    'policies[1].limits.maxDeletesPerRun',
    'must be above 0, not -1',
  ],
  [
    'a maxDeleteFraction of 0',
    policy(OTHER, { limits: { maxDeleteFraction: 0 } }),
    'policies[1].limits.maxDeleteFraction',
    'must be above 0, not 0',
  ],
  [
    'a maxDeleteFraction above 1',
    policy(OTHER, { limits: { maxDeleteFraction: 1.5 } }),
    'policies[1].limits.maxDeleteFraction',
    'must be at most 1, not 1.5',
  ],
  [
    'a misspelt limit',
    policy(OTHER, { limits: { maxDeletes: 5 } }),
    'policies[1].limits',
    'unknown field "maxDeletes"',
  ],
  ['limits that are a number', policy(OTHER, { limits: 100 }), 'policies[1].limits', 'must be an object, not 100'],
  [
    'a failure rate above 1',
    policy(OTHER, { sla: { maxFailureRate: 2 } }),
    'policies[1].sla.maxFailureRate',
    'must be at most 1, not 2',
  ],
  [
    'a warning threshold of 1',
    policy(OTHER, { sla: { warnAt: 1 } }),
    'policies[1].sla.warnAt',
    'must be below 1, not 1',
  ],
  [
    'an SLA overdue that is no duration',
    policy(OTHER, { sla: { maxOverdue: 'soon' } }),
    'policies[1].sla.maxOverdue',
    '"soon" is not a duration',
  ],
  [
    'a backup without keepFor',
    policy(OTHER, { backup: { to: '/var/backups' } }),
    'policies[1].backup.keepFor',
    'missing',
  ],
  [
    'an empty backup target',
    policy(OTHER, { backup: { to: '', keepFor: '7d' } }),
    'policies[1].backup.to',
    'must not be empty',
  ],
  [
    'a backup inside the root',
    policy(OTHER, { backup: { to: `${ROOT}/.b`, keepFor: '7d' } }),
    'policies[1].backup.to',
    `${ROOT}/.b is inside the store root`,
  ],
  [
    'allowShortRetention as text',
    policy(OTHER, { allowShortRetention: 'true' }),
    'policies[1].allowShortRetention',
    'must be true or false, not a string',
  ],
  ['no policies', { policies: [] }, 'policies', 'needs at least one policy'],
  ['policies as an object', { policies: { files: FILES } }, 'policies', 'must be a list, not an object'],
  ['a list instead of a config', [FILES] as unknown as Doc, '(root)', 'must be an object, not a list'],
  ['a misspelt top-level field', { policies: [FILES], contol: {} }, '(root)', 'unknown field "contol"'],
  ['an fs store without root', store(OTHER, { root: undefined }), 'policies[1].store.root', 'missing'],
  ['an fs root that is a number', store(OTHER, { root: 5 }), 'policies[1].store.root', 'must be a string, not 5'],
  [
    'removeEmptyDirs as text',
    store(OTHER, { removeEmptyDirs: 'yes' }),
    'policies[1].store.removeEmptyDirs',
    'must be true or false, not a string',
  ],
  ['an unknown store kind', store(OTHER, { kind: 'ftp' }), 'policies[1].store.kind', 'unknown store kind'],
  // S3 bucket naming rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
  ['a bucket that is a path', store(S3, { bucket: '../etc' }), 'policies[1].store.bucket', '"../etc" contains "/"'],
  [
    'a bucket that is a URL',
    store(S3, { bucket: 's3://acme-docs/pdfs' }),
    'policies[1].store.bucket',
    '"s3://acme-docs/pdfs" contains ":"',
  ],
  ['a bucket in uppercase', store(S3, { bucket: 'Acme-Docs' }), 'policies[1].store.bucket', '"Acme-Docs" contains "A"'],
  [
    'a bucket with an underscore',
    store(S3, { bucket: 'acme_docs' }),
    'policies[1].store.bucket',
    '"acme_docs" contains "_"',
  ],
  ['a bucket of 2 characters', store(S3, { bucket: 'ab' }), 'policies[1].store.bucket', '"ab" is 2 characters long'],
  [
    'a bucket of 64 characters',
    store(S3, { bucket: 'a'.repeat(64) }),
    'policies[1].store.bucket',
    `"${'a'.repeat(64)}" is 64 characters long`,
  ],
  ['a bucket of a megabyte', store(S3, { bucket: HUGE }), 'policies[1].store.bucket', `"${'x'.repeat(200)}${CLIPPED}"`],
  [
    'a bucket with two dots in a row',
    store(S3, { bucket: 'acme..docs' }),
    'policies[1].store.bucket',
    '"acme..docs" has two dots in a row',
  ],
  [
    'a bucket that is an IP address',
    store(S3, { bucket: '192.168.1.10' }),
    'policies[1].store.bucket',
    '"192.168.1.10" is an IP address',
  ],
  [
    'a bucket starting with a hyphen',
    store(S3, { bucket: '-acme' }),
    'policies[1].store.bucket',
    '"-acme" must start and end with a letter or digit',
  ],
  [
    'a bucket with a reserved prefix',
    store(S3, { bucket: 'xn--acme' }),
    'policies[1].store.bucket',
    '"xn--acme" starts with "xn--", which S3 reserves',
  ],
  ['no bucket', store(S3, { bucket: undefined }), 'policies[1].store.bucket', 'missing'],
  [
    'a file: endpoint',
    store(S3, { endpoint: 'file:///etc/passwd' }),
    'policies[1].store.endpoint',
    '"file:///etc/passwd" is not an http(s) URL',
  ],
  [
    'an endpoint without a scheme',
    store(S3, { endpoint: 'localhost:9000' }),
    'policies[1].store.endpoint',
    '"localhost:9000" is not an http(s) URL',
  ],
  [
    'an endpoint that is no URL',
    store(S3, { endpoint: 'minio' }),
    'policies[1].store.endpoint',
    '"minio" is not a URL',
  ],
  [
    'an endpoint with credentials',
    store(S3, { endpoint: 'http://key:hunter2@127.0.0.1:9000' }),
    'policies[1].store.endpoint',
    'has credentials in it',
  ],
  ['an empty region', store(S3, { region: '' }), 'policies[1].store.region', 'must not be empty'],
  ['no region', store(S3, { region: undefined }), 'policies[1].store.region', 'missing'],
  [
    "a region that is not AWS's",
    store(S3, { endpoint: undefined, region: 'Europe West' }),
    'policies[1].store.region',
    '"Europe West" is not an AWS region',
  ],
  ['an empty list of shards', store(S3, { prefixes: [] }), 'policies[1].store.prefixes', 'must not be an empty list'],
  [
    'a shard outside the prefix',
    store(S3, { prefix: 'a/', prefixes: ['b/'] }),
    'policies[1].store.prefixes[0]',
    '"b/" does not start with prefix "a/"',
  ],
  [
    'overlapping shards',
    store(S3, { prefixes: ['a/', 'a/b/'] }),
    'policies[1].store.prefixes[1]',
    '"a/b/" overlaps prefixes[0]',
  ],
  ['a prefix that is a number', store(S3, { prefix: 5 }), 'policies[1].store.prefix', 'must be a string, not 5'],
  [
    'a prefix longer than any S3 key',
    store(S3, { prefix: 'p'.repeat(1025) }),
    'policies[1].store.prefix',
    'is 1025 bytes long',
  ],
  [
    'include as one glob',
    store(S3, { include: '**/*.pdf' }),
    'policies[1].store.include',
    'must be a list, not a string',
  ],
  ['an empty include glob', store(S3, { include: [''] }), 'policies[1].store.include[0]', 'must not be empty'],
  [
    'a delete concurrency of 0',
    store(S3, { deleteConcurrency: 0 }),
    'policies[1].store.deleteConcurrency',
    'must be at least 1, not 0',
  ],
  [
    'a delete concurrency of 33',
    store(S3, { deleteConcurrency: 33 }),
    'policies[1].store.deleteConcurrency',
    'must be at most 32, not 33',
  ],
  [
    'fractional attempts',
    store(S3, { maxAttempts: 2.5 }),
    'policies[1].store.maxAttempts',
    'must be a whole number, not 2.5',
  ],
  [
    'an unknown versions mode',
    store(S3, { versions: 'some' }),
    'policies[1].store.versions',
    '"some" is not one of the choices',
  ],
  [
    'forcePathStyle as text',
    store(S3, { forcePathStyle: 'true' }),
    'policies[1].store.forcePathStyle',
    'must be true or false, not a string',
  ],
  [
    'conditionalDelete as a number',
    store(S3, { conditionalDelete: 1 }),
    'policies[1].store.conditionalDelete',
    'must be true or false, not 1',
  ],
  ['a field written as in the SDK', store(S3, { Bucket: 'acme-docs' }), 'policies[1].store', 'unknown field "Bucket"'],
  [
    'an S3 backup that is no S3 location',
    policy(S3, { backup: { to: 'acme-backups', keepFor: '30d' } }),
    'policies[1].backup.to',
    '"acme-backups" is not an S3 location',
  ],
  [
    'an S3 backup to a bad bucket',
    policy(S3, { backup: { to: 's3://Backups/', keepFor: '30d' } }),
    'policies[1].backup.to',
    '"Backups" contains "B"',
  ],
  [
    'a Vercel token of another format',
    store(VERCEL, { token: 'hunter2-token' }),
    'policies[1].store.token',
    'is not a Vercel Blob read-write token',
  ],
  ['an empty Vercel token', store(VERCEL, { token: '' }), 'policies[1].store.token', 'must not be empty'],
  ['a Vercel token that is a number', store(VERCEL, { token: 42 }), 'policies[1].store.token', 'must be a string'],
  [
    'an unknown Vercel access',
    store(VERCEL, { access: 'hidden' }),
    'policies[1].store.access',
    '"hidden" is not one of the choices',
  ],
  ['a Vercel store with a bucket', store(VERCEL, { bucket: 'x' }), 'policies[1].store', 'unknown field "bucket"'],
  ['a database URL that is no URL', store(ROWS, { url: 'hunter2 at db' }), 'policies[1].store.url', 'is not a URL'],
  ['a database URL without host', store(ROWS, { url: 'postgres:///app' }), 'policies[1].store.url', 'has no host'],
  [
    'a MySQL URL',
    store(ROWS, { url: 'mysql://app:hunter2@db/app' }),
    'policies[1].store.url',
    'is a mysql: URL, not postgres://',
  ],
  [
    'an https URL',
    store(ROWS, { url: 'https://db.example.com/app' }),
    'policies[1].store.url',
    'is a https: URL, not postgres://',
  ],
  ['no database URL', store(ROWS, { url: undefined }), 'policies[1].store.url', 'missing'],
  [
    'an unknown driver',
    store(ROWS, { driver: 'mysql' }),
    'policies[1].store.driver',
    '"mysql" is not one of the choices',
  ],
  ['an empty table', policy(ROWS, { table: '' }), 'policies[1].table', 'must not be empty'],
  [
    'a table with two dots',
    policy(ROWS, { table: 'app.public.documents' }),
    'policies[1].table',
    '"app.public.documents" has more than one dot',
  ],
  [
    'a table name PostgreSQL would truncate',
    policy(ROWS, { table: 't'.repeat(64) }),
    'policies[1].table',
    `"${'t'.repeat(64)}" is longer than 63 bytes`,
  ],
  [
    'a column with a NUL',
    policy(ROWS, { timestamp: 'created\0at' }),
    'policies[1].timestamp',
    '"created\\0at" contains a NUL character',
  ],
  ['an empty key list', policy(ROWS, { key: [] }), 'policies[1].key', 'must not be an empty list'],
  ['a key that is a number', policy(ROWS, { key: 5 }), 'policies[1].key', 'must be a string or a list, not 5'],
  [
    'an unknown filter operator',
    policy(ROWS, { filter: [{ column: 'a', op: 'like', value: 'x%' }] }),
    'policies[1].filter[0].op',
    '"like" is not one of the choices',
  ],
  [
    'an in filter with one value',
    policy(ROWS, { filter: [{ column: 'a', op: 'in', value: 'x' }] }),
    'policies[1].filter[0].value',
    '"in" takes a list',
  ],
  [
    'an is_null filter with a value',
    policy(ROWS, { filter: [{ column: 'a', op: 'is_null', value: 1 }] }),
    'policies[1].filter[0].value',
    '"is_null" takes no value',
  ],
  [
    'a child without column',
    policy(ROWS, { children: [{ table: 'pages' }] }),
    'policies[1].children[0].column',
    'missing',
  ],
  [
    'a pause over a minute',
    policy(ROWS, { pauseBetweenBatchesMs: 70_000 }),
    'policies[1].pauseBetweenBatchesMs',
    'must be at most 60000, not 70000',
  ],
  [
    'a statement timeout that is no duration',
    policy(ROWS, { statementTimeout: 'forever' }),
    'policies[1].statementTimeout',
    '"forever" is not a duration',
  ],
  [
    'both archive and backup',
    policy(ROWS, { archive: { table: 'old' }, backup: { to: 'copies', keepFor: '7d' } }),
    'policies[1].backup',
    'both backup and archive',
  ],
  [
    'a linked-file bucket that is a path',
    policy(ROWS, { blob: { column: 'file', store: { ...S3_STORE, bucket: '../etc' } } }),
    'policies[1].blob.store.bucket',
    '"../etc" contains "/"',
  ],
  [
    'a linked-file store of a tokens kind',
    policy(ROWS, { blob: { column: 'file', store: DYNAMO_STORE } }),
    'policies[1].blob.store.kind',
    'unknown store kind',
  ],
  ['audit as text', policy(ROWS, { audit: 'yes' }), 'policies[1].audit', 'must be true or false, not a string'],
  ['an empty size column', policy(ROWS, { size: '' }), 'policies[1].size', 'must not be empty'],
  ['a token table missing', store(PG_TOKENS, { table: undefined }), 'policies[1].store.table', 'missing'],
  ['an empty expiry column', store(PG_TOKENS, { expiresAt: '' }), 'policies[1].store.expiresAt', 'must not be empty'],
  [
    'a token database URL without host',
    store(PG_TOKENS, { url: 'postgresql://' }),
    'policies[1].store.url',
    'has no host',
  ],
  [
    'a backup of tokens',
    policy(PG_TOKENS, { backup: { to: 'copies', keepFor: '7d' } }),
    'policies[1].backup',
    'tokens are never backed up',
  ],
  [
    'a DynamoDB table of 2 characters',
    store(DYNAMO, { table: 'ab' }),
    'policies[1].store.table',
    '"ab" is 2 characters long',
  ],
  [
    'a DynamoDB table with a space',
    store(DYNAMO, { table: 'my table' }),
    'policies[1].store.table',
    '"my table" contains " "',
  ],
  [
    'a DynamoDB table that is an ARN',
    store(DYNAMO, { table: 'arn:aws:dynamodb:us-east-1:1:table/s' }),
    'policies[1].store.table',
    '"arn:aws:dynamodb:us-east-1:1:table/s" contains ":"',
  ],
  ['no DynamoDB key', store(DYNAMO, { key: undefined }), 'policies[1].store.key', 'missing'],
  [
    'an empty partition key',
    store(DYNAMO, { key: { partition: '' } }),
    'policies[1].store.key.partition',
    'must not be empty',
  ],
  ['a key as one name', store(DYNAMO, { key: 'pk' }), 'policies[1].store.key', 'must be an object, not a string'],
  ['0 scan segments', store(DYNAMO, { segments: 0 }), 'policies[1].store.segments', 'must be at least 1, not 0'],
  [
    '1001 scan segments',
    store(DYNAMO, { segments: 1001 }),
    'policies[1].store.segments',
    'must be at most 1000, not 1001',
  ],
  [
    'a negative read capacity',
    store(DYNAMO, { maxReadCapacityPerSecond: -5 }),
    'policies[1].store.maxReadCapacityPerSecond',
    'must be above 0, not -5',
  ],
  [
    'an index without values',
    store(DYNAMO, { index: { name: 'by-expiry', partition: 'shard' } }),
    'policies[1].store.index.values',
    'missing',
  ],
  [
    'an index name with a space',
    store(DYNAMO, { index: { name: 'by expiry', partition: 's', values: [1] } }),
    'policies[1].store.index.name',
    '"by expiry" contains " "',
  ],
  [
    'an index with no values',
    store(DYNAMO, { index: { name: 'by-expiry', partition: 's', values: [] } }),
    'policies[1].store.index.values',
    'must not be an empty list',
  ],
  [
    'a DynamoDB file: endpoint',
    store(DYNAMO, { endpoint: 'file:///tmp/dynamo' }),
    'policies[1].store.endpoint',
    '"file:///tmp/dynamo" is not an http(s) URL',
  ],
  [
    "a DynamoDB region that is not AWS's",
    store(DYNAMO, { endpoint: undefined, region: 'moon' }),
    'policies[1].store.region',
    '"moon" is not an AWS region',
  ],
  [
    'conditional as text',
    store(DYNAMO, { conditional: 'no' }),
    'policies[1].store.conditional',
    'must be true or false, not a string',
  ],
  [
    'a delete concurrency of 1000',
    store(DYNAMO, { deleteConcurrency: 1000 }),
    'policies[1].store.deleteConcurrency',
    'must be at most 256, not 1000',
  ],
  [
    'an empty expiry attribute',
    store(DYNAMO, { expiresAttribute: '' }),
    'policies[1].store.expiresAttribute',
    'must not be empty',
  ],
  ['an unknown control store', control({ kind: 'redis' }), 'control.kind', 'unknown control store kind'],
  [
    'a control table of 2 characters',
    control({ kind: 'dynamodb', table: 'rc' }),
    'control.table',
    '"rc" is 2 characters long',
  ],
  ['no control table', control({ kind: 'dynamodb' }), 'control.table', 'missing'],
  [
    'a control file: endpoint',
    control({ kind: 'dynamodb', table: 'retention', endpoint: 'file:///x' }),
    'control.endpoint',
    '"file:///x" is not an http(s) URL',
  ],
  [
    "a control region that is not AWS's",
    control({ kind: 'dynamodb', table: 'retention', region: 'Ireland' }),
    'control.region',
    '"Ireland" is not an AWS region',
  ],
  [
    'a control database without host',
    control({ kind: 'postgres', url: 'postgresql:///retention' }),
    'control.url',
    'has no host',
  ],
  ['a misspelt control field', control({ kind: 'dynamodb', tabel: 'retention' }), 'control', 'unknown field "tabel"'],
];

const TWO = { policies: [FILES, OTHER] };
/** [what, argv, field path, start of the message, env]: each against the valid config TWO. */
const FLAGS: Array<[string, string[], string, string, Record<string, string>?]> = [
  ['a limit of 0', ['run', '--all', '--limit', '0'], '--limit', '"0" is not a positive whole number'],
  ['a fractional limit', ['plan', '--all', '--limit', '1.5'], '--limit', '"1.5" is not a positive whole number'],
  ['a negative limit', ['run', '--all', '--limit', '-1'], '--limit', '"-1" is not a positive whole number'],
  [
    'a limit past 2^53',
    ['run', '--all', '--limit', '9007199254740993'],
    '--limit',
    '"9007199254740993" is not a positive whole number',
  ],
  ['a limit without value', ['run', '--all', '--limit'], '--limit', 'needs a value'],
  ['February 30th', ['run', '--all', '--before', '2024-02-30'], '--before', '"2024-02-30" is not a calendar date'],
  ['month 13', ['plan', '--all', '--before', '2024-13-01'], '--before', '"2024-13-01" has no month 13'],
  ['a before of a megabyte', ['run', '--all', '--before', HUGE], '--before', `"${'x'.repeat(200)}${CLIPPED}"`],
  ['a budget without unit', ['run', '--all', '--budget', '30'], '--budget', '"30" has no unit'],
  ['a budget of 0s', ['run', '--all', '--budget', '0s'], '--budget', '"0s" must be longer than zero'],
  ['a budget of 2000 years', ['run', '--all', '--budget', '2000y'], '--budget', '"2000y" is longer than 1000y'],
  ['an unknown policy', ['run', '--policy', 'nope'], '--policy', 'no policy named "nope"'],
  [
    'a policy name of a megabyte',
    ['plan', '--policy', HUGE],
    '--policy',
    `no policy named "${'x'.repeat(200)}${CLIPPED}"`,
  ],
  ['both --policy and --all', ['run', '--policy', 'files', '--all'], '--policy', 'both --policy and --all given'],
  ['no policy named, with two', ['run'], '--policy', 'the config has 2 policies'],
  ['a misspelt flag', ['run', '--polcy', 'files'], '--polcy', 'unknown option'],
  ['a flag of a megabyte', ['run', `--${HUGE}`], `--${'x'.repeat(198)}… (1000002 characters)`, 'unknown option'],
  ['--dry-run on plan', ['plan', '--all', '--dry-run'], '--dry-run', 'unknown option'],
  ['a report window without unit', ['report', '--since', '5'], '--since', '"5" has no unit'],
  ['a report of an unknown policy', ['report', '--policy', 'nope'], '--policy', 'no policy named "nope"'],
  ['a history limit of 0', ['history', '--limit', '0'], '--limit', '"0" is not a positive whole number'],
  ['history of an unknown policy', ['history', '--policy', 'nope'], '--policy', 'no policy named "nope"'],
  ['audit without a selection', ['audit'], '--run', 'say which records'],
  [
    'an audit limit that is a word',
    ['audit', '--run', 'r1', '--limit', 'all'],
    '--limit',
    '"all" is not a positive whole number',
  ],
  ['audit of an unknown policy', ['audit', '--policy', 'nope'], '--policy', 'no policy named "nope"'],
  ['audit of an unknown action', ['audit', '--action', 'drop'], '--action', '"drop" is not one of them'],
  ['audit of an unknown outcome', ['audit', '--outcome', 'gone'], '--outcome', '"gone" is not one of them'],
  ['audit since a word', ['audit', '--since', 'yesterday'], '--since', '"yesterday" is not a date or a duration'],
  [
    'audit until no date',
    ['audit', '--policy', 'files', '--until', '2024-02-30'],
    '--until',
    '"2024-02-30" is not a calendar date',
  ],
  [
    'an audit offset that is negative',
    ['audit', '--run', 'r', '--offset', '-5'],
    '--offset',
    '"-5" is not a positive whole',
  ],
  ['verify without a key', ['verify', '--policy', 'files'], '--key', 'say which item'],
  ['verify of an unknown policy', ['verify', '--key', 'a', '--policy', 'nope'], '--policy', 'no policy named "nope"'],
  ['a restore with --run and --since', ['restore', '--run', 'r', '--since', '1d'], '--run', 'both --run and --since'],
  ['a restore --since of two policies', ['restore', '--since', '1d', '--all'], '--all', 'unknown option'],
  ['a restore --since without policy', ['restore', '--since', '1d'], '--policy', 'the config has 2 policies'],
  ['a restore --since with --key', ['restore', '--since', '1d', '--key', 'a'], '--key', 'only with --run'],
  ['audit verify of an unknown policy', ['audit', 'verify', '--policy', 'nope'], '--policy', 'no policy named "nope"'],
  [
    'audit verify since neither a duration nor a date',
    ['audit', 'verify', '--since', 'yesterday'],
    '--since',
    '"yesterday" is neither a duration nor a date',
  ],
  ['audit verify of one run', ['audit', 'verify', '--run', 'r1'], '--run', 'not an option of audit verify'],
  [
    'audit verify of one action',
    ['audit', 'verify', '--action', 'paused'],
    '--action',
    'not an option of audit verify',
  ],
  ['a hold without key or prefix', ['hold', 'add', '--reason', 'case 1'], '--key', 'give exactly one of --key'],
  [
    'a hold with key and prefix',
    ['hold', 'add', '--key', 'a', '--prefix', 'b', '--reason', 'case 1'],
    '--key',
    'give exactly one of --key',
  ],
  ['a hold without reason', ['hold', 'add', '--key', 'a'], '--reason', 'a hold needs a reason'],
  ['a hold on an empty prefix', ['hold', 'add', '--prefix', '', '--reason', 'case 1'], '--prefix', 'must not be empty'],
  [
    'a hold for an unknown policy',
    ['hold', 'add', '--key', 'a', '--reason', 'r', '--policy', 'nope'],
    '--policy',
    'no policy named "nope"',
  ],
  ['holds of an unknown policy', ['hold', 'list', '--policy', 'nope'], '--policy', 'no policy named "nope"'],
  ['a hold id that is a word', ['hold', 'remove', 'first'], '<id>', '"first" is not a hold id'],
  ['attention of an unknown policy', ['attention', 'list', '--policy', 'nope'], '--policy', 'no policy named "nope"'],
  [
    'an attention retry of two policies',
    ['attention', 'retry', '--policy', 'files', '--policy', 'other'],
    '--policy',
    'retry takes one policy',
  ],
  [
    'an attention dismiss without key',
    ['attention', 'dismiss', '--policy', 'files', '--reason', 'r'],
    '--key',
    'no item named',
  ],
  [
    'an attention dismiss without reason',
    ['attention', 'dismiss', '--policy', 'files', '--key', 'a'],
    '--reason',
    'a dismissal needs a reason',
  ],
  ['a restore without --run', ['restore'], '--run', 'missing'],
  ['a restore of an empty run id', ['restore', '--run', ''], '--run', 'must not be empty'],
  ['a lease break of an unknown policy', ['lease', 'break', 'nope'], '<policy>', 'no policy named "nope"'],
  ['a lease break without policy', ['lease', 'break'], '<policy>', 'missing'],
  ['a pause without policy', ['pause'], '--policy', 'no policy named'],
  ['a pause of an unknown policy', ['pause', '--policy', 'nope'], '--policy', 'no policy named "nope"'],
  [
    'a pause of one policy and all',
    ['pause', '--policy', 'files', '--all'],
    '--policy',
    'both --policy and --all given',
  ],
  ['a resume of an unknown policy', ['resume', '--policy', 'nope'], '--policy', 'no policy named "nope"'],
  ['an invoke of an unknown policy', ['invoke', 'nope'], '<policy>', 'no policy named "nope"'],
  ['an invoke limit of 0', ['invoke', 'files', '--limit', '0'], '--limit', '"0" is not a positive whole number'],
  ['an unknown command', ['purge'], 'purge', 'unknown command'],
  ['an argument to status', ['status', 'all'], 'status', 'too many arguments'],
  ['a lease TTL under 3s', ['status'], 'RETENTION_LEASE_TTL', '1s is shorter than 3s', { RETENTION_LEASE_TTL: '1s' }],
  [
    'a request timeout over 15s',
    ['status'],
    'RETENTION_REQUEST_TIMEOUT',
    '"1m" is longer than 15s',
    { RETENTION_REQUEST_TIMEOUT: '1m' },
  ],
];

async function refusedUntouched(argv: string[], document: unknown, env: Record<string, string> = {}) {
  const file = path.join(scratch, `config-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(document));
  const connections = trip.connections;
  const result = await runInProcess(['--config', file, ...argv], { ...ENV, ...env }, scratch);
  return {
    result,
    touched: {
      connections: trip.connections - connections,
      expired: existsSync(path.join(ROOT, 'expired.bin')),
      home: existsSync(HOME),
    },
  };
}
const UNTOUCHED = { connections: 0, expired: true, home: false };

describe('bad inputs: exit 2, the field path, a fix, and nothing touched', () => {
  it.each(CONFIGS)('config: %s', async (what, document, field, says) => {
    const { result, touched } = await refusedUntouched(['run', '--all'], document);
    expectRefused(result, field, says, what);
    expect(touched, what).toEqual(UNTOUCHED);
  });

  it.each(FLAGS)('flags: %s', async (what, argv, field, says, env) => {
    const { result, touched } = await refusedUntouched(argv, TWO, env);
    expectRefused(result, field, says, what);
    expect(touched, what).toEqual(UNTOUCHED);
  });

  it('config files that cannot be read', async () => {
    await mkdir(path.join(scratch, 'files-dir'), { recursive: true });
    const broken = path.join(scratch, 'broken.json');
    await writeFile(broken, '{ "policies": [ ');
    for (const [file, says] of [
      ['missing.json', `cannot read ${path.join(scratch, 'missing.json')}`],
      [broken, `${broken} is not valid JSON`],
    ]) {
      const result = await runInProcess(['--config', file!, 'run', '--all'], ENV, scratch);
      expectRefused(result, '--config', says!, file!);
    }
  });

  it('never echoes a secret it refuses', async () => {
    for (const document of [
      store(S3, { endpoint: 'http://key:hunter2@127.0.0.1:9000' }),
      store(ROWS, { url: 'mysql://app:hunter2@db/app' }),
      store(VERCEL, { token: 'hunter2-token' }),
    ]) {
      const { result } = await refusedUntouched(['run', '--all'], document);
      expect(result.code).toBe(2);
      expect(result.stderr).not.toContain('hunter2');
    }
  });
});

describe('bad inputs to a Lambda function: refused before anything is opened', () => {
  const lines: string[] = [];
  async function handlerFor(document: unknown) {
    const file = path.join(scratch, `deployed-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, JSON.stringify(document));
    const runtime = createRuntime({
      controls: CONTROL_LOADERS,
      env: { RETENTION_CONFIG: file },
      databaseUrl: trip.postgres,
      sink: { write: (line) => void lines.push(line) },
    });
    const handle = createDataClassHandler('blobs', runtime, {
      createStore,
      monitor: createRunMonitor({ dsn: undefined, clock: runtime.clock }),
    });
    return (event: unknown) => handle(event, lambdaContext(60_000));
  }

  // Beyond test/integration/payloads.test.ts: other types, out-of-range values, a bad deployed config.
  const PAYLOADS: Array<[unknown, Doc, string, string, string]> = [
    [
      { policy: 'files', before: '2024-13-01T00:00:00Z' },
      TWO,
      'bad_payload',
      'payload.before',
      '"2024-13-01T00:00:00Z" has no month 13',
    ],
    [{ policy: 'files', hop: -1 }, TWO, 'bad_payload', 'payload.hop', 'must be a whole number from 0 to 20'],
    [{ policy: 'files', budgetMs: 3_600_000 }, TWO, 'bad_payload', 'payload', 'unknown field "budgetMs"'],
    [{ policy: 'files', budget: '0s' }, TWO, 'bad_payload', 'payload.budget', '"0s" must be longer than zero'],
    [{ policy: 'files', limit: 1e21 }, TWO, 'bad_payload', 'payload.limit', 'must be a whole number above 0'],
    [{ policy: 'files', before: HUGE }, TWO, 'bad_payload', 'payload.before', `"${'x'.repeat(200)}${CLIPPED}"`],
    [
      { policy: 'files' },
      store(S3, { bucket: '../etc' }),
      'bad_config',
      'policies[1].store.bucket',
      '"../etc" contains "/"',
    ],
    [
      { policy: 'files' },
      store(DYNAMO, { endpoint: 'file:///tmp/dynamo' }),
      'bad_config',
      'policies[1].store.endpoint',
      '"file:///tmp/dynamo" is not an http(s) URL',
    ],
  ];

  it.each(PAYLOADS)('%j with %#', async (event, document, code, field, says) => {
    const connections = trip.connections;
    const result = await (await handlerFor(document))(event);
    expect(isErrorResult(result) && result.error.code).toBe(code);
    const message = isErrorResult(result) ? result.error.message : '';
    expectRefused({ code: 2, stdout: '', stderr: message }, field, says, JSON.stringify(event).slice(0, 100));
    expect(trip.connections - connections).toBe(0);
    expect(existsSync(path.join(ROOT, 'expired.bin'))).toBe(true);
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThan(2_000);
  });
});
