import type { DynamoTokensStoreConfig } from './schema.ts';

/** The DynamoDB tokens store's code and the DynamoDB SDK, loaded when a store opens. */
export async function loadDynamoTokensStore() {
  const { createDynamoTokensStore } = await import('./store.ts');
  return (policy: { store: DynamoTokensStoreConfig }) => createDynamoTokensStore(policy.store);
}
