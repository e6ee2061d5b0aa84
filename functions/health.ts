import { loadPostgresControl } from '../lib/control/postgres/load.ts';
import { healthHandler } from './roles/health.ts';

/**
 * functions/roles/health.ts with the PostgreSQL control store,
 * the default kind (functions/dynamodb/ has the DynamoDB one's).
 */
export const handler = healthHandler({ postgres: loadPostgresControl });
