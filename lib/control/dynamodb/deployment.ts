import type { KeySchemaElement, ScalarAttributeType } from '@aws-sdk/client-dynamodb';
import { dynamoTableArn } from '../../aws/arns.ts';
import type { ControlDeployment, DynamoTable } from '../../core/backend.ts';
import { CONTROL_TTL_ATTRIBUTE, controlTableDefinition } from './definition.ts';
import type { DynamoControlConfig } from './schema.ts';

/**
 * Every function opens the store as every caller does: `migrate()` first, which only describes
 * the table and its TTL when the table exists as declared (the deployment declares it; creating
 * it or enabling TTL is not granted). Index reads fetch their records with BatchGetItem.
 */
const READS = [
  'dynamodb:DescribeTable',
  'dynamodb:DescribeTimeToLive',
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
];
const WRITES = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];

export const dynamoControlDeployment: ControlDeployment<DynamoControlConfig> = {
  grant: (config, access, aws) => {
    const table = dynamoTableArn(aws, config.region, config.table);
    const indexes = (controlTableDefinition(config.table).GlobalSecondaryIndexes ?? []).map(
      (index) => `${table}/index/${index.IndexName}`,
    );
    const actions = access === 'read-only' ? READS : [...READS, ...WRITES];
    return {
      statements: [
        { actions, resources: [table] },
        { actions: ['dynamodb:Query'], resources: indexes },
      ],
      secrets: [],
    };
  },
  check: (config, aws) =>
    config.region !== undefined && config.region !== aws.region
      ? [
          {
            path: 'control.region',
            message: `the control table is declared in the deploy region ${aws.region}, not ${config.region}`,
            fix: `remove control.region or deploy to ${config.region}`,
          },
        ]
      : [],
  table: (config) => tableOf(config.table),
};

/**
 * The table as the store's `migrate()` checks it: translated from the store's own CreateTable
 * definition, so the two cannot drift apart.
 */
function tableOf(name: string): DynamoTable {
  const definition = controlTableDefinition(name);
  const fields = Object.fromEntries(
    (definition.AttributeDefinitions ?? []).map((attribute) => [
      attribute.AttributeName!,
      ATTRIBUTE_TYPES[attribute.AttributeType!],
    ]),
  );
  const keysOf = (schema: KeySchemaElement[] | undefined) => ({
    hashKey: schema?.find((key) => key.KeyType === 'HASH')?.AttributeName ?? '',
    rangeKey: schema?.find((key) => key.KeyType === 'RANGE')?.AttributeName,
  });
  const primary = keysOf(definition.KeySchema);
  const globalIndexes = Object.fromEntries(
    (definition.GlobalSecondaryIndexes ?? []).map((index) => {
      const { hashKey, rangeKey } = keysOf(index.KeySchema);
      const type = index.Projection?.ProjectionType;
      const projection: DynamoTable['globalIndexes'][string]['projection'] =
        type === 'ALL' ? 'all' : type === 'INCLUDE' ? (index.Projection?.NonKeyAttributes ?? []) : 'keys-only';
      return [index.IndexName!, { hashKey, ...(rangeKey ? { rangeKey } : {}), projection }];
    }),
  );
  const primaryIndex = { hashKey: primary.hashKey, ...(primary.rangeKey ? { rangeKey: primary.rangeKey } : {}) };
  return { name, fields, primaryIndex, globalIndexes, ttl: CONTROL_TTL_ATTRIBUTE };
}

const ATTRIBUTE_TYPES: Record<ScalarAttributeType, 'string' | 'number' | 'binary'> = {
  S: 'string',
  N: 'number',
  B: 'binary',
};
