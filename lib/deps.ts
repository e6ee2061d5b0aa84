import type { RetentionConfig } from './config/schema.ts';
import { PostgresControlStore } from './control/postgres/store.ts';
import type { ControlStore } from './core/control.ts';
import { systemClock } from './core/types.ts';
import { ConfigError } from './errors.ts';
import { createSqlClient } from './sql/client.ts';

/**
 * Opening the control store from the config, shared by the CLI and the Lambda handlers so both
 * reach the same state the same way. The store is migrated before it is handed out.
 */
export interface OpenedControlStore {
  control: ControlStore;
  /** Where it lives, for messages (`PostgreSQL at host:port/db`, `embedded PostgreSQL in …`). */
  location: string;
  /** Closes the store and releases whatever the fallback started. */
  close(): Promise<void>;
}

/** A database the caller provides when none is configured (the CLI's embedded PostgreSQL). */
export interface FallbackDatabase {
  url: string;
  location: string;
  release(): Promise<void>;
}

export interface ControlStoreOptions {
  /** `RETENTION_DATABASE_URL` is read from here when the config names no database. */
  env: NodeJS.ProcessEnv;
  /** Absent (Lambda): no database configured is a ConfigError. */
  fallback?: () => Promise<FallbackDatabase>;
  /** Connection pool size (a Lambda runs one invocation at a time). */
  poolMax?: number;
}

type ControlConfig = NonNullable<RetentionConfig['control']>;
type ControlKind = ControlConfig['kind'];
type Opener<K extends ControlKind> = (config: Extract<ControlConfig, { kind: K }> | undefined, options: ControlStoreOptions) => Promise<OpenedControlStore>;

/**
 * The one place where the control store kind is chosen (`config.control.kind`, PostgreSQL when
 * absent). A new backend is its module plus one line here; `satisfies` makes a missing kind a
 * type error.
 */
const openers = {
  postgres: openPostgres,
  dynamodb: openDynamo,
} satisfies { [K in ControlKind]: Opener<K> };

export async function openControlStore(config: RetentionConfig, options: ControlStoreOptions): Promise<OpenedControlStore> {
  const kind: ControlKind = config.control?.kind ?? 'postgres';
  const open = openers[kind] as Opener<ControlKind>;
  return open(config.control, options);
}

async function openPostgres(config: Extract<ControlConfig, { kind: 'postgres' }> | undefined, options: ControlStoreOptions): Promise<OpenedControlStore> {
  const url = config?.url ?? options.env.RETENTION_DATABASE_URL;
  let database: FallbackDatabase;
  if (url) database = { url, location: describeUrl(url), release: async () => undefined };
  else if (options.fallback) database = await options.fallback();
  else throw ConfigError.single('control', 'no control database configured', 'set control.url in the config or RETENTION_DATABASE_URL');

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
}

/** DynamoDB: no connection to hold, so nothing to fall back to; the SDK is loaded only here. */
async function openDynamo(config: Extract<ControlConfig, { kind: 'dynamodb' }> | undefined): Promise<OpenedControlStore> {
  if (!config) throw ConfigError.single('control', 'no DynamoDB table configured', 'set control.table');
  const [{ DynamoControlStore }, { dynamoClientFor }] = await Promise.all([import('./control/dynamodb/store.ts'), import('./aws/dynamo.ts')]);
  const control = new DynamoControlStore({ client: dynamoClientFor(config), table: config.table, clock: systemClock });
  await control.migrate();
  return { control, location: `DynamoDB table ${config.table}`, close: () => control.close() };
}

function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `PostgreSQL at ${parsed.hostname}${parsed.port ? `:${parsed.port}` : ''}${parsed.pathname}`;
  } catch {
    return 'PostgreSQL (configured URL)';
  }
}
