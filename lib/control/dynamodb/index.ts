import type { ControlDescriptor } from '../../core/backend.ts';
import { dynamoControlDeployment } from './deployment.ts';
import { type DynamoControlConfig, DynamoControlSchema } from './schema.ts';

/** A DynamoDB table, which the deployment declares; its audit trail lives in the same table. Its code: load.ts. */
export const dynamodbControl = {
  kind: 'dynamodb',
  schema: DynamoControlSchema,
  deployment: dynamoControlDeployment,
} satisfies ControlDescriptor<DynamoControlConfig>;
