import type { RetentionSpec } from '../../core/retention.ts';
import { createTableStore, type PostgresRowsStore, type RowsStoreDeps } from './rows.ts';
import type { PostgresTokensStoreConfig } from './schema.ts';

/**
 * The `tokens` data class in PostgreSQL: expired credentials (sessions, reset tokens, API keys)
 * in a table with an expiry column. It is the rows machinery with the expiry as the timestamp:
 * a token is eligible once `expires_at < now - grace`, the grace being the policy's retention.
 * A NULL expiry (never expires) is never eligible.
 */
export interface PostgresTokensConfig {
  name: string;
  /** The grace after expiry. */
  retention: RetentionSpec;
  store: PostgresTokensStoreConfig;
}

export function createPostgresTokensStore(
  config: PostgresTokensConfig,
  deps: Pick<RowsStoreDeps, 'sql'> = {},
): PostgresRowsStore {
  const { kind, url, driver, table, expiresAt, ...sweep } = config.store;
  return createTableStore(
    {
      name: config.name,
      retention: config.retention,
      store: { kind, url, ...(driver ? { driver } : {}) },
      table,
      timestamp: expiresAt,
      ...sweep,
    },
    deps,
    {
      // Errors name the fields where the operator wrote them: under `store`, the expiry as `expiresAt`.
      // (`retention.by` is a field of the policy itself.)
      path: (field) =>
        field === 'retention.by'
          ? field
          : `store.${field === 'timestamp' ? 'expiresAt' : field.replace(/^store\./, '')}`,
      // Copies of credentials would outlive their deletion.
      backups: false,
    },
  );
}
