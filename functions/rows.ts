import { loadPostgresControl } from '../lib/control/postgres/load.ts';
import { ROW_LOADERS } from '../lib/stores/rowLoaders.ts';
import { dataClassHandler } from './roles/dataClass.ts';

/**
 * The `rows` data class: scheduled runs (`{ policy, trigger: "scheduled" }`) and `retention invoke`
 * payloads; with the PostgreSQL control store,
 * the default kind (functions/dynamodb/ has the DynamoDB one's).
 */
export const handler = dataClassHandler('rows', ROW_LOADERS, { postgres: loadPostgresControl });
