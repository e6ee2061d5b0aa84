import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION } from '../../lib/control/postgres/migrations.ts';
import { PostgresControlStore } from '../../lib/control/postgres/store.ts';
import type { AuditIntent } from '../../lib/core/control.ts';
import { ConfigError, ControlStoreError, SqlError } from '../../lib/errors.ts';
import { verifyAuditTrails } from '../../lib/reports/auditVerify.ts';
import {
  createSqlClient,
  defaultDriver,
  type SqlClient,
  type SqlDriver,
  type SqlExecutor,
} from '../../lib/sql/client.ts';
import { type NeonProxy, routeNeonThroughProxy, startNeonProxy } from '../support/neonProxy.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres.ts';
import { auditChainContract, type Tamper } from './chain-contract.ts';
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

auditChainContract('PostgreSQL', async () => {
  const sql = createSqlClient({ url: await server.createDatabase('chains') });
  const store = new PostgresControlStore(sql);
  await store.migrate();
  return { store, tamper: postgresTamper(sql), teardown: () => store.close() };
});

/** As the tables' owner: the append-only trigger disabled for the statements, as an intruder would. */
function postgresTamper(sql: SqlClient): Tamper {
  const asOwner = (table: string, statements: Array<[string, unknown[]]>) =>
    sql.transaction(async (tx) => {
      await tx.query(`ALTER TABLE retention.${table} DISABLE TRIGGER append_only`);
      for (const [text, params] of statements) await tx.query(text, params);
      await tx.query(`ALTER TABLE retention.${table} ENABLE ALWAYS TRIGGER append_only`);
    });
  return {
    editRecord: (id, key) => asOwner('audit', [['UPDATE retention.audit SET key = $2 WHERE id = $1', [id, key]]]),
    deleteRecord: (id) => asOwner('audit', [['DELETE FROM retention.audit WHERE id = $1', [id]]]),
    swapEntries: (chain, a, b) =>
      asOwner('audit_chain', [
        ['UPDATE retention.audit_chain SET seq = -1 WHERE chain = $1 AND seq = $2', [chain, a]],
        ['UPDATE retention.audit_chain SET seq = $2 WHERE chain = $1 AND seq = $3', [chain, a, b]],
        ['UPDATE retention.audit_chain SET seq = $2 WHERE chain = $1 AND seq = -1', [chain, b]],
      ]),
    deleteEntry: (chain, seq) =>
      asOwner('audit_chain', [['DELETE FROM retention.audit_chain WHERE chain = $1 AND seq = $2', [chain, seq]]]),
  };
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

  it('writes and resolves 10,000 intents in one transaction of a few statements each, chained', async () => {
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
      // Heads locked (ids and time drawn with them), then records, entry and head in one statement.
      await store.recordIntents(intents);
      expect(counted.statements).toBe(2);
      // Heads locked, records updated, entry and head: whatever the count.
      await store.resolveIntents(
        'bulk-run',
        intents.map((intent) => ({ key: intent.key, status: 'deleted' as const })),
      );
      expect(counted.statements).toBe(5);
      const [record, resolution] = await store.chains.entries('bulk', 1, 10);
      expect([record?.kind, record?.records.length, resolution?.kind, resolution?.records.length]).toEqual([
        'record',
        10_000,
        'resolve',
        10_000,
      ]);
      expect(await store.pendingIntents('bulk')).toEqual([]);
      const [newest] = await store.audit({ runId: 'bulk-run', limit: 1 });
      expect(newest).toMatchObject({ key: 'k9999', size: 9999, status: 'deleted' });
    } finally {
      await store.close();
    }
  });

  it('keeps the audit trail append-only: a record is only resolved, entries and heads never change', async () => {
    const sql = createSqlClient({ url, driver });
    const store = new PostgresControlStore(sql);
    try {
      await store.migrate();
      const intent = {
        runId: 'append-only',
        policy: 'append-only',
        store: 'fs:/data',
        itemTimestamp: new Date('2024-01-01T00:00:00Z'),
        rule: 'retention: 1d',
        cutoff: new Date('2024-06-01T00:00:00Z'),
        actor: 'test',
        trigger: 'manual' as const,
        action: 'delete' as const,
      };
      await store.recordIntents([
        { ...intent, key: 'a' },
        { ...intent, key: 'b' },
      ]);
      await store.resolveIntents('append-only', [{ key: 'a', status: 'deleted' }]);
      const refused = [
        "UPDATE retention.audit SET key = 'c' WHERE policy = 'append-only'",
        "UPDATE retention.audit SET status = 'kept' WHERE policy = 'append-only' AND key = 'a'",
        "DELETE FROM retention.audit WHERE policy = 'append-only' AND key = 'b'",
        'TRUNCATE retention.audit',
        "UPDATE retention.audit_chain SET kind = 'record' WHERE chain = 'append-only'",
        "DELETE FROM retention.audit_chain WHERE chain = 'append-only'",
        "UPDATE retention.audit_heads SET seq = 0 WHERE chain = 'append-only'",
        "DELETE FROM retention.audit_heads WHERE chain = 'append-only'",
        'DELETE FROM retention.audit_chain_start',
      ];
      for (const statement of refused) {
        await expect(sql.query(statement), statement).rejects.toThrow(/append-only|only moves forward/);
      }
      // Not even with ordinary triggers switched off, as replication does.
      const replica = sql.transaction(async (tx) => {
        await tx.query("SET LOCAL session_replication_role = 'replica'");
        await tx.query("DELETE FROM retention.audit WHERE policy = 'append-only'");
      });
      await expect(replica).rejects.toThrow(/append-only/);
      // A pending intent is still resolved, and the whole trail still verifies.
      await store.resolveIntents('append-only', [{ key: 'b', status: 'failed', error: 'EACCES' }]);
      expect((await verifyAuditTrails(store, [], { policies: ['append-only'] })).intact).toBe(true);
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
      transaction: <T>(fn: (tx: SqlExecutor) => Promise<T>) =>
        inner.transaction((tx) =>
          fn({
            query: (text: string, params?: unknown[]) => {
              counter.statements += 1;
              return tx.query(text, params);
            },
          }),
        ),
      close: () => inner.close(),
    } as SqlClient,
  };
  return counter;
}
