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
  /** Ends the pool; idempotent. */
  close(): Promise<void>;
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

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    let connection: PgCompatibleConnection;
    try {
      connection = await this.pool.connect();
    } catch (error) {
      throw wrapSqlError(this.driver, 'connect', error);
    }
    // A checked-out connection that dies (the server restarted, the network dropped) emits
    // 'error' on itself, which crashes the process without a listener. The pending query
    // rejects with the cause as well; the listener only keeps the process alive to report it.
    let dropped: Error | undefined;
    const onError = (error: Error): void => {
      dropped = error;
    };
    connection.on('error', onError);
    const tx: SqlExecutor = {
      query: <R = Record<string, unknown>>(text: string, params?: unknown[]) =>
        runStatement<R>(connection, this.driver, text, params),
    };
    try {
      await tx.query('BEGIN');
      const result = await fn(tx);
      await tx.query('COMMIT');
      connection.off('error', onError);
      connection.release();
      return result;
    } catch (error) {
      // A connection that cannot even roll back is broken: destroy it rather than pool it.
      const rolledBack =
        dropped === undefined &&
        (await connection.query('ROLLBACK').then(
          () => true,
          () => false,
        ));
      connection.off('error', onError);
      connection.release(rolledBack ? undefined : (dropped ?? true));
      throw error;
    }
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end();
    return this.closing;
  }
}

async function runStatement<R>(
  target: PgCompatibleQueryable,
  driver: SqlDriver,
  text: string,
  params?: unknown[],
): Promise<R[]> {
  let result: { rows: unknown[] };
  try {
    result = await target.query(text, params);
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
