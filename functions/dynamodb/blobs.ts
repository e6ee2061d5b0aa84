import { loadDynamoControl } from '../../lib/control/dynamodb/load.ts';
import { BLOB_LOADERS } from '../../lib/stores/blobLoaders.ts';
import { dataClassHandler } from '../roles/dataClass.ts';

/**
 * The `blobs` data class: scheduled runs (`{ policy, trigger: "scheduled" }`) and `retention invoke`
 * payloads; with the DynamoDB control store,
 * deployed for a config whose `control.kind` is "dynamodb".
 */
export const handler = dataClassHandler('blobs', BLOB_LOADERS, { dynamodb: loadDynamoControl });
