import type { PolicyConfig, StoreConfig, StoreKind } from '../config/schema.ts';
import type { PostgresTokensConfig } from './postgres/tokens.ts';
import type { Store } from '../core/store.ts';

/**
 * Every store kind, one line each: a new backend is its file, its schema in config/stores.ts and a
 * line here. Stores load on first use, so a config of local directories never loads a cloud SDK.
 * A factory gets the whole policy (a rows store needs its table, columns and linked blob store);
 * `satisfies` makes a missing kind a type error.
 */
type PolicyOf<K extends StoreKind> = PolicyConfig & { store: Extract<StoreConfig, { kind: K }> };
type Factory<K extends StoreKind> = (policy: PolicyOf<K>) => Store;

const loaders = {
  fs: async () => {
    const { createFsStore } = await import('./fs/store.ts');
    return (policy) => createFsStore(policy.store);
  },
  s3: async () => {
    const { createS3Store } = await import('./s3/store.ts');
    return (policy) => createS3Store(policy.store);
  },
  'vercel-blob': async () => {
    const { createVercelBlobStore } = await import('./vercel-blob/store.ts');
    return (policy) => createVercelBlobStore(policy.store);
  },
  dynamodb: async () => {
    const { createDynamoTokensStore } = await import('./dynamodb/store.ts');
    return (policy) => createDynamoTokensStore(policy.store);
  },
  postgres: async () => {
    const [{ createPostgresRowsStore }, { createPostgresTokensStore }] = await Promise.all([import('./postgres/rows.ts'), import('./postgres/tokens.ts')]);
    return (policy) =>
      policy.class === 'rows'
        ? createPostgresRowsStore(policy, { blobStoreFor: (store) => createStore({ ...policy, class: 'blobs', store } as PolicyConfig) })
        : createPostgresTokensStore(policy as PostgresTokensConfig);
  },
} satisfies { [K in StoreKind]: () => Promise<Factory<K>> };

/**
 * The CLI opens every store before running any policy and the engine opens it again at run start,
 * with the run's deadline: each store checks its backend once (S3: one listing under its prefix; a
 * billed Vercel Blob list call) and takes the deadline on every call. A failed check is not
 * remembered, so the next call checks again.
 */
export async function createStore(policy: PolicyConfig): Promise<Store> {
  const factory = (await loaders[policy.store.kind]()) as (policy: PolicyConfig) => Store;
  return factory(policy);
}
