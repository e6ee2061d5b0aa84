import type { S3StoreConfig } from './schema.ts';

/** The S3 store's code and the S3 SDK, loaded when a store opens. */
export async function loadS3Store() {
  const { createS3Store } = await import('./store.ts');
  return (policy: { store: S3StoreConfig }) => createS3Store(policy.store);
}
