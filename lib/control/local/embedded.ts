import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ConfigError, ControlStoreError, describeCause } from '../../errors.ts';
import {
  assertServerCanReach,
  blockedDirectory,
  ensurePostgresUser,
  type RunAs,
  SERVER_USER,
  serverDirectoryOutsideHome,
} from './asRoot.ts';
import { initdb, pgCtl, SUPERUSER, writeDurably } from './cluster.ts';
import { postmasterOf, startedOrReady, untilStopped } from './postmaster.ts';
import { anyLiveClient, registerClient, withProcessLock } from './processCoordination.ts';

/**
 * The embedded default control database: one PostgreSQL server per $RETENTION_HOME, shared by
 * every CLI process using that home, started by the first and stopped by the last.
 *
 * Invariants: start/stop decisions happen only under the home's lock; the server is stopped
 * only when no live process is registered as a client; nothing a killed process leaves behind
 * (stale postmaster.pid, client entries, lock) can wedge the next start; a commit (an audit
 * record) survives an OS crash. The server runs detached under `pg_ctl`, so it outlives the
 * process that started it. Where the server's files live (the home, or as root a directory the
 * `postgres` user can reach: asRoot.ts) is decided once per home and recorded there.
 */
export interface EmbeddedControlDatabase {
  url: string;
  /** Said once, to the process that decided it: where the server's files went, and why. */
  notice?: string;
  /** Unregisters this client; stops the server when no live client remains. Idempotent. */
  release(): Promise<void>;
}

export function retentionHome(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  return path.resolve(cwd, env.RETENTION_HOME ?? './.retention');
}

const DATABASE = 'retention';
const READY_TIMEOUT_MS = 30_000;
const START_ATTEMPTS = 3;
/** Test suite only: `off` trades the durability of the audit trail for speed. */
export const FSYNC_VARIABLE = 'RETENTION_EMBEDDED_FSYNC';

type Layout = ReturnType<typeof layoutOf>;

/** `serverDir`: where the data directory and the log are; the home's `pg` unless recorded in `serverDirRecord`. */
function layoutOf(home: string, serverDir = path.join(home, 'pg')) {
  const root = path.join(home, 'pg');
  const at = (name: string) => path.join(root, name);
  const server = { serverDir, data: path.join(serverDir, 'data'), log: path.join(serverDir, 'postgres.log') };
  // `initialised` is written after initdb succeeded: a data directory without it is a failed init, redone.
  // `port`: where the server listened last; reused while free, so URLs printed earlier (the demo
  // config, an operator's notes) keep working after the server stopped and started again.
  const own = { password: at('password'), clients: at('clients'), lock: at('lock'), initialised: at('initialised') };
  return { home, root, ...server, ...own, port: at('port'), serverDirRecord: at('server-dir') };
}

/**
 * fsync, synchronous_commit and full_page_writes are on (and passed explicitly, so no config
 * file can turn them off): the audit record of a deletion that happened must survive an OS
 * crash. `RETENTION_EMBEDDED_FSYNC=off` turns fsync, full_page_writes and initdb's sync off, for
 * the test suite (vitest.config.ts) and nothing else. synchronous_commit stays on even then: off,
 * a kill -9 of the server (which crash tests do) would lose commits, not only an OS crash.
 * The process that starts the shared server decides.
 */
function durableFrom(env: NodeJS.ProcessEnv): boolean {
  const value = env[FSYNC_VARIABLE];
  if (value === undefined || value === '' || value === 'on') return true;
  if (value === 'off') return false;
  const fix = 'unset it: off is for the test suite only';
  throw ConfigError.single(FSYNC_VARIABLE, `"${value.slice(0, 40)}" is neither on nor off`, fix);
}

function durabilityOptions(durable: boolean): string {
  const onlyInTests = ['fsync', 'full_page_writes'].map((setting) => `-c ${setting}=${durable ? 'on' : 'off'}`);
  return ['-c synchronous_commit=on', ...onlyInTests].join(' ');
}

export async function acquireEmbeddedPostgres(
  home: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<EmbeddedControlDatabase> {
  const homeLayout = layoutOf(path.resolve(home));
  const durable = durableFrom(env);
  const asRoot = process.getuid?.() === 0;
  await mkdir(homeLayout.root, { recursive: true, mode: 0o755 });
  const runAs = (): Promise<RunAs> => (asRoot ? ensurePostgresUser(homeLayout.home) : Promise.resolve(null));

  // Only file operations and, for the first process, the start happen under the lock: with a
  // hundred CLIs starting at once, every millisecond in it is paid a hundred times.
  const { layout, notice, port, client } = await withProcessLock(homeLayout.lock, async () => {
    const { layout, notice } = await placeServerFiles(homeLayout, asRoot, runAs);
    let running = (await postmasterOf(layout))?.port ?? null;
    if (running === null) {
      const user = await runAs();
      if (user) await assertServerCanReach(layout.home, layout.data, user);
      await initialiseOnce(layout, user, durable);
      running = await startServer(layout, user, durable);
      await createDatabaseIfMissing(layout, running);
    }
    return { layout, notice, port: running, client: await registerClient(layout.clients) };
  });
  let released: Promise<void> | undefined;
  const release = () => (released ??= releaseClient(layout, client, runAs));
  try {
    // Registered, so nobody stops it meanwhile; a server recovering from a crash takes a while.
    await waitUntilAccepting(layout, port);
    const url = `postgres://${SUPERUSER}:${await readPassword(layout)}@127.0.0.1:${port}/${DATABASE}`;
    return { url, release, ...(notice ? { notice } : {}) };
  } catch (error) {
    await release();
    throw error;
  }
}

/**
 * Where the server's files live, decided once per home, under its lock: in the home, or (as root,
 * when the server user cannot traverse the home and no cluster was initialised there) in a
 * directory of their own it can reach, recorded in the home so every later process finds it. The
 * operator's directories are never made more permissive.
 */
async function placeServerFiles(
  home: Layout,
  asRoot: boolean,
  runAs: () => Promise<RunAs>,
): Promise<{ layout: Layout; notice?: string }> {
  const recorded = (await readFile(home.serverDirRecord, 'utf8').catch(absentAs(''))).trim();
  if (recorded !== '') return { layout: layoutOf(home.home, recorded) };
  const user = asRoot && !(await exists(home.initialised)) ? await runAs() : null;
  // Not `pg` itself: it is ours, and made traversable below.
  const blocked = user ? await blockedDirectory(home.home, user) : null;
  if (user && blocked !== null) {
    const serverDir = await serverDirectoryOutsideHome(home.home, user);
    await writeDurably(home.serverDirRecord, `${serverDir}\n`);
    const why = `it runs as user "${SERVER_USER}", which cannot traverse ${blocked}`;
    const notice = `the embedded PostgreSQL keeps its data in ${serverDir}: ${why} (recorded in ${home.serverDirRecord})`;
    return { layout: layoutOf(home.home, serverDir), notice };
  }
  // Our own directory: the server user must reach the data directory through here (0700 under a
  // umask of 077 would not do).
  await chmod(home.root, 0o755);
  return { layout: home };
}

async function releaseClient(layout: Layout, client: string, runAs: () => Promise<RunAs>): Promise<void> {
  await withProcessLock(layout.lock, async () => {
    await rm(client, { force: true });
    if (await anyLiveClient(layout.clients)) return;
    const server = await postmasterOf(layout);
    if (server === null) return;
    // Not `-w`: pg_ctl looks every 100 ms, and the server is usually gone after a few; every CLI run pays this.
    await pgCtl(layout, ['stop', '-W', '-D', layout.data, '-m', 'fast'], await runAs());
    await untilStopped(layout, server.pid);
  });
}

async function initialiseOnce(layout: Layout, runAs: RunAs, durable: boolean): Promise<void> {
  if (await exists(layout.initialised)) return;
  await rm(layout.data, { recursive: true, force: true }); // what an interrupted initdb left
  const password = randomBytes(24).toString('hex');
  await writeDurably(layout.password, password, 0o600);
  try {
    await initdb(layout, password, runAs, durable);
  } catch (error) {
    throw new ControlStoreError(
      `could not initialise the embedded PostgreSQL in ${layout.data}: ${describeCause(error)}`,
      { home: layout.home },
      { cause: error },
    );
  }
  await writeDurably(layout.initialised, `${new Date().toISOString()}\n`);
}

async function startServer(layout: Layout, runAs: RunAs, durable: boolean): Promise<number> {
  for (let attempt = 1; ; attempt += 1) {
    const previous = attempt === 1 ? await previousPort(layout) : undefined;
    const port = previous !== undefined && (await isFree(previous)) ? previous : await freePort();
    // Keep the previous server's log (a crash is diagnosed from it), and only that one.
    await rename(layout.log, `${layout.log}.1`).catch(() => undefined);
    await writeFile(layout.log, '');
    if (runAs) await chown(layout.log, runAs.uid, runAs.gid);
    // No Unix socket: clients use TCP, and a socket path under a deep home can exceed 107 bytes.
    const listen = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`;
    const serverOptions = `${listen} ${durabilityOptions(durable)}`;
    try {
      await startedOrReady(
        layout,
        pgCtl(layout, ['start', '-w', '-t', '60', '-D', layout.data, '-l', layout.log, '-o', serverOptions], runAs),
      );
      if (port !== previous) await writeFile(layout.port, `${port}\n`);
      return port;
    } catch (error) {
      // The port may have been taken meanwhile, or a killed server's last backends may still
      // hold its shared memory for a moment: both pass when retried.
      if (attempt >= START_ATTEMPTS) throw error;
      await sleep(500 * attempt);
    }
  }
}

async function createDatabaseIfMissing(layout: Layout, port: number): Promise<void> {
  await withAdminConnection(layout, port, async (admin) => {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (found.rowCount === 0) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(DATABASE)}`);
  });
}

/** A server that is starting or recovering from a crash refuses connections for a while. */
async function waitUntilAccepting(layout: Layout, port: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      await withAdminConnection(layout, port, (admin) => admin.query('SELECT 1'));
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new ControlStoreError(
          `the embedded PostgreSQL of ${layout.home} runs but does not accept connections on port ${port}: ${describeCause(error)} (see ${layout.log})`,
          { home: layout.home, port },
          { cause: error },
        );
      }
      await sleep(100);
    }
  }
}

async function withAdminConnection<T>(layout: Layout, port: number, use: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({
    host: '127.0.0.1',
    port,
    user: SUPERUSER,
    password: await readPassword(layout),
    database: 'postgres',
    connectionTimeoutMillis: 5_000,
  });
  admin.on('error', () => undefined); // a server going away mid-check surfaces through the query instead
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.end().catch(() => undefined);
  }
}

async function readPassword(layout: Layout): Promise<string> {
  try {
    return (await readFile(layout.password, 'utf8')).trim();
  } catch (error) {
    throw new ControlStoreError(
      `the embedded PostgreSQL's password file ${layout.password} is unreadable: ${describeCause(error)} (delete ${layout.root} to start afresh)`,
      { home: layout.home },
      { cause: error },
    );
  }
}

const exists = (file: string): Promise<boolean> =>
  stat(file).then(
    () => true,
    () => false,
  );

/** A file that is missing reads as `value`; any other failure (EACCES, EIO) is not an absence. */
function absentAs<T>(value: T): (error: NodeJS.ErrnoException) => T {
  return (error) => {
    if (error.code === 'ENOENT') return value;
    throw error;
  };
}

async function previousPort(layout: Layout): Promise<number | undefined> {
  const saved = Number((await readFile(layout.port, 'utf8').catch(() => '')).trim());
  return Number.isInteger(saved) && saved > 0 && saved < 65_536 ? saved : undefined;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no free port')),
      );
    });
  });
}
