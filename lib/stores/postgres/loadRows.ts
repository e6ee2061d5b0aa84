import type { Store } from '../../core/store.ts';
import type { RowsStoreConfig } from './schema.ts';

/** The rows store's code and the PostgreSQL drivers, loaded when a store opens. */
export async function loadPostgresRowsStore() {
  const { createPostgresRowsStore } = await import('./rows.ts');
  // A rows policy's linked files are in a blob store of the registry (`blob.store`).
  return <Blob>(policy: RowsStoreConfig<Blob>, openLinked: (store: Blob) => Promise<Store>) =>
    createPostgresRowsStore(policy, { blobStoreFor: openLinked });
}
