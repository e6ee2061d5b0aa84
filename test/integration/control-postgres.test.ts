import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION } from '../../lib/control/postgres/migrations.ts';
import { PostgresControlStore } from '../../lib/control/postgres/store.ts';
import type { AuditIntent } from '../../lib/core/control.ts';
import { ConfigError, ControlStoreError, SqlError } from '../../lib/errors.ts';
import { createSqlClient, defaultDriver, type SqlClient, type SqlDriver } from '../../lib/sql/client.ts';
import { type NeonProxy, routeNeonThroughProxy, startNeonProxy } from '../support/neonProxy.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres.ts';
import { controlStoreContract } from './control-contract.ts';

let server: TestPostgres;
let proxy: NeonProxy;

beforeAll(async () => {
  [server, proxy] = await Promise.all([startTestPostgres(), startNeonProxy()]);
  routeNeonThroughProxy(proxy);
});
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

for (const driver of ['pg', 'neon'] as const) {
  controlStoreContract(`PostgreSQL via ${driver}`, async () => {
    const sql = createSqlClient({ url: await server.createDatabase(`contract_${driver}`), driver });
    const store = new PostgresControlStore(sql);
    return { store, teardown: () => store.close() };
  });
}

describe.each(['pg', 'neon'] as const)('PostgreSQL specifics via %s', (driver: SqlDriver) => {
  let url: string;
  beforeAll(async () => {
    url = await server.createDatabase(`specifics_${driver}`);
  });

  it('migrates a fresh database from two processes at once, once', async () => {
    const clients = [createSqlClient({ url, driver }), createSqlClient({ url, driver })];
    try {
      await Promise.all(clients.map((sql) => new PostgresControlStore(sql).migrate()));
      const versions = await clients[0]!.query<{ version: number }>(
        'SELECT version FROM retention.schema_migrations ORDER BY version',
      );
      expect(versions.map((row) => row.version).at(-1)).toBe(LATEST_SCHEMA_VERSION);
      expect(new Set(versions.map((row) => row.version)).size).toBe(versions.length);
    } finally {
      await Promise.all(clients.map((sql) => sql.close()));
    }
  });

  it('writes and resolves 10,000 intents in one round trip each', async () => {
    const counted = countingClient(createSqlClient({ url, driver }));
    const store = new PostgresControlStore(counted.client);
    try {
      await store.migrate();
      const intents: AuditIntent[] = Array.from({ length: 10_000 }, (_, i) => ({
        runId: 'bulk-run',
        policy: 'bulk',
        store: 'fs:/data',
        key: `k${i}`,
        itemTimestamp: new Date(Date.UTC(2024, 0, 1, 0, 0, i % 60)),
        size: i,
        rule: 'retention: 1d',
        cutoff: new Date('2024-06-01T00:00:00Z'),
        actor: 'test',
        trigger: 'manual',
        action: 'delete',
      }));
      counted.statements = 0;
      await store.recordIntents(intents);
      await store.resolveIntents(
        'bulk-run',
        intents.map((intent) => ({ key: intent.key, status: 'deleted' as const })),
      );
      expect(counted.statements).toBe(2);
      expect(await store.pendingIntents('bulk')).toEqual([]);
      const [newest] = await store.audit({ runId: 'bulk-run', limit: 1 });
      expect(newest).toMatchObject({ key: 'k9999', size: 9999, status: 'deleted' });
    } finally {
      await store.close();
    }
  });

  it('adds 10,000 holds in one statement, ids in input order', async () => {
    const counted = countingClient(createSqlClient({ url, driver }));
    const store = new PostgresControlStore(counted.client);
    try {
      await store.migrate();
      const holds = Array.from({ length: 10_000 }, (_, i) => ({
        policy: i === 0 ? null : 'bulk-holds',
        key: `k${i}`,
        prefix: i % 2 === 0,
        reason: 'r',
        createdBy: 'test',
      }));
      counted.statements = 0;
      const added = await store.addHolds(holds);
      expect(counted.statements).toBe(1);
      expect(added.map((hold) => hold.key)).toEqual(holds.map((hold) => hold.key));
      expect(added.map((hold) => hold.id)).toEqual(Array.from({ length: 10_000 }, (_, i) => added[0]!.id + i));
      expect(added[0]).toMatchObject({ policy: null, prefix: true });
    } finally {
      await store.close();
    }
  });

  it('refuses a zero lease ttl', async () => {
    const store = new PostgresControlStore(createSqlClient({ url, driver }));
    try {
      await store.migrate();
      await expect(store.acquireLease('p', 'o', 0)).rejects.toBeInstanceOf(ControlStoreError);
    } finally {
      await store.close();
    }
  });

  it('wraps database errors with the driver, the statement and the SQLSTATE', async () => {
    const sql = createSqlClient({ url, driver });
    try {
      const failure = await sql
        .query('SELECT * FROM no_such_table WHERE id = $1', [1])
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(SqlError);
      expect((failure as SqlError).context).toMatchObject({
        driver,
        statement: 'SELECT * FROM no_such_table WHERE id = $1',
        sqlState: '42P01',
      });
      expect((failure as SqlError).cause).toBeInstanceOf(Error);

      const store = new PostgresControlStore(
        createSqlClient({ url: url.replace(/\/[^/]+$/, '/no_such_database'), driver }),
      );
      const controlFailure = await store.getLease('p').catch((error: unknown) => error);
      await store.close();
      expect(controlFailure).toBeInstanceOf(ControlStoreError);
      expect((controlFailure as ControlStoreError).context).toMatchObject({ operation: 'getLease', policy: 'p' });
      expect((controlFailure as ControlStoreError).cause).toBeInstanceOf(SqlError);
    } finally {
      await sql.close();
      await sql.close();
    }
  });

  it('reaches the server through the expected transport', async () => {
    const before = proxy.connections;
    const sql = createSqlClient({ url, driver });
    try {
      expect(sql.driver).toBe(driver);
      expect(await sql.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      expect(proxy.connections - before).toBe(driver === 'neon' ? 1 : 0);
    } finally {
      await sql.close();
    }
  });

  it('commits a transaction, and rolls it back when the callback throws', async () => {
    const sql = createSqlClient({ url, driver });
    try {
      await sql.query('CREATE TABLE IF NOT EXISTS tx_probe (value text)');
      await sql.transaction((tx) => tx.query('INSERT INTO tx_probe VALUES ($1)', ['kept']));
      const rollback = sql.transaction(async (tx) => {
        await tx.query('INSERT INTO tx_probe VALUES ($1)', ['discarded']);
        throw new Error('changed my mind');
      });
      await expect(rollback).rejects.toThrow('changed my mind');
      expect(await sql.query('SELECT value FROM tx_probe')).toEqual([{ value: 'kept' }]);
    } finally {
      await sql.close();
    }
  });
});

describe('driver choice', () => {
  it('uses Neon for *.neon.tech hosts and node-postgres otherwise', () => {
    expect(defaultDriver('postgres://u:p@ep-cool-1234.eu-central-1.aws.neon.tech/db?sslmode=require')).toBe('neon');
    expect(defaultDriver('postgres://u:p@127.0.0.1:5432/db')).toBe('pg');
    expect(defaultDriver('postgres://u:p@neon.tech.example.com/db')).toBe('pg');
  });

  it('rejects a malformed URL without echoing its password', () => {
    const failure = (() => {
      try {
        return defaultDriver('not a url with s3cret');
      } catch (error) {
        return error;
      }
    })();
    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).message).not.toContain('s3cret');
  });
});

/** Counts statements sent, to prove batch operations are one round trip. */
function countingClient(inner: SqlClient): { client: SqlClient; statements: number } {
  const counter = {
    statements: 0,
    client: {
      driver: inner.driver,
      query: (text: string, params?: unknown[]) => {
        counter.statements += 1;
        return inner.query(text, params);
      },
      transaction: inner.transaction.bind(inner),
      close: () => inner.close(),
    } as SqlClient,
  };
  return counter;
}
