import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import type { Statement } from '../core/backend.ts';
import { durationMs } from '../core/durations.ts';
import { componentName } from './naming.ts';

/**
 * The Distributed Map of each S3 policy with `store.inventory` (pure, tested without SST): a
 * Standard state machine whose one Map state reads an S3 Inventory's manifest.json (ItemReader,
 * `InputType: MANIFEST`: Step Functions reads the CSV data files the manifest names), batches its
 * rows (ItemBatcher) and invokes the blobs function once per batch with a shard payload
 * (serverless/shard.ts). Its role reads exactly the inventory's prefix, writes the map's results
 * under it, invokes exactly the blobs function, and starts and stops only its own child
 * executions. An EventBridge rule starts an execution when S3 delivers a new manifest.json (the
 * destination bucket must send events to EventBridge); by hand:
 * `aws stepfunctions start-execution --state-machine-arn <arn> --input '{"manifest":{"bucket":"…","key":"…/manifest.json"}}'`.
 */
export interface InventoryMapPlan {
  component: string;
  policy: string;
  /** The state machine's name; its ARN is `arn`. */
  name: string;
  arn: string;
  /** Amazon States Language, JSONPath. */
  definition: Record<string, unknown>;
  /** The state machine's role (trusting states.amazonaws.com). */
  permissions: Statement[];
  start: {
    /** A disabled policy's rule is declared disabled: it can still be started by hand. */
    enabled: boolean;
    /** EventBridge event pattern: manifest.json created under the inventory prefix. */
    pattern: Record<string, unknown>;
    input: { paths: Record<string, string>; template: string };
    /** The rule's role (trusting events.amazonaws.com). */
    permissions: Statement[];
  };
}

/** The error names a shard's end is thrown as (serverless/shard.ts `shardResult`), matched by the Task's Retry. */
export const SHARD_RETRIED_ERROR = 'RetentionShardUnfinished';
export const SHARD_FAILED_ERROR = 'RetentionShardFailed';

/**
 * Rows per shard. A child's input is at most 256 KiB (a Step Functions payload), so bytes bind
 * first for long keys; 1,000 rows is one re-listing and one DeleteObjects, seconds of the budget.
 */
const ROWS_PER_SHARD = 1000;
const SHARD_INPUT_BYTES = 240 * 1024;
/** Under `store.inventory.prefix`: where the Map writes its results (a summary per child run). */
const RESULTS_FOLDER = 'retention-map-results/';

interface Context {
  app: string;
  stage: string;
  region: string;
  accountId: string;
  /** The blobs function's name and timeout. */
  blobs: { name: string; timeoutSeconds: number };
}

type InventoryPolicy = PolicyConfig & {
  store: { kind: 's3'; inventory: { bucket: string; prefix: string; concurrency: number } };
};

export function hasInventory(policy: PolicyConfig): policy is InventoryPolicy {
  return policy.store.kind === 's3' && policy.store.inventory !== undefined;
}

export function planInventoryMaps(config: RetentionConfig, context: Context): InventoryMapPlan[] {
  return config.policies.filter(hasInventory).map((policy) => inventoryMap(policy, context));
}

function inventoryMap(policy: InventoryPolicy, context: Context): InventoryMapPlan {
  const { bucket, prefix, concurrency } = policy.store.inventory;
  const name = `${context.app}-${context.stage}-inventory-${policy.name}`;
  const arn = `arn:aws:states:${context.region}:${context.accountId}:stateMachine:${name}`;
  const functionArn = `arn:aws:lambda:${context.region}:${context.accountId}:function:${context.blobs.name}`;
  const executions = `arn:aws:states:${context.region}:${context.accountId}:execution:${name}`;
  const results = `${prefix}${RESULTS_FOLDER}`;
  return {
    component: componentName('InventoryMap', policy.name),
    policy: policy.name,
    name,
    arn,
    definition: definition(policy, {
      functionArn,
      bucket,
      results,
      concurrency,
      timeout: context.blobs.timeoutSeconds,
    }),
    permissions: [
      // The manifest and the CSV data files it names, all under the inventory's prefix.
      { actions: ['s3:GetObject'], resources: [`arn:aws:s3:::${bucket}/${prefix}*`] },
      {
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: [`arn:aws:s3:::${bucket}/${results}*`],
      },
      { actions: ['lambda:InvokeFunction'], resources: [functionArn] },
      // Child workflow executions of the Distributed Map are executions of this state machine.
      { actions: ['states:StartExecution'], resources: [arn] },
      {
        actions: ['states:DescribeExecution', 'states:StopExecution'],
        resources: [`${executions}:*`, `${executions}/*`],
      },
    ],
    start: {
      enabled: policy.enabled,
      pattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: {
          bucket: { name: [bucket] },
          object: { key: [{ wildcard: `${prefix.replaceAll('\\', '\\\\').replaceAll('*', '\\*')}*/manifest.json` }] },
        },
      },
      input: {
        paths: { bucket: '$.detail.bucket.name', key: '$.detail.object.key' },
        template: '{"manifest":{"bucket":<bucket>,"key":<key>}}',
      },
      permissions: [{ actions: ['states:StartExecution'], resources: [arn] }],
    },
  };
}

interface MapShape {
  functionArn: string;
  bucket: string;
  results: string;
  concurrency: number;
  timeout: number;
}

/**
 * Retries: `RetentionShardUnfinished` (budget spent, or another attempt holds the shard's lease)
 * resumes from the shard's checkpoint, with backoff up to the policy's budget between attempts;
 * Lambda's own throttles and faults are retried with jitter. `RetentionShardFailed` is not retried
 * and, with ToleratedFailurePercentage 0, fails the map: limits, pauses and refusals need a person.
 */
function definition(policy: InventoryPolicy, shape: MapShape): Record<string, unknown> {
  const budgetSeconds = Math.ceil(durationMs(policy.budget) / 1000);
  return {
    Comment: `data-retention: policy ${policy.name} over its S3 Inventory, one shard per batch of rows`,
    StartAt: 'Shards',
    States: {
      Shards: {
        Type: 'Map',
        ItemReader: {
          Resource: 'arn:aws:states:::s3:getObject',
          ReaderConfig: { InputType: 'MANIFEST' },
          Parameters: { 'Bucket.$': '$.manifest.bucket', 'Key.$': '$.manifest.key' },
        },
        ItemBatcher: {
          MaxItemsPerBatch: ROWS_PER_SHARD,
          MaxInputBytesPerBatch: SHARD_INPUT_BYTES,
          BatchInput: { 'manifest.$': '$.manifest' },
        },
        MaxConcurrency: shape.concurrency,
        ToleratedFailurePercentage: 0,
        ItemProcessor: {
          ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
          StartAt: 'Shard',
          States: {
            Shard: {
              Type: 'Task',
              Resource: 'arn:aws:states:::lambda:invoke',
              Parameters: {
                FunctionName: shape.functionArn,
                Payload: {
                  policy: policy.name,
                  shard: { 'manifest.$': '$.BatchInput.manifest', 'id.$': '$$.Execution.Name', 'items.$': '$.Items' },
                },
              },
              // The counts only: a run report with `list` could outgrow a state's 256 KiB.
              ResultSelector: {
                'runId.$': '$.Payload.runId',
                'status.$': '$.Payload.status',
                'deleted.$': '$.Payload.deleted',
                'held.$': '$.Payload.held',
                'failed.$': '$.Payload.failed',
              },
              TimeoutSeconds: shape.timeout + 60,
              Retry: [
                {
                  ErrorEquals: [SHARD_RETRIED_ERROR],
                  IntervalSeconds: 30,
                  BackoffRate: 2,
                  MaxDelaySeconds: Math.max(60, budgetSeconds),
                  MaxAttempts: 10,
                },
                {
                  ErrorEquals: [
                    'Lambda.ServiceException',
                    'Lambda.AWSLambdaException',
                    'Lambda.SdkClientException',
                    'Lambda.TooManyRequestsException',
                    'States.Timeout',
                  ],
                  IntervalSeconds: 5,
                  BackoffRate: 2,
                  MaxAttempts: 6,
                  JitterStrategy: 'FULL',
                },
              ],
              End: true,
            },
          },
        },
        ResultWriter: {
          Resource: 'arn:aws:states:::s3:putObject',
          Parameters: { Bucket: shape.bucket, Prefix: shape.results },
        },
        End: true,
      },
    },
  };
}
