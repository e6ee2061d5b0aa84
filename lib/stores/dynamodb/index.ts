import { dynamoTableArn } from '../../aws/arns.ts';
import type { Grant, Statement, StoreDescriptor, StoreUse } from '../../core/backend.ts';
import { type DynamoTokensStoreConfig, DynamoTokensStoreSchema } from './schema.ts';

/** Expired tokens in a DynamoDB table. */
export const dynamodbBackend = {
  kind: 'dynamodb',
  classes: { tokens: { schema: DynamoTokensStoreSchema } },
  deployment: { grant: dynamoTokensGrant },
} satisfies StoreDescriptor<DynamoTokensStoreConfig>;

/**
 * DescribeTable (open checks the key schema), BatchGetItem (which keys are still there), then
 * either Query on the configured GSI or Scan of the table, and conditional DeleteItem or
 * unconditional BatchWriteItem: exactly the calls the store sends.
 */
function dynamoTokensGrant(store: DynamoTokensStoreConfig, use: StoreUse): Grant {
  const table = dynamoTableArn(use.aws, store.region, store.table);
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
