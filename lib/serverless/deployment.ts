import type { KeySchemaElement, ScalarAttributeType } from '@aws-sdk/client-dynamodb';
import { durationMs } from '../config/durations.ts';
import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import { controlTableDefinition, CONTROL_TTL_ATTRIBUTE } from '../control/dynamoTable.ts';
import type { DataClass } from '../engine/types.ts';
import { ConfigError, type InputIssue } from '../errors.ts';
import { componentName, functionName, type FunctionRole, type SecretKey } from './naming.ts';
import { toEventBridgeCron } from './schedule.ts';

/**
 * What `sst.config.ts` declares, computed from the retention config (pure, so it is tested without
 * SST): one function per data class in use, one schedule per enabled policy, the control table,
 * backup buckets, and per function exactly the IAM permissions its policies need — every resource
 * a named bucket, prefix, table or function, never `*`.
 *
 * Store and control kinds are read by their `kind` string, so kinds added to the config schema
 * later are planned without this module importing their code.
 */
export interface DeploymentContext {
  app: string;
  stage: string;
  region: string;
  accountId: string;
}

export interface Permission {
  actions: string[];
  resources: string[];
}

export interface FunctionPlan {
  role: FunctionRole;
  component: string;
  name: string;
  /** `functions/blobs.handler`, relative to the repo root. */
  handler: string;
  timeoutSeconds: number;
  /** Lambda's CPU share grows with memory: the data classes get room for concurrent deletes. */
  memoryMb: number;
  permissions: Permission[];
  secrets: SecretKey[];
  environment: Record<string, string>;
  /** A Function URL (health only); auth is the bearer token checked in code. */
  url: boolean;
}

export interface CronPlan {
  component: string;
  policy: string;
  role: DataClass;
  /** EventBridge syntax, UTC. */
  schedule: string;
  event: { policy: string; trigger: 'scheduled' };
}

export interface BackupBucketPlan {
  component: string;
  bucket: string;
  /** Lifecycle expiry: the longest `backup.keepFor` of the policies backing up here, in whole days. */
  expiresInDays: number;
}

/** In the shape of `sst.aws.Dynamo`'s arguments. */
export interface ControlTablePlan {
  component: string;
  name: string;
  fields: Record<string, 'string' | 'number' | 'binary'>;
  primaryIndex: { hashKey: string; rangeKey?: string };
  globalIndexes: Record<string, { hashKey: string; rangeKey?: string; projection: Projection }>;
  ttl: string;
}

type Projection = 'all' | 'keys-only' | string[];

export interface DeploymentPlan {
  functions: FunctionPlan[];
  crons: CronPlan[];
  controlKind: string;
  controlTable: ControlTablePlan;
  backupBuckets: BackupBucketPlan[];
  secrets: SecretKey[];
}

/** Kept beyond the longest budget for what follows the last batch (census, history, flush, re-invoke). */
export const TIMEOUT_MARGIN_SECONDS = 60;
/** Lambda's ceiling; a longer budget is capped by the invocation deadline (the run ends `partial`). */
export const MAX_TIMEOUT_SECONDS = 900;
const HEALTH_TIMEOUT_SECONDS = 30;
const DATA_CLASSES: DataClass[] = ['blobs', 'rows', 'tokens'];

const CONTROL_TABLE_ACTIONS = ['dynamodb:DescribeTable', 'dynamodb:DescribeTimeToLive', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:TransactWriteItems'];
const TOKEN_TABLE_ACTIONS = ['dynamodb:DescribeTable', 'dynamodb:Scan', 'dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];

export function planDeployment(config: RetentionConfig, context: DeploymentContext): DeploymentPlan {
  const issues: InputIssue[] = [];
  const crons: CronPlan[] = [];
  config.policies.forEach((policy, index) => {
    if (!policy.enabled) return;
    const converted = toEventBridgeCron(policy.schedule);
    if (!converted.ok) {
      issues.push({ path: `policies[${index}].schedule`, message: converted.message, fix: converted.fix });
      return;
    }
    crons.push({ component: componentName('Schedule', policy.name), policy: policy.name, role: policy.class, schedule: converted.expression, event: { policy: policy.name, trigger: 'scheduled' } });
  });
  if (issues.length > 0) throw new ConfigError(issues);

  const controlKind: string = config.control?.kind ?? 'postgres';
  const controlTable = controlTablePlan(config, context);
  const controlAccess = controlKind === 'dynamodb' ? [{ actions: CONTROL_TABLE_ACTIONS, resources: tableArns(context, context.region, controlTable.name, Object.keys(controlTable.globalIndexes)) }] : [];
  const controlSecrets: SecretKey[] = controlKind === 'postgres' ? ['databaseUrl'] : [];
  const environment = { RETENTION_STAGE: context.stage, RETENTION_CONTROL_TABLE: controlTable.name };

  const functions: FunctionPlan[] = [];
  for (const dataClass of DATA_CLASSES) {
    const policies = config.policies.filter((policy) => policy.class === dataClass);
    if (policies.length === 0) continue;
    const name = functionName(context.app, context.stage, dataClass);
    const longestBudget = Math.max(...policies.map((policy) => durationMs(policy.budget) / 1000));
    functions.push({
      role: dataClass,
      component: componentName('Retention', dataClass),
      name,
      handler: `functions/${dataClass}.handler`,
      timeoutSeconds: Math.min(MAX_TIMEOUT_SECONDS, Math.ceil(longestBudget) + TIMEOUT_MARGIN_SECONDS),
      memoryMb: 1024,
      permissions: [
        ...controlAccess,
        ...policies.flatMap((policy) => storePermissions(policy, context)),
        // `continue: true` backfills re-invoke the function itself, and nothing else.
        { actions: ['lambda:InvokeFunction'], resources: [`arn:aws:lambda:${context.region}:${context.accountId}:function:${name}`] },
      ],
      secrets: [...controlSecrets, 'sentryDsn', ...(policies.some((policy) => policy.store.kind === 'vercel-blob') ? ['blobToken' as const] : [])],
      environment,
      url: false,
    });
  }
  functions.push({
    role: 'health',
    component: 'RetentionHealth',
    name: functionName(context.app, context.stage, 'health'),
    handler: 'functions/health.handler',
    timeoutSeconds: HEALTH_TIMEOUT_SECONDS,
    memoryMb: 256,
    permissions: controlAccess,
    secrets: [...controlSecrets, 'healthToken'],
    environment,
    url: true,
  });

  const secrets = [...new Set(functions.flatMap((plan) => plan.secrets))];
  return { functions, crons, controlKind, controlTable, backupBuckets: backupBuckets(config), secrets };
}

type LooseStore = { kind: string } & Record<string, unknown>;

/** The IAM statements one policy's store (and its backup) needs; none for stores reached without IAM. */
function storePermissions(policy: PolicyConfig, context: DeploymentContext): Permission[] {
  const store = policy.store as LooseStore;
  const permissions: Permission[] = [];
  if (store.kind === 's3') {
    const bucket = String(store.bucket);
    const prefixes = Array.isArray(store.prefixes) ? store.prefixes.map(String) : [typeof store.prefix === 'string' ? store.prefix : ''];
    const allVersions = store.versions === 'all';
    permissions.push(
      { actions: ['s3:ListBucket', ...(allVersions ? ['s3:ListBucketVersions'] : [])], resources: [`arn:aws:s3:::${bucket}`] },
      {
        // GetObject also covers HeadObject and reading the source of a backup copy.
        actions: ['s3:GetObject', 's3:DeleteObject', ...(allVersions ? ['s3:DeleteObjectVersion'] : [])],
        resources: prefixes.map((prefix) => `arn:aws:s3:::${bucket}/${prefix}*`),
      },
    );
  }
  if (store.kind === 'dynamodb') {
    const region = typeof store.region === 'string' ? store.region : context.region;
    const indexes = typeof store.index === 'string' ? [store.index] : [];
    permissions.push({ actions: TOKEN_TABLE_ACTIONS, resources: tableArns(context, region, String(store.table), indexes) });
  }
  const backup = policy.backup ? s3Location(policy.backup.to) : null;
  if (backup) {
    permissions.push(
      { actions: ['s3:ListBucket'], resources: [`arn:aws:s3:::${backup.bucket}`] },
      { actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], resources: [`arn:aws:s3:::${backup.bucket}/${backup.prefix}${policy.name}/*`] },
    );
  }
  return permissions;
}

function tableArns(context: DeploymentContext, region: string, table: string, indexes: string[]): string[] {
  const arn = `arn:aws:dynamodb:${region}:${context.accountId}:table/${table}`;
  return [arn, ...indexes.map((index) => `${arn}/index/${index}`)];
}

function s3Location(to: string): { bucket: string; prefix: string } | null {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(to);
  if (!match) return null;
  const prefix = match[2] ?? '';
  return { bucket: match[1]!, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
}

/** One bucket per distinct S3 backup bucket the policies name, expiring after their longest keepFor. */
function backupBuckets(config: RetentionConfig): BackupBucketPlan[] {
  const longest = new Map<string, number>();
  for (const policy of config.policies) {
    const location = policy.backup ? s3Location(policy.backup.to) : null;
    if (!location || !policy.backup) continue;
    const days = Math.ceil(durationMs(policy.backup.keepFor) / 86_400_000);
    longest.set(location.bucket, Math.max(longest.get(location.bucket) ?? 0, days));
  }
  return [...longest].map(([bucket, expiresInDays]) => ({ component: componentName('Backup', bucket), bucket, expiresInDays }));
}

/**
 * The DynamoDB control table as the DynamoDB control store's `migrate()` checks it: translated from
 * that store's own CreateTable definition, so the two cannot drift apart.
 */
function controlTablePlan(config: RetentionConfig, context: DeploymentContext): ControlTablePlan {
  const configured = (config.control as { table?: unknown } | undefined)?.table;
  const name = typeof configured === 'string' ? configured : `${context.app}-${context.stage}-control`;
  const definition = controlTableDefinition(name);
  const fields = Object.fromEntries((definition.AttributeDefinitions ?? []).map((attribute) => [attribute.AttributeName!, ATTRIBUTE_TYPES[attribute.AttributeType!]]));
  const keysOf = (schema: KeySchemaElement[] | undefined) => ({
    hashKey: schema?.find((key) => key.KeyType === 'HASH')?.AttributeName ?? '',
    rangeKey: schema?.find((key) => key.KeyType === 'RANGE')?.AttributeName,
  });
  const primary = keysOf(definition.KeySchema);
  const globalIndexes = Object.fromEntries(
    (definition.GlobalSecondaryIndexes ?? []).map((index) => {
      const { hashKey, rangeKey } = keysOf(index.KeySchema);
      const type = index.Projection?.ProjectionType;
      const projection: Projection = type === 'ALL' ? 'all' : type === 'INCLUDE' ? (index.Projection?.NonKeyAttributes ?? []) : 'keys-only';
      return [index.IndexName!, { hashKey, ...(rangeKey ? { rangeKey } : {}), projection }];
    }),
  );
  return { component: 'RetentionControl', name, fields, primaryIndex: { hashKey: primary.hashKey, ...(primary.rangeKey ? { rangeKey: primary.rangeKey } : {}) }, globalIndexes, ttl: CONTROL_TTL_ATTRIBUTE };
}

const ATTRIBUTE_TYPES: Record<ScalarAttributeType, 'string' | 'number' | 'binary'> = { S: 'string', N: 'number', B: 'binary' };
