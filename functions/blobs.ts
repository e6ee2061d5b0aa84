import { BLOB_LOADERS } from '../lib/stores/blobLoaders.ts';
import { CONTROLS } from './control.ts';
import { dataClassHandler } from './dataClass.ts';

/** The `blobs` data class: scheduled runs (`{ policy, trigger: "scheduled" }`) and `retention invoke` payloads. */
export const handler = dataClassHandler('blobs', BLOB_LOADERS, CONTROLS);
