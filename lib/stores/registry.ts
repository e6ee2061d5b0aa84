import type { Store } from '../core/store.ts';
import { BLOB_LOADERS } from './blobLoaders.ts';
import { type AllStoreLoaders, openStore, type StorePolicy } from './descriptors.ts';
import { ROW_LOADERS } from './rowLoaders.ts';
import { TOKEN_LOADERS } from './tokenLoaders.ts';

export {
  backendsServing,
  STORE_BACKENDS,
  type StoreConfig,
  type StoreConfigOf,
  type StoreKind,
  type StorePolicy,
  storeBackend,
} from './descriptors.ts';

/**
 * Every store of every class: what the CLI, the daemon and the local server carry. A deployed
 * data-class function carries its class's loaders only (functions/, blobLoaders.ts, …), so its
 * bundle holds no other class's store code. A backend missing here does not compile.
 */
export const STORE_LOADERS = { ...BLOB_LOADERS, ...ROW_LOADERS, ...TOKEN_LOADERS } satisfies AllStoreLoaders;

/**
 * The CLI opens every store before running any policy and the engine opens it again at run start,
 * with the run's deadline: each store checks its backend once (S3: one listing under its prefix; a
 * billed Vercel Blob list call) and takes the deadline on every call. A failed check is not
 * remembered, so the next call checks again. Store code loads on first use, so a config of local
 * directories never loads a cloud SDK.
 */
export function createStore(policy: StorePolicy): Promise<Store> {
  return openStore(STORE_LOADERS, policy);
}

/**
 * The policy's store, opened outside a run for a read (verify, storage, lifecycle, a hold check),
 * handed to `use`, and closed whatever `use` does; a failing close never hides `use`'s outcome.
 */
export async function withOpenStore<T>(policy: StorePolicy, use: (store: Store) => Promise<T>): Promise<T> {
  const store = await createStore(policy);
  try {
    await store.open();
    return await use(store);
  } finally {
    await store.close().catch(() => undefined);
  }
}
