import { loadDynamoControl } from '../../lib/control/dynamodb/load.ts';
import { apiHandler } from '../roles/api.ts';

/**
 * functions/roles/api.ts with the DynamoDB control store,
 * deployed for a config whose `control.kind` is "dynamodb".
 */
export const handler = apiHandler({ dynamodb: loadDynamoControl });
