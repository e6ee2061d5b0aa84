/// <reference path="./.sst/platform/config.d.ts" />

/**
 * Deploys data-retention: one function per data class in use, one EventBridge schedule per enabled
 * policy of retention.config.ts, the health endpoint, the REST API and dashboard, the DynamoDB control table (when the config
 * uses one), the S3 backup buckets and the secrets. Everything, IAM statements included, is derived
 * by `planDeployment` (lib/serverless/deployment.ts, pure and unit-tested); this file only turns
 * the plan into SST components.
 *
 *   npx sst secret set RetentionSentryDsn "https://…" --stage production   (and the other secrets)
 *   npx sst secret set RetentionApiToken "$(openssl rand -hex 32)" --stage production   (RetentionViewerToken too)
 *   npx sst deploy --stage production
 *
 * RETENTION_CONFIG=<file> deploys another config than the bundled retention.config.ts.
 */
export default $config({
  app(input) {
    return {
      name: 'data-retention',
      home: 'aws',
      // Production keeps its control table (audit, history) and backups even if the app is removed.
      removal: input?.stage === 'production' ? 'retain' : 'remove',
      protect: input?.stage === 'production',
    };
  },
  async run() {
    const { resolveConfig } = await import('./lib/serverless/config.ts');
    const { planDeployment } = await import('./lib/serverless/deployment.ts');
    const { SECRETS } = await import('./lib/serverless/naming.ts');
    const { FUNCTION_BUNDLING } = await import('./lib/serverless/bundling.ts');
    const config = await resolveConfig((await import('./retention.config.ts')).default, process.env);
    const [region, identity] = await Promise.all([aws.getRegion({}), aws.getCallerIdentity({})]);
    const plan = planDeployment(config, {
      app: $app.name,
      stage: $app.stage,
      region: region.name,
      accountId: identity.accountId,
    });

    const secrets = Object.fromEntries(plan.secrets.map((key) => [key, new sst.Secret(SECRETS[key])]));

    const table = plan.controlTable;
    if (table) {
      new sst.aws.Dynamo(table.component, {
        fields: table.fields,
        primaryIndex: table.primaryIndex,
        globalIndexes: table.globalIndexes,
        ttl: table.ttl,
        // The name the config's control.table gives, which the IAM statements name too.
        transform: { table: (args) => void (args.name = table.name) },
      });
    }

    for (const backup of plan.backupBuckets) {
      new sst.aws.Bucket(backup.component, {
        // Never shorter than the longest keepFor: the tool prunes each policy's backups itself.
        lifecycle: [{ id: 'expire-backups', expiresIn: `${backup.expiresInDays} days` }],
        transform: { bucket: (args) => void (args.bucket = backup.bucket) },
      });
    }

    const functions = Object.fromEntries(
      plan.functions.map((fn) => [
        fn.role,
        new sst.aws.Function(fn.component, {
          name: fn.name,
          handler: fn.handler,
          runtime: 'nodejs22.x',
          // Code splitting, and the esbuild plugins: lib/serverless/bundling.ts. The entry (fn.handler) carries
          // its class's stores and the config's control store kind only.
          nodejs: FUNCTION_BUNDLING,
          timeout: `${fn.timeoutSeconds} seconds`,
          memory: `${fn.memoryMb} MB`,
          link: fn.secrets.map((key) => secrets[key]),
          // The planned statements, s3:prefix conditions included.
          permissions: fn.permissions,
          environment: fn.environment,
          logging: { retention: '3 months' },
          // Auth NONE: the health token and the API's bearer tokens are checked by the code behind the URL.
          ...(fn.url ? { url: { authorization: 'none' } } : {}),
          // The API's dashboard files: a bundle has no lib/server/dashboard/ nor node_modules.
          ...(fn.copyFiles.length > 0 ? { copyFiles: fn.copyFiles } : {}),
        }),
      ]),
    );

    for (const cron of plan.crons) {
      new sst.aws.CronV2(cron.component, {
        schedule: cron.schedule,
        timezone: 'UTC',
        function: functions[cron.role].arn,
        event: cron.event,
        // The invoke is asynchronous; a duplicate delivery is skipped by the lease.
        retries: 2,
      });
    }

    // Distributed Maps over S3 Inventories (lib/serverless/inventoryMap.ts): raw Pulumi resources,
    // SST has no Step Functions component with an ItemReader. Roles hold exactly the planned statements.
    const policyDocument = (statements: Array<{ actions: string[]; resources: string[] }>) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: statements.map((statement) => ({
          Effect: 'Allow',
          Action: statement.actions,
          Resource: statement.resources,
        })),
      });
    const assumedBy = (service: string) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }],
      });
    for (const map of plan.inventoryMaps) {
      const role = new aws.iam.Role(`${map.component}Role`, { assumeRolePolicy: assumedBy('states.amazonaws.com') });
      const grants = new aws.iam.RolePolicy(`${map.component}Policy`, {
        role: role.id,
        policy: policyDocument(map.permissions),
      });
      const machine = new aws.sfn.StateMachine(
        map.component,
        { name: map.name, type: 'STANDARD', roleArn: role.arn, definition: JSON.stringify(map.definition) },
        { dependsOn: [grants, functions.blobs] },
      );
      const startRole = new aws.iam.Role(`${map.component}StartRole`, {
        assumeRolePolicy: assumedBy('events.amazonaws.com'),
        inlinePolicies: [{ name: 'start', policy: policyDocument(map.start.permissions) }],
      });
      const rule = new aws.cloudwatch.EventRule(`${map.component}Start`, {
        eventPattern: JSON.stringify(map.start.pattern),
        state: map.start.enabled ? 'ENABLED' : 'DISABLED',
      });
      new aws.cloudwatch.EventTarget(`${map.component}Target`, {
        rule: rule.name,
        arn: machine.arn,
        roleArn: startRole.arn,
        inputTransformer: { inputPaths: map.start.input.paths, inputTemplate: map.start.input.template },
      });
    }

    return {
      health: functions.health.url,
      api: functions.api.url,
      ...(table ? { controlTable: table.name } : {}),
      ...Object.fromEntries(plan.functions.map((fn) => [`function_${fn.role}`, fn.name])),
    };
  },
});
