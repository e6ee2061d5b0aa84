import type { VercelBlobStoreConfig } from './schema.ts';

/** The Vercel Blob store's code and SDK, loaded when a store opens. */
export async function loadVercelBlobStore() {
  const { createVercelBlobStore } = await import('./store.ts');
  return (policy: { store: VercelBlobStoreConfig }) => createVercelBlobStore(policy.store);
}
