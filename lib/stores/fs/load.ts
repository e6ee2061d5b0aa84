import type { CompressFormat } from '../../policy/compress.ts';
import type { FsStoreConfig } from './schema.ts';

/** The fs store's code, loaded when a store opens (stores/registry.ts says who lists this loader). */
export async function loadFsStore() {
  const { createFsStore } = await import('./store.ts');
  // A linked files' store (a rows policy's `blob`) has no compress tier: its files keep their names.
  return (policy: { store: FsStoreConfig; compress?: { format: CompressFormat } }) =>
    createFsStore(policy.store, policy.compress);
}
