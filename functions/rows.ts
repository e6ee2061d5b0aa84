import { ROW_LOADERS } from '../lib/stores/rowLoaders.ts';
import { CONTROLS } from './control.ts';
import { dataClassHandler } from './dataClass.ts';

/** The `rows` data class: scheduled runs (`{ policy, trigger: "scheduled" }`) and `retention invoke` payloads. */
export const handler = dataClassHandler('rows', ROW_LOADERS, CONTROLS);
