import type { RetentionConfig } from './config/schema.ts';
import { openControl } from './control/registry.ts';
import type { ControlStoreOptions, OpenedControlStore } from './core/backend.ts';

/**
 * Opening the control store from the config, shared by the CLI and the Lambda handlers so both
 * reach the same state the same way. The store is migrated before it is handed out. Its kind
 * (`config.control.kind`, PostgreSQL when absent) is looked up in control/registry.ts.
 */
export function openControlStore(config: RetentionConfig, options: ControlStoreOptions): Promise<OpenedControlStore> {
  return openControl(config.control, options);
}
