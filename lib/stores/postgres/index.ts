import type { StoreDescriptor } from '../../core/backend.ts';
import { DatabaseTimeout } from '../../core/retention.ts';
import type { Store } from '../../core/store.ts';
import { type PostgresStoreConfig, PostgresStoreSchema } from '../../sql/schema.ts';
import { type PostgresTokensStoreConfig, postgresTokensStoreSchema, type RowsStoreConfig } from './schema.ts';
import type { PostgresTokensConfig } from './tokens.ts';

/** What the factory reads of a policy: a rows policy whole, a tokens policy's name, retention and store. */
type PostgresPolicy<Blob> = ({ class: 'rows' } & RowsStoreConfig<Blob>) | ({ class: 'tokens' } & PostgresTokensConfig);

/**
 * Rows of a table (the `rows` policy names the table and columns; `store` is the connection) and
 * expired tokens in a table (`store` names the connection and the table).
 */
export const postgresBackend = {
  kind: 'postgres',
  classes: {
    rows: { schema: PostgresStoreSchema },
    tokens: { schema: postgresTokensStoreSchema({ timeout: DatabaseTimeout }) },
  },
  load: async () => {
    const [{ createPostgresRowsStore }, { createPostgresTokensStore }] = await Promise.all([
      import('./rows.ts'),
      import('./tokens.ts'),
    ]);
    // A rows policy's linked files are in a blob store of the registry (`blob.store`).
    return <Blob>(policy: PostgresPolicy<Blob>, openLinked: (store: Blob) => Promise<Store>) =>
      policy.class === 'rows'
        ? createPostgresRowsStore(policy, { blobStoreFor: openLinked })
        : createPostgresTokensStore(policy);
  },
  deployment: {
    // The database URL is part of the store config, bundled with it; a backup is a copy table there.
    grant: () => ({ statements: [], secrets: [] }),
  },
} satisfies StoreDescriptor<PostgresStoreConfig | PostgresTokensStoreConfig>;
