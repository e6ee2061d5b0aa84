import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import type { AwsScope, DynamoTable, Statement } from '../core/backend.ts';
import { durationMs } from '../core/durations.ts';
import type { DataClass } from '../core/types.ts';
import { ConfigError, type InputIssue } from '../errors.ts';
import { dashboardCopies } from '../server/dashboard.ts';
import type { StoreConfig } from '../stores/descriptors.ts';
import { functionHandler } from './bundling.ts';
import { hasInventory, type InventoryMapPlan, planInventoryMaps } from './inventoryMap.ts';
import {
  API_DASHBOARD_DIR,
  componentName,
  type FunctionRole,
  functionEnvVar,
  functionName,
  SECRETS,
  type SecretKey,
} from './naming.ts';
import {
  backupBucket,
  controlIssues,
  controlKind,
  controlPermissions,
  controlTable,
  storePermissions,
  sweptBuckets,
} from './permissions.ts';
import { toEventBridgeCron } from './schedule.ts';

/**
 * What `sst.config.ts` declares, computed from the parsed retention config (pure, so it is tested
 * without SST): one function per data class in use, one schedule per enabled policy, the DynamoDB
 * control table when the config uses one, backup buckets, and per function exactly the IAM
 * statements and secrets its policies need. What each store and control kind needs is its
 * descriptor's (core/backend.ts), asked through permissions.ts; this module gathers it per function.
 */
export interface DeploymentContext {
  app: string;
  stage: string;
  region: string;
  accountId: string;
}

export interface FunctionPlan {
  role: FunctionRole;
  component: string;
  name: string;
  /** `functions/blobs.handler`, relative to the repo root (bundling.ts: one entry per control kind). */
  handler: string;
  timeoutSeconds: number;
  /** Lambda's CPU share grows with memory: the data classes get room for concurrent deletes. */
  memoryMb: number;
  permissions: Statement[];
  secrets: SecretKey[];
  environment: Record<string, string>;
  /**
   * A Function URL (health and the API) with auth NONE: IAM auth would need signed requests, which
   * neither an uptime checker nor a browser sends; the bearer tokens are checked in code instead.
   */
  url: boolean;
  /** Files put beside the bundle (paths from the repository root → in the package): the API's dashboard. */
  copyFiles: Array<{ from: string; to: string }>;
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
export interface ControlTablePlan extends DynamoTable {
  component: string;
}

/** Statements and secrets of a function, or of what it uses (a backend's `Grant`, with any secret of SECRETS). */
interface FunctionGrant {
  statements: Statement[];
  secrets: SecretKey[];
}

export interface DeploymentPlan {
  functions: FunctionPlan[];
  crons: CronPlan[];
  controlKind: string;
  /** Only for a control store kind with a table (DynamoDB): the functions get no right to create it. */
  controlTable: ControlTablePlan | null;
  backupBuckets: BackupBucketPlan[];
  secrets: SecretKey[];
  /** One Distributed Map per S3 policy with `store.inventory` (inventoryMap.ts). */
  inventoryMaps: InventoryMapPlan[];
}

/** Kept beyond the longest budget for what follows the last batch (census, history, flush, re-invoke). */
export const TIMEOUT_MARGIN_SECONDS = 60;
/** Lambda's ceiling; a longer budget is capped by the invocation deadline (the run ends `partial`). */
export const MAX_TIMEOUT_SECONDS = 900;
const HEALTH_TIMEOUT_SECONDS = 30;
/** Every API request is a few control store calls; starting a run waits up to 10 s for its record. */
const API_TIMEOUT_SECONDS = 30;
const DATA_CLASSES: DataClass[] = ['blobs', 'rows', 'tokens'];
const SECRET_ORDER = Object.keys(SECRETS) as SecretKey[];

export function planDeployment(config: RetentionConfig, context: DeploymentContext): DeploymentPlan {
  const issues: InputIssue[] = [];
  const crons = scheduleCrons(config, issues);
  const aws: AwsScope = { region: context.region, accountId: context.accountId };
  const policyGrants = config.policies.map((policy, index) => policyGrant(policy, index, aws, issues));
  const control = config.control;
  issues.push(...controlIssues(control, aws));
  if (issues.length > 0) throw new ConfigError(issues);

  const environment = { RETENTION_STAGE: context.stage };
  const functions: FunctionPlan[] = [];
  for (const dataClass of DATA_CLASSES) {
    const policies = config.policies.filter((policy) => policy.class === dataClass);
    if (policies.length === 0) continue;
    const name = functionName(context.app, context.stage, dataClass);
    const longestBudget = Math.max(...policies.map((policy) => durationMs(policy.budget) / 1000));
    // `continue: true` backfills re-invoke the function itself, and nothing else.
    const itself = lambdaArn(context, name);
    const grant = merge([
      controlPermissions(control, 'read-write', aws),
      ...config.policies.flatMap((policy, index) => (policy.class === dataClass ? [policyGrants[index]!] : [])),
      { statements: [{ actions: ['lambda:InvokeFunction'], resources: [itself] }], secrets: ['sentryDsn'] },
    ]);
    functions.push({
      role: dataClass,
      component: componentName('Retention', dataClass),
      name,
      handler: functionHandler(dataClass, controlKind(control)),
      timeoutSeconds: Math.min(MAX_TIMEOUT_SECONDS, Math.ceil(longestBudget) + TIMEOUT_MARGIN_SECONDS),
      memoryMb: 1024,
      permissions: grant.statements,
      secrets: grant.secrets,
      environment,
      url: false,
      copyFiles: [],
    });
  }
  // Health reads run history and nothing else: no store, no write.
  const health = merge([controlPermissions(control, 'read-only', aws), { statements: [], secrets: ['healthToken'] }]);
  functions.push({
    role: 'health',
    component: 'RetentionHealth',
    name: functionName(context.app, context.stage, 'health'),
    handler: functionHandler('health', controlKind(control)),
    timeoutSeconds: HEALTH_TIMEOUT_SECONDS,
    memoryMb: 256,
    permissions: health.statements,
    secrets: health.secrets,
    environment,
    url: true,
    copyFiles: [],
  });
  functions.push(apiFunction(functions, control, context, aws));

  const secrets = SECRET_ORDER.filter((key) => functions.some((plan) => plan.secrets.includes(key)));
  const table = controlTable(control);
  const blobs = functions.find((fn) => fn.role === 'blobs');
  const inventoryMaps = blobs ? planInventoryMaps(config, { ...context, blobs }) : [];
  return {
    functions,
    crons,
    controlKind: controlKind(control),
    controlTable: table ? { component: 'RetentionControl', ...table } : null,
    backupBuckets: backupBuckets(config),
    secrets,
    inventoryMaps,
  };
}

/**
 * The REST API and dashboard: the control store read and written as the API does (pauses, holds,
 * their governance records, run history), and `lambda:InvokeFunction` on exactly the data-class
 * functions, which run what it starts. No store: runs, dry runs included, happen in those functions.
 */
function apiFunction(
  planned: FunctionPlan[],
  control: RetentionConfig['control'],
  context: DeploymentContext,
  aws: AwsScope,
): FunctionPlan {
  const runners = planned.filter((fn): fn is FunctionPlan & { role: DataClass } =>
    (DATA_CLASSES as string[]).includes(fn.role),
  );
  const invoke: Statement[] =
    runners.length > 0
      ? [{ actions: ['lambda:InvokeFunction'], resources: runners.map((fn) => lambdaArn(context, fn.name)) }]
      : [];
  const grant = merge([
    controlPermissions(control, 'read-write', aws),
    { statements: invoke, secrets: ['apiToken', 'viewerToken'] },
  ]);
  const names = Object.fromEntries(runners.map((fn) => [functionEnvVar(fn.role), fn.name]));
  return {
    role: 'api',
    component: 'RetentionApi',
    name: functionName(context.app, context.stage, 'api'),
    handler: functionHandler('api', controlKind(control)),
    timeoutSeconds: API_TIMEOUT_SECONDS,
    memoryMb: 512,
    permissions: grant.statements,
    secrets: grant.secrets,
    environment: { RETENTION_STAGE: context.stage, ...names },
    url: true,
    copyFiles: dashboardCopies(API_DASHBOARD_DIR),
  };
}

const lambdaArn = (context: DeploymentContext, name: string): string =>
  `arn:aws:lambda:${context.region}:${context.accountId}:function:${name}`;

/** One schedule per enabled policy; a schedule EventBridge cannot express is an issue. */
function scheduleCrons(config: RetentionConfig, issues: InputIssue[]): CronPlan[] {
  const crons: CronPlan[] = [];
  config.policies.forEach((policy, index) => {
    // An inventory's delivery starts its policy's Distributed Map (inventoryMap.ts), not a schedule:
    // a listing run beside the shards would delete the same keys as they do.
    if (!policy.enabled || hasInventory(policy)) return;
    const converted = toEventBridgeCron(policy.schedule);
    if (!converted.ok) {
      issues.push({ path: `policies[${index}].schedule`, message: converted.message, fix: converted.fix });
      return;
    }
    crons.push({
      component: componentName('Schedule', policy.name),
      policy: policy.name,
      role: policy.class,
      schedule: converted.expression,
      event: { policy: policy.name, trigger: 'scheduled' },
    });
  });
  return crons;
}

/**
 * What one policy needs: its store (with its backup location) and, for rows with linked files,
 * the blob store holding them. Disabled policies are granted too: they can still be invoked by
 * hand. A store a Lambda cannot serve is an issue under the policy's path.
 */
function policyGrant(policy: PolicyConfig, index: number, aws: AwsScope, issues: InputIssue[]): FunctionGrant {
  const grants: FunctionGrant[] = [];
  for (const use of reachedStores(policy, `policies[${index}]`)) {
    const result = storePermissions(use.store, { aws, policy: policy.name, backupTo: use.backupTo });
    if ('refused' in result) issues.push({ ...result.refused, path: `${use.at}.${result.refused.path}` });
    else grants.push(result);
  }
  return merge(grants);
}

interface ReachedStore {
  /** Config path of the store's parent: `policies[0]`, or `policies[0].blob` for linked files. */
  at: string;
  store: StoreConfig;
  backupTo: string | undefined;
}

/** The stores a policy reaches: its own (with its backup location) and a rows policy's linked files. */
function reachedStores(policy: PolicyConfig, at: string): ReachedStore[] {
  const own = { at, store: policy.store, backupTo: policy.backup?.to };
  if (policy.class !== 'rows' || !policy.blob) return [own];
  return [own, { at: `${at}.blob`, store: policy.blob.store, backupTo: policy.blob.backupTo }];
}

/** Statements and secrets of several grants, each once, in first-seen order (secrets in SECRETS order). */
function merge(grants: FunctionGrant[]): FunctionGrant {
  const statements = new Map<string, Statement>();
  for (const statement of grants.flatMap((grant) => grant.statements)) {
    statements.set(JSON.stringify(statement), statement);
  }
  const secrets = new Set(grants.flatMap((grant) => grant.secrets));
  return { statements: [...statements.values()], secrets: SECRET_ORDER.filter((key) => secrets.has(key)) };
}

/**
 * One bucket per distinct S3 backup bucket the policies name, expiring after their longest keepFor.
 * A bucket that a policy also sweeps exists already, and an expiry rule there would delete live
 * data: it is left alone (the backups then live under their own prefix, pruned by the tool).
 */
function backupBuckets(config: RetentionConfig): BackupBucketPlan[] {
  const stores = config.policies.flatMap((policy) => reachedStores(policy, ''));
  const swept = new Set(stores.flatMap(({ store }) => sweptBuckets(store)));
  const longest = new Map<string, number>();
  for (const policy of config.policies) {
    if (!policy.backup) continue;
    const bucket = backupBucket(policy.store, policy.backup.to);
    if (bucket === undefined || swept.has(bucket)) continue;
    const days = Math.ceil(durationMs(policy.backup.keepFor) / 86_400_000);
    longest.set(bucket, Math.max(longest.get(bucket) ?? 0, days));
  }
  return [...longest].map(([bucket, expiresInDays]) => ({
    component: componentName('Backup', bucket),
    bucket,
    expiresInDays,
  }));
}
