import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import type { RetentionConfigInput } from '../../lib/config/schema.ts';
import { ConfigError } from '../../lib/errors.ts';
import { type DeploymentPlan, planDeployment } from '../../lib/serverless/deployment.ts';
import type { InventoryMapPlan } from '../../lib/serverless/inventoryMap.ts';
import { parseShard } from '../../lib/serverless/shard.ts';

/**
 * The Distributed Map path as deployed: the plan's state machine is a Distributed Map as AWS
 * requires one (ItemReader over a MANIFEST, ItemBatcher, a DISTRIBUTED ItemProcessor, every
 * StartAt and transition resolving), the payload its Task builds is one the blobs function
 * accepts, its role is least privilege, and sst.config.ts declares exactly that (evaluated with
 * stubbed SST and Pulumi globals, as test/integration/sst-config.test.ts does).
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CONTEXT = { app: 'data-retention', stage: 'production', region: 'eu-west-1', accountId: '123456789012' };
const BLOBS = 'arn:aws:lambda:eu-west-1:123456789012:function:data-retention-production-blobs';

const policies: RetentionConfigInput['policies'] = [
  {
    name: 'archive',
    class: 'blobs',
    store: {
      kind: 's3',
      bucket: 'acme-archive',
      prefix: 'scans/',
      region: 'eu-west-1',
      inventory: { bucket: 'acme-inventory', prefix: 'reports/acme-archive/daily/', concurrency: 25 },
    },
    retention: '7y',
    schedule: '0 3 * * *',
    budget: '10m',
  },
  {
    name: 'pdfs',
    class: 'blobs',
    store: { kind: 's3', bucket: 'acme-docs', prefix: 'pdfs/', region: 'eu-west-1' },
    retention: '30d',
    schedule: '0 4 * * *',
  },
];

const planOf = (input: RetentionConfigInput['policies']): DeploymentPlan =>
  planDeployment(parseConfig({ policies: input }), CONTEXT);

/** ASL's rules this plan must meet: every StartAt and Next names a state, every path ends. */
function aslProblems(machine: Record<string, any>, at = '$'): string[] {
  const states = machine.States as Record<string, Record<string, any>>;
  const problems: string[] = [];
  if (!(machine.StartAt in states)) problems.push(`${at}.StartAt names no state`);
  for (const [name, state] of Object.entries(states)) {
    if (!['Task', 'Map', 'Pass', 'Choice', 'Succeed', 'Fail', 'Wait', 'Parallel'].includes(state.Type))
      problems.push(`${at}.${name}.Type`);
    if (state.End !== true && !(state.Next in states)) problems.push(`${at}.${name} neither ends nor goes on`);
    if (state.ItemProcessor) problems.push(...aslProblems(state.ItemProcessor, `${at}.${name}.ItemProcessor`));
  }
  return problems;
}

/** JSONPath parameters resolved as Step Functions resolves them (`key.$` from the input or `$$`). */
function resolve(template: unknown, input: Record<string, unknown>, context: Record<string, unknown>): unknown {
  if (typeof template !== 'object' || template === null) return template;
  const lookup = (jsonPath: string) => {
    const [root, ...steps] = jsonPath.split('.');
    return steps.reduce<any>((value, step) => value?.[step], root === '$$' ? context : input);
  };
  return Object.fromEntries(
    Object.entries(template).map(([key, value]) =>
      key.endsWith('.$') ? [key.slice(0, -2), lookup(value as string)] : [key, resolve(value, input, context)],
    ),
  );
}

describe('planDeployment for a policy with store.inventory', () => {
  const plan = planOf(policies);
  const map = plan.inventoryMaps[0]!;
  const states = (map.definition as any).States;

  it('plans one Distributed Map over the inventory manifest, and no listing schedule for that policy', () => {
    expect(plan.inventoryMaps.map((entry) => entry.policy)).toEqual(['archive']);
    expect(plan.crons.map((cron) => cron.policy)).toEqual(['pdfs']);
    expect(aslProblems(map.definition)).toEqual([]);
    const shards = states.Shards;
    expect(shards).toMatchObject({
      Type: 'Map',
      ItemReader: {
        Resource: 'arn:aws:states:::s3:getObject',
        ReaderConfig: { InputType: 'MANIFEST' },
        Parameters: { 'Bucket.$': '$.manifest.bucket', 'Key.$': '$.manifest.key' },
      },
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' } },
      MaxConcurrency: 25,
      ToleratedFailurePercentage: 0,
      ResultWriter: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Bucket: 'acme-inventory' } },
    });
    // A child's input is a Step Functions payload: at most 256 KiB.
    expect(shards.ItemBatcher.MaxInputBytesPerBatch).toBeLessThanOrEqual(256 * 1024);
    const task = shards.ItemProcessor.States.Shard;
    expect(task.Parameters.FunctionName).toBe(BLOBS);
    expect(task.Retry.map((retry: { ErrorEquals: string[] }) => retry.ErrorEquals[0])).toEqual([
      'RetentionShardUnfinished',
      'Lambda.ServiceException',
    ]);
    expect(JSON.stringify(task.Retry)).not.toContain('RetentionShardFailed');
  });

  it("builds, from a batch of ItemReader rows, a payload the blobs function's parser accepts", () => {
    const manifest = { bucket: 'acme-inventory', key: 'reports/acme-archive/daily/2026-12-07T01-00Z/manifest.json' };
    const items = [
      { Bucket: 'acme-archive', Key: 'scans/a.tif', Size: '3', LastModifiedDate: '2019-01-01T00:00:00.000Z' },
    ];
    const task = states.Shards.ItemProcessor.States.Shard;
    const batch = resolve(states.Shards.ItemBatcher.BatchInput, { manifest }, {});
    const request = resolve(task.Parameters, { BatchInput: batch, Items: items }, { Execution: { Name: 'run/0001' } });
    const parsed = parseShard((request as { Payload: unknown }).Payload);
    expect(parsed).toMatchObject({ ok: true, invocation: { policy: 'archive', trigger: 'inventory' } });
  });

  it('gives the state machine least privilege, and the blobs function nothing of the inventory', () => {
    expect(map.permissions).toEqual([
      { actions: ['s3:GetObject'], resources: ['arn:aws:s3:::acme-inventory/reports/acme-archive/daily/*'] },
      {
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: ['arn:aws:s3:::acme-inventory/reports/acme-archive/daily/retention-map-results/*'],
      },
      { actions: ['lambda:InvokeFunction'], resources: [BLOBS] },
      { actions: ['states:StartExecution'], resources: [map.arn] },
      {
        actions: ['states:DescribeExecution', 'states:StopExecution'],
        resources: [
          'arn:aws:states:eu-west-1:123456789012:execution:data-retention-production-inventory-archive:*',
          'arn:aws:states:eu-west-1:123456789012:execution:data-retention-production-inventory-archive/*',
        ],
      },
    ]);
    for (const statement of [...map.permissions, ...map.start.permissions])
      for (const resource of statement.resources) expect(resource).not.toMatch(/^\*$|:::\*|function:\*/);
    expect(map.start.permissions).toEqual([{ actions: ['states:StartExecution'], resources: [map.arn] }]);
    const blobs = plan.functions.find((fn) => fn.role === 'blobs')!;
    expect(JSON.stringify(blobs.permissions)).not.toContain('acme-inventory');
    const archive = { kind: 's3' as const, bucket: 'acme-archive', prefix: 'scans/', region: 'eu-west-1' };
    const without = planOf([{ ...policies[0]!, class: 'blobs', store: archive }, policies[1]!]);
    expect(blobs.permissions).toEqual(without.functions.find((fn) => fn.role === 'blobs')!.permissions);
  });

  it('starts an execution on each new manifest.json of the inventory, and only there', () => {
    expect(map.start.pattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: {
        bucket: { name: ['acme-inventory'] },
        object: { key: [{ wildcard: 'reports/acme-archive/daily/*/manifest.json' }] },
      },
    });
    expect(map.start.input.template).toBe('{"manifest":{"bucket":<bucket>,"key":<key>}}');
  });

  it('refuses an inventory delivered inside the store, naming the field', () => {
    const inside = {
      ...policies[0]!,
      store: { ...policies[0]!.store, inventory: { bucket: 'acme-archive', prefix: 'scans/inv/' } },
    };
    expect(() => parseConfig({ policies: [inside] })).toThrow(ConfigError);
    try {
      parseConfig({ policies: [inside] });
    } catch (error) {
      expect((error as ConfigError).issues.map((issue) => issue.path)).toEqual(['policies[0].store.inventory.prefix']);
    }
  });
});

describe('sst.config.ts declares the planned Distributed Map', () => {
  const declared: Array<{ type: string; name: string; args: Record<string, any>; opts?: unknown }> = [];
  let scratch: string;
  let planned: InventoryMapPlan;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'retention-inventory-sst-'));
    const configPath = path.join(scratch, 'retention.json');
    await writeFile(configPath, JSON.stringify({ policies }));
    planned = planOf(policies).inventoryMaps[0]!;
    const component = (type: string) =>
      class {
        readonly arn: string;
        readonly name: string;
        readonly id: string;
        readonly url = 'https://example.invalid/';
        constructor(name: string, args: Record<string, any> = {}, opts?: unknown) {
          declared.push({ type, name, args, opts });
          this.name = args.name ?? name;
          this.id = `${name}-id`;
          this.arn = `arn:${type}:${this.name}`;
        }
      };
    const globals = globalThis as Record<string, unknown>;
    globals.$config = (definition: unknown) => definition;
    globals.$app = { name: CONTEXT.app, stage: CONTEXT.stage };
    globals.aws = {
      getRegion: async () => ({ name: CONTEXT.region }),
      getCallerIdentity: async () => ({ accountId: CONTEXT.accountId }),
      iam: { Role: component('aws.iam.Role'), RolePolicy: component('aws.iam.RolePolicy') },
      sfn: { StateMachine: component('aws.sfn.StateMachine') },
      cloudwatch: {
        EventRule: component('aws.cloudwatch.EventRule'),
        EventTarget: component('aws.cloudwatch.EventTarget'),
      },
    };
    globals.sst = {
      Secret: component('sst.Secret'),
      aws: Object.fromEntries(
        ['Function', 'CronV2', 'Dynamo', 'Bucket'].map((type) => [type, component(`sst.aws.${type}`)]),
      ),
    };
    process.env.RETENTION_CONFIG = configPath;
    try {
      const definition = (await import(new URL('sst.config.ts', `file://${ROOT}/`).href)).default;
      await definition.run();
    } finally {
      delete process.env.RETENTION_CONFIG;
    }
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  const one = (type: string, name?: string) => {
    const found = declared.filter((entry) => entry.type === type && (name === undefined || entry.name === name));
    expect(found).toHaveLength(1);
    return found[0]!;
  };
  const document = (statements: InventoryMapPlan['permissions']) =>
    JSON.parse(
      JSON.stringify({
        Version: '2012-10-17',
        Statement: statements.map((s) => ({ Effect: 'Allow', Action: s.actions, Resource: s.resources })),
      }),
    );

  it('declares the state machine with the planned definition and a role holding exactly the planned statements', () => {
    const machine = one('aws.sfn.StateMachine');
    expect(machine.args).toMatchObject({ name: planned.name, type: 'STANDARD' });
    expect(JSON.parse(machine.args.definition)).toEqual(planned.definition);
    const policy = one('aws.iam.RolePolicy');
    expect(JSON.parse(policy.args.policy)).toEqual(document(planned.permissions));
    const role = one('aws.iam.Role', `${planned.component}Role`);
    expect(machine.args.roleArn).toBe(`arn:aws.iam.Role:${role.name}`);
    expect(JSON.parse(role.args.assumeRolePolicy).Statement[0].Principal).toEqual({ Service: 'states.amazonaws.com' });
  });

  it('starts it from an EventBridge rule whose role may start exactly it', () => {
    const rule = one('aws.cloudwatch.EventRule');
    expect(JSON.parse(rule.args.eventPattern)).toEqual(planned.start.pattern);
    expect(rule.args.state).toBe('ENABLED');
    const target = one('aws.cloudwatch.EventTarget');
    expect(target.args.inputTransformer).toEqual({
      inputPaths: planned.start.input.paths,
      inputTemplate: planned.start.input.template,
    });
    const startRole = one('aws.iam.Role', `${planned.component}StartRole`);
    expect(JSON.parse(startRole.args.inlinePolicies[0].policy)).toEqual(document(planned.start.permissions));
    expect(declared.filter((entry) => entry.type === 'sst.aws.CronV2').map((entry) => entry.args.event.policy)).toEqual(
      ['pdfs'],
    );
  });
});
