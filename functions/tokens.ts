import { loadPostgresControl } from '../lib/control/postgres/load.ts';
import { TOKEN_LOADERS } from '../lib/stores/tokenLoaders.ts';
import { dataClassHandler } from './roles/dataClass.ts';

/**
 * The `tokens` data class: scheduled runs (`{ policy, trigger: "scheduled" }`) and `retention invoke`
 * payloads; with the PostgreSQL control store,
 * the default kind (functions/dynamodb/ has the DynamoDB one's).
 */
export const handler = dataClassHandler('tokens', TOKEN_LOADERS, { postgres: loadPostgresControl });
