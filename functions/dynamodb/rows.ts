import { loadDynamoControl } from '../../lib/control/dynamodb/load.ts';
import { ROW_LOADERS } from '../../lib/stores/rowLoaders.ts';
import { dataClassHandler } from '../roles/dataClass.ts';

/**
 * The `rows` data class: scheduled runs (`{ policy, trigger: "scheduled" }`) and `retention invoke`
 * payloads; with the DynamoDB control store,
 * deployed for a config whose `control.kind` is "dynamodb".
 */
export const handler = dataClassHandler('rows', ROW_LOADERS, { dynamodb: loadDynamoControl });
