import { loadDynamoControl } from '../../lib/control/dynamodb/load.ts';
import { TOKEN_LOADERS } from '../../lib/stores/tokenLoaders.ts';
import { dataClassHandler } from '../roles/dataClass.ts';

/**
 * The `tokens` data class: scheduled runs (`{ policy, trigger: "scheduled" }`) and `retention invoke`
 * payloads; with the DynamoDB control store,
 * deployed for a config whose `control.kind` is "dynamodb".
 */
export const handler = dataClassHandler('tokens', TOKEN_LOADERS, { dynamodb: loadDynamoControl });
