import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { runCli, seedFiles, startCli } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.ts';

/**
 * Faults end runs cleanly (issue 11): a rows database that drops its connections mid-sweep or
 * freezes ends the run `failed` with the real cause, a report, history closed and the lease
 * released, and a run whose process dies is closed as `crashed` by the next run.
 */
const shared = usePostgresAndScratch('retention-faults-');
let proxy: TcpProxy | undefined;
afterEach(async () => {
  await proxy?.stop();
  proxy = undefined;
});

/** A table of `count` expired events reached through a TCP proxy, and a control database reached directly. */
async function eventsThroughProxy(
  name: string,
  count: number,
  policyExtra: Record<string, unknown> = {},
  extraEnv: Record<string, string> = {},
) {
  const url = await shared.server.createDatabase(name);
  const direct = new URL(url);
  proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port) });
  const proxied = new URL(url);
  proxied.port = String(proxy.port);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL)');
  await client.query('CREATE INDEX events_created_at ON events (created_at, id)');
  await client.query(
    `INSERT INTO events (created_at) SELECT now() - interval '90 days' FROM generate_series(1, ${count})`,
  );
  const dir = path.join(shared.scratch, name);
  await mkdir(dir, { recursive: true });
  const configPath = path.join(dir, 'retention.json');
  const policy = {
    name: 'events',
    class: 'rows',
    store: { kind: 'postgres', url: proxied.toString() },
    table: 'events',
    timestamp: 'created_at',
    retention: '30d',
    schedule: '0 * * * *',
    batchSize: 20,
    limits: { maxDeleteFraction: 1, maxDeletesPerRun: 1_000_000 },
    ...policyExtra,
  };
  await writeFile(configPath, JSON.stringify({ policies: [policy] }));
  const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase(`${name}-control`), ...extraEnv };
  const cli = (...args: string[]) => runCli(['--config', configPath, ...args], { env });
  const start = (...args: string[]) => startCli(['--config', configPath, ...args], env);
  const history = async () =>
    JSON.parse((await cli('history', '--policy', 'events', '--json')).stdout) as Array<{
      runId: string;
      status: string;
    }>;
  return { client, cli, start, history, proxy };
}

describe('faults end runs cleanly', () => {
  it('a rows database dropping its connections mid-sweep: failed with the cause, a report, history closed, lease released', async () => {
    const events = await eventsThroughProxy('dropped', 20_000);
    try {
      const run = events.start('run', '--json');
      await run.afterBatches(5);
      events.proxy.cut();
      const ended = await run.exited;
      expect(ended.signal).toBeNull();
      expect(ended.code, ended.stderr).toBe(1);
      const report = JSON.parse(ended.stdout) as RunReport;
      expect(report.status).toBe('failed');
      expect(report.error?.message).toMatch(/terminated|ECONNRESET|ECONNREFUSED|Connection/i);
      expect((await events.history()).find((run) => run.runId === report.runId)?.status).toBe('failed');

      // The database is back: the next run is not locked out, and finishes the job.
      events.proxy.restore();
      const next = await events.cli('run', '--json');
      expect(next.code, next.stderr).toBe(0);
      expect((JSON.parse(next.stdout) as RunReport).status).toBe('completed');
      expect(Number((await events.client.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n)).toBe(0);
    } finally {
      await events.client.end();
    }
  });

  it('a frozen rows database costs at most the budget plus one timeout, and leaves nothing running', async () => {
    // The run's deadline: budget 5 s + one request timeout 3 s. The client-side bound on each
    // statement (statement timeout 2 s + 5 s) ends the statement in flight first; the reads after
    // it (the audit chain's head) are cut by the deadline.
    const events = await eventsThroughProxy(
      'frozen',
      20_000,
      { statementTimeout: '2s' },
      { RETENTION_REQUEST_TIMEOUT: '3s' },
    );
    try {
      const started = Date.now();
      const run = events.start('run', '--json', '--budget', '5s');
      await run.afterBatches(3);
      events.proxy.freeze();
      const ended = await run.exited;
      const elapsedMs = Date.now() - started;
      // The deadline (8 s), plus process start and exit (several seconds on a loaded 2-core
      // machine). Without the bounds it hangs for good; before the deadline bound SQL, 30 s.
      expect(elapsedMs).toBeLessThan(5_000 + 3_000 + 15_000);
      expect(ended.code, ended.stderr).toBe(1);
      const report = JSON.parse(ended.stdout) as RunReport;
      expect(report.status).toBe('failed');
      expect(report.error?.message).toMatch(/timeout/i);
      expect((await events.history()).find((run) => run.runId === report.runId)?.status).toBe('failed');
      events.proxy.restore();
      const next = await events.cli('run', '--json');
      expect((JSON.parse(next.stdout) as RunReport).status).toBe('completed');
    } finally {
      await events.client.end();
    }
  });

  it('a run whose process died is closed as crashed by the next run', async () => {
    const events = await eventsThroughProxy('killed', 20_000);
    try {
      const run = events.start('run', '--json');
      await run.afterBatches(3);
      process.kill(run.pid, 'SIGKILL');
      await run.exited;
      const [dead] = await events.history();
      expect(dead?.status).toBe('running');
      expect((await events.cli('lease', 'break', 'events')).code).toBe(0);
      const next = await events.cli('run', '--json');
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toContain('"event":"crashed_runs_closed"');
      expect((await events.history()).find((run) => run.runId === dead!.runId)?.status).toBe('crashed');
    } finally {
      await events.client.end();
    }
  });

  it('the control database dropping mid-run: the run still prints its report with the first cause, exit 1', async () => {
    const count = 6_000;
    const root = path.join(shared.scratch, 'control-dropped', 'root');
    await mkdir(root, { recursive: true });
    await seedFiles(
      root,
      Array.from({ length: count }, (_, i) => ({
        key: `f/${String(i).padStart(5, '0')}.tmp`,
        mtime: new Date(Date.now() - 90 * 86_400_000),
      })),
    );
    const controlUrl = new URL(await shared.server.createDatabase('control-dropped'));
    proxy = await startTcpProxy({ host: controlUrl.hostname, port: Number(controlUrl.port) });
    controlUrl.port = String(proxy.port);
    const configPath = path.join(shared.scratch, 'control-dropped', 'retention.json');
    await writeFile(
      configPath,
      JSON.stringify({
        policies: [
          {
            name: 'files',
            class: 'blobs',
            store: { kind: 'fs', root },
            retention: '30d',
            schedule: '0 * * * *',
            batchSize: 10,
            limits: { maxDeleteFraction: 1, maxDeletesPerRun: 1_000_000 },
          },
        ],
      }),
    );
    const run = startCli(['--config', configPath, 'run', '--json'], { RETENTION_DATABASE_URL: controlUrl.toString() });
    await run.afterBatches(5);
    proxy.cut();
    const ended = await run.exited;
    expect(ended.signal).toBeNull();
    expect(ended.code, ended.stderr).toBe(1);
    const report = JSON.parse(ended.stdout) as RunReport;
    expect(report.status).toBe('failed');
    // The first failure is reported, not the lease release or history write that failed after it.
    expect(report.error?.message).toMatch(
      /control store \(pg\): \w+ failed: .*(terminated|ECONNRESET|ECONNREFUSED|Connection)/i,
    );
    expect(ended.stderr).toContain('"event":"history_write_failed"');
  });
});
