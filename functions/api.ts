import { loadPostgresControl } from '../lib/control/postgres/load.ts';
import { apiHandler } from './roles/api.ts';

/**
 * functions/roles/api.ts with the PostgreSQL control store,
 * the default kind (functions/dynamodb/ has the DynamoDB one's).
 */
export const handler = apiHandler({ postgres: loadPostgresControl });
