import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireEmbeddedPostgres, type EmbeddedControlDatabase } from '../../lib/control/local/embedded.ts';
import { PostgresControlStore } from '../../lib/control/postgres/store.ts';
import type { RunRecord } from '../../lib/core/control.ts';
import { tookItsTurn } from '../../lib/daemon/due.ts';
import { createSqlClient } from '../../lib/sql/client.ts';
import { BIN, logLines, runCli, seedFiles } from '../support/cli.ts';
import { createHome, removeHome } from '../support/embeddedHome.ts';
import { startSentryIngest } from '../support/sentryIngest.ts';

/**
 * `retention daemon` as an operator runs it: child processes on one embedded $RETENTION_HOME,
 * every-minute schedules. The catch-up at start makes runs happen without waiting for a minute:
 * each policy's history says it last ran an hour ago (its host was down since).
 */
let home: string;
let scratch: string;
let embedded: EmbeddedControlDatabase;
let control: PostgresControlStore;

beforeAll(async () => {
  [home, scratch] = await Promise.all([
    createHome('retention-daemon-'),
    mkdtemp(path.join(os.tmpdir(), 'retention-daemon-data-')),
  ]);
  // Held by the test for the whole file: the daemons connect to a running server instead of each starting one.
  embedded = await acquireEmbeddedPostgres(home);
  control = new PostgresControlStore(createSqlClient({ url: embedded.url }));
  await control.migrate();
});

afterAll(async () => {
  await control?.close();
  await embedded?.release();
  if (home) await removeHome(home);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const DAY = 86_400_000;
// Quick retries of a lease held by the other daemon (a quarter of the TTL).
const env = (extra: Record<string, string> = {}) => ({
  ...process.env,
  RETENTION_HOME: home,
  RETENTION_LOG_LEVEL: 'info',
  RETENTION_LEASE_TTL: '4s',
  ...extra,
});

/** An every-minute fs policy over `old` expired files and one young one, last run an hour ago. */
async function missedPolicy(name: string, old: number, batchSize = 100): Promise<{ config: string; root: string }> {
  const root = path.join(scratch, name);
  await mkdir(root);
  const expired = Array.from({ length: old }, (_, i) => ({
    key: `old/${String(i).padStart(5, '0')}.tmp`,
    mtime: new Date(Date.now() - 90 * DAY),
  }));
  await seedFiles(root, [...expired, { key: 'young.tmp', mtime: new Date() }]);
  const config = path.join(scratch, `${name}.json`);
  const policy = {
    name,
    class: 'blobs',
    store: { kind: 'fs', root },
    retention: '30d',
    schedule: '* * * * *',
    batchSize,
    limits: { maxDeleteFraction: 1 },
  };
  await writeFile(config, JSON.stringify({ policies: [policy] }));
  await control.startRun({
    runId: `${name}-before-the-outage`,
    policy: name,
    dryRun: false,
    startedAt: new Date(Date.now() - 3_600_000),
  });
  return { config, root };
}

/** A daemon in a child process whose JSON log lines the test follows. */
function startDaemon(config: string, extraEnv: Record<string, string> = {}, flags: string[] = []) {
  const child = spawn(process.execPath, [BIN, 'daemon', '--config', config, ...flags], {
    env: env(extraEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const events = (name: string) => logLines(stderr).filter((line) => line.event === name);
  return {
    events,
    stderr: () => stderr,
    stdout: () => stdout,
    /** Polls the log (a daemon's work takes seconds: no timing is asserted, only waited for). */
    async until(what: string, done: () => boolean): Promise<void> {
      for (let waited = 0; !done(); waited += 100) {
        if (child.exitCode !== null || waited > 50_000) throw new Error(`daemon: no ${what}; its log:\n${stderr}`);
        await sleep(100);
      }
    },
    async stop(): Promise<number | null> {
      child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    },
    kill: (signal: NodeJS.Signals) => child.kill(signal),
    exited,
  };
}

const liveRuns = async (policy: string): Promise<RunRecord[]> =>
  (await control.listRuns({ policy, limit: 100 })).filter((run) => !run.runId.endsWith('-before-the-outage'));
const minuteOf = (instant: Date): string => instant.toISOString().slice(0, 16);

describe('retention daemon', () => {
  it('two daemons on one home: the missed run happens once, with one Sentry check-in', async () => {
    const { config, root } = await missedPolicy('minutely', 30);
    const ingest = await startSentryIngest();
    try {
      const daemons = [
        startDaemon(config, { SENTRY_DSN: ingest.dsn }),
        startDaemon(config, { SENTRY_DSN: ingest.dsn }),
      ];
      // Each daemon has decided on every run it scheduled: ran it, or found it had already run.
      const settled = (d: (typeof daemons)[number]) =>
        d.events('daemon_started').length === 1 &&
        d.events('run_scheduled').length === d.events('run_finished').length + d.events('run_skipped').length;
      for (const d of daemons) await d.until('decision', () => settled(d));
      await daemons[0]!.until('catch-up run', () => daemons.some((d) => d.events('run_finished').length > 0));
      expect(await Promise.all(daemons.map((d) => d.stop()))).toEqual([0, 0]);

      // A minute may have begun meanwhile (its run is then due too): one run per tick, never two.
      const runs = await liveRuns('minutely');
      expect(runs.length).toBeGreaterThanOrEqual(1);
      expect(runs.every(tookItsTurn)).toBe(true);
      expect(new Set(runs.map((run) => minuteOf(run.startedAt))).size).toBe(runs.length);
      expect(runs.map((run) => run.report?.trigger)).toEqual(runs.map(() => 'scheduled'));
      expect(runs.reduce((sum, run) => sum + (run.report?.deleted ?? 0), 0)).toBe(30);
      expect(await readdir(path.join(root, 'old'))).toEqual([]);
      expect(await readdir(root)).toContain('young.tmp');
      const finished = daemons.flatMap((d) => d.events('run_finished'));
      expect(finished.map((line) => line.run_id).sort()).toEqual(runs.map((run) => run.runId).sort());

      const checkIns = ingest.checkIns().filter((checkIn) => checkIn.monitor_slug === 'minutely');
      expect(checkIns.filter((checkIn) => checkIn.status === 'in_progress')).toHaveLength(runs.length);
      expect(checkIns.filter((checkIn) => checkIn.status === 'ok')).toHaveLength(runs.length);
    } finally {
      await ingest.stop();
    }
  });

  it('SIGTERM mid-run: the run ends partial after its batch, the lease is released, exit 0', async () => {
    const count = 2000;
    const { config, root } = await missedPolicy('bulk', count, 10);
    const status = await runCli(['--config', config, 'status', '--json'], { env: env() });
    const [row] = (JSON.parse(status.stdout) as { policies: Array<{ dueSince: string | null }> }).policies;
    expect(row!.dueSince).not.toBeNull();

    const daemon = startDaemon(config);
    await daemon.until('third batch', () => daemon.events('batch_deleted').length >= 3);
    expect(await daemon.stop()).toBe(0);

    const [run] = await liveRuns('bulk');
    expect(run).toMatchObject({ status: 'partial', report: { stopReason: 'signal', trigger: 'scheduled' } });
    expect((await readdir(path.join(root, 'old'))).length).toBe(count - run!.report!.deleted);
    const lease = await control.getLease('bulk');
    expect(lease!.expiresAt.getTime()).toBeLessThanOrEqual(Date.now());
    expect(daemon.events('daemon_stopped')).toHaveLength(1);
  });

  it('daemon --port serves the REST API beside the scheduler; without a token it refuses to start (exit 2)', async () => {
    const { config } = await missedPolicy('served', 3);
    const refused = await runCli(['--config', config, 'daemon', '--port', '0'], { env: env() });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('RETENTION_API_TOKEN');

    const token = 'operator-token-for-the-daemon-test';
    const daemon = startDaemon(config, { RETENTION_API_TOKEN: token }, ['--port', '0']);
    await daemon.until('dashboard address', () => /dashboard: (http:\/\/\S+)\//.test(daemon.stdout()));
    const url = /dashboard: (http:\/\/\S+)\//.exec(daemon.stdout())![1]!;
    await daemon.until('catch-up run', () => daemon.events('run_finished').length > 0);
    const answer = await fetch(`${url}/api/policies`, { headers: { authorization: `Bearer ${token}` } });
    expect(answer.status).toBe(200);
    expect(JSON.stringify(await answer.json())).toContain('"served"');
    expect((await fetch(`${url}/api/policies`)).status).toBe(401);
    expect(await daemon.stop()).toBe(0);
  });

  it('daemon --port on a port in use: exit 2 before the scheduler runs anything', async () => {
    const { config } = await missedPolicy('portless', 3);
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = String((taken.address() as AddressInfo).port);
      const env_ = env({ RETENTION_API_TOKEN: 'operator-token-for-the-daemon-test' });
      const result = await runCli(['--config', config, 'daemon', '--port', port], { env: env_ });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`port ${port} is in use`);
      // The policy was due (catch-up at start), yet nothing ran.
      expect(await liveRuns('portless')).toEqual([]);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
