import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSqlClient, type SqlClient } from '../../lib/sql/client.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.ts';

/**
 * The SQL client against a server that stops answering (through a TCP proxy that freezes): a
 * statement cut short, by its client-side timeout or by a run's deadline, never leaves the run
 * waiting on the connection it was sent on.
 */
let server: TestPostgres;
let proxy: TcpProxy;
let url: string;
const clients: SqlClient[] = [];

beforeAll(async () => {
  server = await startTestPostgres();
  const direct = new URL(await server.createDatabase('sql_client'));
  proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port) });
  direct.port = String(proxy.port);
  url = direct.toString();
});
afterEach(async () => {
  proxy.restore();
  await Promise.all(clients.splice(0).map((client) => client.close()));
});
afterAll(async () => {
  await proxy.stop();
  await server.stop();
});

function client(queryTimeoutMs?: number): SqlClient {
  const made = createSqlClient({ url, ...(queryTimeoutMs ? { queryTimeoutMs } : {}) });
  clients.push(made);
  return made;
}

describe('the SQL client on a frozen server', () => {
  it('a transaction whose statement timed out client-side destroys its connection, sending no ROLLBACK to queue behind it', async () => {
    const sql = client(1_000);
    await sql.query('SELECT 1');
    proxy.freeze();
    await expect(sql.transaction((tx) => tx.query('SELECT 1'))).rejects.toThrow(/BEGIN: Query read timeout/);
    expect(proxy.heldBack()).toContain('BEGIN');
    expect(proxy.heldBack()).not.toContain('ROLLBACK');
    // The pool works again once the server does: the broken connection was not pooled.
    proxy.restore();
    expect(await sql.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('a server error inside a transaction still rolls back, and the connection is pooled again', async () => {
    const sql = client();
    await expect(sql.transaction((tx) => tx.query('SELECT 1/0'))).rejects.toMatchObject({
      context: { sqlState: '22012' },
    });
    expect(await sql.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('withSignal: statements and transactions stop at the signal, not at their timeouts, and close does not wait', async () => {
    // The default client-side bound is 60 s and connecting 15 s: only the signal can end these in time.
    const sql = client();
    await sql.query('SELECT 1');
    proxy.freeze();
    const controller = new AbortController();
    const bound = sql.withSignal(controller.signal);
    const statement = bound.query('SELECT 1');
    const transaction = bound.transaction((tx) => tx.query('SELECT 2'));
    setTimeout(() => controller.abort(new Error("the run's deadline passed")), 300);
    await expect(statement).rejects.toThrow(/the run's deadline passed/);
    await expect(transaction).rejects.toThrow(/the run's deadline passed/);
    // Once aborted, nothing more is sent.
    await expect(bound.query('SELECT 3')).rejects.toThrow(/the run's deadline passed/);
    expect(proxy.heldBack()).not.toContain('SELECT 3');
    // A new connection's attempt is still pending on the frozen server: close does not wait for it.
    const closed = await Promise.race([
      sql.close().then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('waiting'), 5_000)),
    ]);
    expect(closed).toBe('closed');
  });
});
