import type { ControlOpener, FallbackDatabase } from '../../core/backend.ts';
import { ConfigError } from '../../errors.ts';
import { createSqlClient } from '../../sql/client.ts';
import type { PostgresStoreConfig } from '../../sql/schema.ts';
import { PostgresControlStore } from './store.ts';

/**
 * The database of `control.url`, else `RETENTION_DATABASE_URL`, else the caller's fallback (the
 * CLI's embedded PostgreSQL); with none of them (Lambda without the URL secret), a ConfigError.
 */
export const openPostgresControl: ControlOpener<PostgresStoreConfig, undefined> = async (config, options) => {
  const url = config?.url ?? options.env.RETENTION_DATABASE_URL;
  let database: FallbackDatabase;
  if (url) database = { url, location: describeUrl(url), release: async () => undefined };
  else if (options.fallback) database = await options.fallback();
  else
    throw ConfigError.single(
      'control',
      'no control database configured',
      'set control.url in the config or RETENTION_DATABASE_URL',
    );

  const sql = createSqlClient({
    url: database.url,
    ...(config?.driver ? { driver: config.driver } : {}),
    ...(options.poolMax !== undefined ? { max: options.poolMax } : {}),
  });
  const control = new PostgresControlStore(sql);
  const close = async (): Promise<void> => {
    try {
      await control.close();
    } finally {
      await database.release();
    }
  };
  try {
    await control.migrate();
  } catch (error) {
    await close();
    throw error;
  }
  return { control, location: database.location, close };
};

function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `PostgreSQL at ${parsed.hostname}${parsed.port ? `:${parsed.port}` : ''}${parsed.pathname}`;
  } catch {
    return 'PostgreSQL (configured URL)';
  }
}
