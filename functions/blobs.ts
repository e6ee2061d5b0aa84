import { loadPostgresControl } from '../lib/control/postgres/load.ts';
import { BLOB_LOADERS } from '../lib/stores/blobLoaders.ts';
import { dataClassHandler } from './roles/dataClass.ts';

/**
 * The `blobs` data class: scheduled runs (`{ policy, trigger: "scheduled" }`) and `retention invoke`
 * payloads; with the PostgreSQL control store,
 * the default kind (functions/dynamodb/ has the DynamoDB one's).
 */
export const handler = dataClassHandler('blobs', BLOB_LOADERS, { postgres: loadPostgresControl });
