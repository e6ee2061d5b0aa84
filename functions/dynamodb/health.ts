import { loadDynamoControl } from '../../lib/control/dynamodb/load.ts';
import { healthHandler } from '../roles/health.ts';

/**
 * functions/roles/health.ts with the DynamoDB control store,
 * deployed for a config whose `control.kind` is "dynamodb".
 */
export const handler = healthHandler({ dynamodb: loadDynamoControl });
