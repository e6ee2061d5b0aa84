import { dataClassHandler } from './dataClass.ts';

/** The `rows` data class: scheduled runs (`{ policy, trigger: "scheduled" }`) and `retention invoke` payloads. */
export const handler = dataClassHandler('rows');
