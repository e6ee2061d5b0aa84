import type { ControlDescriptor } from '../../core/backend.ts';
import { type PostgresStoreConfig, PostgresStoreSchema } from '../../sql/schema.ts';

/**
 * PostgreSQL (Neon in the cloud): the default, so it also opens, and is granted, when the config
 * names no control store. That database's URL is then the `databaseUrl` secret
 * (`RETENTION_DATABASE_URL`; the CLI falls back to its embedded PostgreSQL). Its code: load.ts.
 */
export const postgresControl = {
  kind: 'postgres',
  schema: PostgresStoreSchema,
  deployment: {
    // A configured database is reached through the URL in the config, bundled with it. (Read-only
    // there would be a database role: the health function runs migrate() like the others.)
    grant: (config) => ({ statements: [], secrets: config ? [] : ['databaseUrl'] }),
  },
} satisfies ControlDescriptor<PostgresStoreConfig, undefined>;
