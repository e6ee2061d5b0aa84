import { Pool as NeonPool, neonConfig } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import { ConfigError, describeCause, SqlError } from '../errors.ts';

/**
 * One small SQL interface over node-postgres and Neon's WebSocket driver. Both drivers are
 * pg-compatible pools, so one implementation serves both; only the pool constructor differs.
 * Values always travel as bound parameters; identifiers go through `identifiers.ts`.
 */
export interface SqlExecutor {
  /** Runs ONE statement with `$1…` parameters and returns its rows. */
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
}

export type SqlDriver = 'pg' | 'neon';

export interface SqlClient extends SqlExecutor {
  /** Runs `fn` in BEGIN … COMMIT on one connection; any throw rolls back and is rethrown. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` on one connection outside any transaction (VACUUM cannot run in one; SET applies
   * to the session). Settings `fn` changes must be RESET by it before it returns.
   */
  session<T>(fn: (connection: SqlExecutor) => Promise<T>): Promise<T>;
  /** Ends the pool; idempotent. */
  close(): Promise<void>;
  /**
   * The same pool, with every statement and transaction cut short once `signal` aborts (a run's
   * deadline): the call rejects with the signal's reason and its connection is destroyed, never
   * pooled again (a frozen server would keep it busy). Closing the view closes the pool.
   */
  withSignal(signal: AbortSignal | undefined): SqlClient;
  readonly driver: SqlDriver;
}

export interface SqlClientOptions {
  /** postgres:// URL. */
  url: string;
  /** Default: `neon` for a `*.neon.tech` host, else `pg`. */
  driver?: SqlDriver;
  /** Pool size (driver default: 10). */
  max?: number;
  /**
   * Client-side bound on every statement, for a server that stops answering (a statement
   * timeout cannot fire on a frozen server or a dropped network). Default 60 s; keep it above
   * any server-side statement_timeout the caller sets.
   */
  queryTimeoutMs?: number;
}

const DEFAULT_QUERY_TIMEOUT_MS = 60_000;
/** A server that does not accept a connection within this is reported, not waited for. */
const CONNECT_TIMEOUT_MS = 15_000;

/** The slice of a pg-compatible pool this module relies on. */
interface PgCompatibleQueryable {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}
interface PgCompatibleConnection extends PgCompatibleQueryable {
  /** `true` (or an Error) destroys the connection instead of returning it to the pool. */
  release(destroy?: Error | boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}
interface PgCompatiblePool extends PgCompatibleQueryable {
  connect(): Promise<PgCompatibleConnection>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}
type PoolConstructor = (config: {
  connectionString: string;
  max?: number;
  query_timeout: number;
  connectionTimeoutMillis: number;
}) => PgCompatiblePool;

const poolConstructors = {
  pg: (config) => new pg.Pool(config),
  neon: (config) => {
    useWsWhereWebSocketIsMissing();
    const proxy = process.env.RETENTION_NEON_WSPROXY;
    if (proxy) useLocalWsProxy(proxy);
    return new NeonPool(config);
  },
} satisfies Record<SqlDriver, PoolConstructor>;

export function createSqlClient(options: SqlClientOptions): SqlClient {
  const driver = options.driver ?? defaultDriver(options.url);
  const pool = poolConstructors[driver]({
    connectionString: options.url,
    ...(options.max !== undefined ? { max: options.max } : {}),
    query_timeout: options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  return new PooledSqlClient(driver, pool);
}

/** Neon's hosts get the Neon driver (WebSockets pass where raw TCP may not); everything else node-postgres. */
export function defaultDriver(url: string): SqlDriver {
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch (error) {
    // The URL carries a password: never echo it.
    throw new ConfigError(
      [{ path: 'control.url', message: 'is not a valid URL', fix: 'use postgres://user:password@host:port/database' }],
      {},
      { cause: error },
    );
  }
  return hostname.toLowerCase().endsWith('.neon.tech') ? 'neon' : 'pg';
}

/**
 * Sends the Neon driver through a self-hosted WebSocket proxy speaking Neon's wsproxy contract
 * (`ws://<address>?address=<host>:<port>`), e.g. in front of a local PostgreSQL for development:
 * `RETENTION_NEON_WSPROXY=127.0.0.1:4444/v1`. Plain ws:// to the proxy, TLS not pipelined, and no
 * pipelined connect (with SCRAM, a pipelined password fails against a real server).
 */
export function useLocalWsProxy(address: string): void {
  neonConfig.wsProxy = (host, port) => `${address}?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
}

/** Node 20 has no global WebSocket (Node 22, Lambda's runtime, has one); `ws` fills the gap. */
function useWsWhereWebSocketIsMissing(): void {
  if (neonConfig.webSocketConstructor === undefined && typeof globalThis.WebSocket === 'undefined') {
    neonConfig.webSocketConstructor = ws;
  }
}

class PooledSqlClient implements SqlClient {
  private closing: Promise<void> | undefined;
  /** Connection attempts not yet settled (see `close`). */
  private connecting = 0;

  constructor(
    readonly driver: SqlDriver,
    private readonly pool: PgCompatiblePool,
  ) {
    // An idle pooled connection that dies (server restart, Neon scaling to zero) is reported as
    // an 'error' event, which would crash the process without a listener. The pool has already
    // dropped that connection and the next query opens a new one, so there is nothing to do.
    pool.on('error', () => undefined);
  }

  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]> {
    return runStatement<R>(this.pool, this.driver, text, params);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.onConnection(undefined, async (tx) => {
      await tx.query('BEGIN');
      const result = await fn(tx);
      await tx.query('COMMIT');
      return result;
    });
  }

  session<T>(fn: (connection: SqlExecutor) => Promise<T>): Promise<T> {
    return this.onConnection(undefined, fn);
  }

  withSignal(signal: AbortSignal | undefined): SqlClient {
    if (!signal) return this;
    return {
      driver: this.driver,
      // One statement on a connection of its own, so that an abort can destroy it.
      query: <R = Record<string, unknown>>(text: string, params?: unknown[]) =>
        this.onConnection(signal, (tx) => tx.query<R>(text, params)),
      transaction: <T>(fn: (tx: SqlExecutor) => Promise<T>) =>
        this.onConnection(signal, async (tx) => {
          await tx.query('BEGIN');
          const result = await fn(tx);
          await tx.query('COMMIT');
          return result;
        }),
      session: <T>(fn: (connection: SqlExecutor) => Promise<T>) => this.onConnection(signal, fn),
      close: () => this.close(),
      withSignal: (other) => this.withSignal(other),
    };
  }

  /**
   * Runs `fn` on one checked-out connection. A failure the server answered (it has a SQLSTATE)
   * leaves the connection usable: it is rolled back and pooled again. A failure it did not answer
   * (a client-side timeout, a dropped connection, the signal) leaves a statement in flight that
   * any next statement would queue behind: the connection is destroyed instead, at once.
   */
  private async onConnection<T>(signal: AbortSignal | undefined, fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    if (signal?.aborted) throw wrapSqlError(this.driver, 'connect', signal.reason);
    let connection: PgCompatibleConnection;
    try {
      this.connecting += 1;
      const attempt = this.pool.connect().finally(() => {
        this.connecting -= 1;
      });
      connection = await untilAborted(attempt, signal, (late) => late.release());
    } catch (error) {
      throw wrapSqlError(this.driver, 'connect', error);
    }
    // A checked-out connection that dies (the server restarted, the network dropped) emits
    // 'error' on itself, which crashes the process without a listener. The pending query
    // rejects with the cause as well; the listener only keeps the process alive to report it.
    let broken: Error | boolean = false;
    const onError = (error: Error): void => {
      broken = error;
    };
    connection.on('error', onError);
    const tx: SqlExecutor = {
      query: async <R = Record<string, unknown>>(text: string, params?: unknown[]) => {
        try {
          return await runStatement<R>(connection, this.driver, text, params, signal);
        } catch (error) {
          if (!(error instanceof SqlError && error.context.sqlState)) broken ||= true;
          throw error;
        }
      },
    };
    try {
      const result = await fn(tx);
      connection.off('error', onError);
      connection.release();
      return result;
    } catch (error) {
      // A connection that cannot even roll back is broken: destroy it rather than pool it.
      const rolledBack =
        broken === false &&
        (await connection.query('ROLLBACK').then(
          () => true,
          () => false,
        ));
      connection.off('error', onError);
      connection.release(rolledBack ? undefined : broken || true);
      throw error;
    }
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end();
    if (this.connecting === 0) return this.closing;
    // An attempt still connecting at close was cut short by a deadline (a server that accepts
    // connections and then says nothing): it ends by its own connect timeout, not waited for.
    this.closing.catch(() => undefined);
    return Promise.resolve();
  }
}

/**
 * `pending`, or the signal's reason once it aborts, whichever comes first. A value that arrives
 * after the abort goes to `abandon` (a connection checked out too late is handed back).
 */
function untilAborted<T>(
  pending: Promise<T>,
  signal: AbortSignal | undefined,
  abandon?: (late: T) => void,
): Promise<T> {
  if (!signal) return pending;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) abandon?.(value);
        else resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

async function runStatement<R>(
  target: PgCompatibleQueryable,
  driver: SqlDriver,
  text: string,
  params?: unknown[],
  signal?: AbortSignal,
): Promise<R[]> {
  let result: { rows: unknown[] };
  try {
    if (signal?.aborted) throw signal.reason;
    result = await untilAborted(target.query(text, params), signal);
  } catch (error) {
    throw wrapSqlError(driver, statementExcerpt(text), error);
  }
  return result.rows as R[];
}

function wrapSqlError(driver: SqlDriver, statement: string, cause: unknown): SqlError {
  const code = (cause as { code?: unknown } | null)?.code;
  return new SqlError(
    `${driver}: ${statement}: ${describeCause(cause)}`,
    { driver, statement, ...(typeof code === 'string' ? { sqlState: code } : {}) },
    { cause },
  );
}

const STATEMENT_EXCERPT_CHARS = 60;

/** Enough of the statement to recognise it in a log line (parameters are never included). */
function statementExcerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= STATEMENT_EXCERPT_CHARS ? flat : `${flat.slice(0, STATEMENT_EXCERPT_CHARS)}…`;
}
