import { TOKEN_LOADERS } from '../lib/stores/tokenLoaders.ts';
import { CONTROLS } from './control.ts';
import { dataClassHandler } from './dataClass.ts';

/** The `tokens` data class: scheduled runs (`{ policy, trigger: "scheduled" }`) and `retention invoke` payloads. */
export const handler = dataClassHandler('tokens', TOKEN_LOADERS, CONTROLS);
