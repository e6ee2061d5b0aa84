import type { PolicyConfig, StoreConfig, StoreKind } from '../config/schema.ts';
import type { Store } from './types.ts';

/**
 * Every store kind, one line each: a new backend is its file, its schema in config/stores.ts and a
 * line here. Stores load on first use, so a config of local directories never loads a cloud SDK.
 * `satisfies` makes a missing kind a type error.
 */
type Factory<K extends StoreKind> = (config: Extract<StoreConfig, { kind: K }>) => Store;

const loaders = {
  fs: async () => (await import('./fs.ts')).createFsStore,
  s3: async () => (await import('./s3.ts')).createS3Store,
  'vercel-blob': async () => (await import('./vercelBlob.ts')).createVercelBlobStore,
  dynamodb: async () => (await import('./dynamoTokens.ts')).createDynamoTokensStore,
} satisfies { [K in StoreKind]: () => Promise<Factory<K>> };

export async function createStore(policy: PolicyConfig): Promise<Store> {
  const factory = (await loaders[policy.store.kind]()) as Factory<StoreKind>;
  return factory(policy.store);
}
