import type { ControlStoreOptions, OpenedControlStore } from '../core/backend.ts';
import { type ControlConfig, type ControlKind, type ControlLoader, openControlWith } from './descriptors.ts';
import { loadDynamoControl } from './dynamodb/load.ts';
import { loadPostgresControl } from './postgres/load.ts';

export {
  CONTROL_BACKENDS,
  type ControlConfig,
  type ControlKind,
  type ControlLoaders,
  controlBackend,
  DEFAULT_CONTROL,
} from './descriptors.ts';

/**
 * Every control store kind's code: what the CLI, the daemon and the local server carry. A deployed
 * function carries the one its config names (functions/, sst.config.ts). A kind missing here does
 * not compile.
 */
export const CONTROL_LOADERS = {
  postgres: loadPostgresControl,
  dynamodb: loadDynamoControl,
} satisfies { [K in ControlKind]: ControlLoader<K> };

/** Opens the configured control store (the default one when none is), loading its code first. */
export function openControl(
  config: ControlConfig | undefined,
  options: ControlStoreOptions,
): Promise<OpenedControlStore> {
  return openControlWith(CONTROL_LOADERS, config, options);
}
