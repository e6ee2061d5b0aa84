import type { StoreDescriptor } from '../../core/backend.ts';
import { DatabaseTimeout } from '../../core/retention.ts';
import { type PostgresStoreConfig, PostgresStoreSchema } from '../../sql/schema.ts';
import { type PostgresTokensStoreConfig, postgresTokensStoreSchema } from './schema.ts';

/**
 * Rows of a table (the `rows` policy names the table and columns; `store` is the connection) and
 * expired tokens in a table (`store` names the connection and the table). Each class has its own
 * loader (loadRows.ts, loadTokens.ts), so a tokens function carries no rows code.
 */
export const postgresBackend = {
  kind: 'postgres',
  classes: {
    rows: { schema: PostgresStoreSchema },
    tokens: { schema: postgresTokensStoreSchema({ timeout: DatabaseTimeout }) },
  },
  deployment: {
    // The database URL is part of the store config, bundled with it; a backup is a copy table there.
    grant: () => ({ statements: [], secrets: [] }),
  },
} satisfies StoreDescriptor<PostgresStoreConfig | PostgresTokensStoreConfig>;
