import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { runCli, seedFiles, startCli } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * A stop stops (invariant 8) and the record stays true (invariant 2), through the CLI: a pause and
 * a lease break reach a run in flight before its next batch, and a holder stalled past its lease
 * (SIGSTOP) wakes up to find it gone, while the run that took over finishes the job. Whatever
 * happened, each deleted file has exactly one `deleted` record, and restores bring back everything.
 */
const shared = usePostgresAndScratch('retention-stops-');
const DAY = 86_400_000;

interface AuditEntry {
  key: string;
  status: string;
  runId: string;
}

async function bulkPolicy(
  name: string,
  count: number,
  extra: Record<string, unknown> = {},
  env: Record<string, string> = {},
) {
  const root = path.join(shared.scratch, name, 'root');
  await mkdir(root, { recursive: true });
  await seedFiles(
    root,
    Array.from({ length: count }, (_, i) => ({
      key: `d${i % 10}/${String(i).padStart(6, '0')}.tmp`,
      mtime: new Date(Date.now() - 90 * DAY),
    })),
  );
  const configPath = path.join(shared.scratch, name, 'retention.json');
  const policy = {
    name: 'bulk',
    class: 'blobs',
    store: { kind: 'fs', root },
    retention: '30d',
    schedule: '0 * * * *',
    batchSize: 10,
    limits: { maxDeleteFraction: 1, maxDeletesPerRun: 1_000_000 },
    ...extra,
  };
  await writeFile(configPath, JSON.stringify({ policies: [policy] }));
  const fullEnv = { RETENTION_DATABASE_URL: await shared.server.createDatabase(name), ...env };
  const cli = (...args: string[]) => runCli(['--config', configPath, ...args], { env: fullEnv });
  const start = (...args: string[]) => startCli(['--config', configPath, ...args], fullEnv);
  const remaining = async () =>
    (await readdir(root, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).length;
  const audit = async (): Promise<AuditEntry[]> => {
    const result = await cli('audit', '--policy', 'bulk', '--limit', '1000000', '--json');
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as AuditEntry[];
  };
  /** Later runs (finishing the job) need not be slow: bigger batches. */
  const setBatchSize = (batchSize: number) =>
    writeFile(configPath, JSON.stringify({ policies: [{ ...policy, batchSize }] }));
  return { root, cli, start, remaining, audit, setBatchSize };
}

/** Every file that is gone has exactly one `deleted` record; nothing is left pending. */
function expectOneDeletedRecordPerFile(records: AuditEntry[], gone: number): void {
  expect(records.filter((record) => record.status === 'pending')).toEqual([]);
  const deleted = records.filter((record) => record.status === 'deleted').map((record) => record.key);
  expect(new Set(deleted).size).toBe(deleted.length);
  expect(deleted).toHaveLength(gone);
}

function reportOf(stdout: string): RunReport {
  return JSON.parse(stdout) as RunReport;
}

describe('a stop stops', () => {
  it('pause --all reaches a run in flight before its next batch: exit 4, partial, at most one batch after the pause returned', async () => {
    const count = 6000;
    const bulk = await bulkPolicy('paused', count);
    const run = bulk.start('run', '--json');
    await run.afterBatches(5);
    const paused = await bulk.cli('pause', '--all', '--reason', 'incident 42');
    expect(paused.code, paused.stderr).toBe(0);
    const leftWhenPauseReturned = await bulk.remaining();
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(4);
    const report = reportOf(ended.stdout);
    expect(report).toMatchObject({ status: 'partial', stopReason: 'paused' });
    expect(report.error?.message).toContain('resume with: retention resume --all');
    const left = await bulk.remaining();
    expect(leftWhenPauseReturned).toBeGreaterThan(0);
    // The batch whose check passed just before the pause may finish; nothing after it.
    expect(leftWhenPauseReturned - left).toBeLessThanOrEqual(10);
    expect(left).toBe(count - report.deleted);
    expectOneDeletedRecordPerFile(await bulk.audit(), count - left);

    // Paused runs do not start; after resume, the next run finishes the job.
    expect(reportOf((await bulk.cli('run', '--json')).stdout).status).toBe('skipped_paused');
    expect((await bulk.cli('resume', '--all')).code).toBe(0);
    await bulk.setBatchSize(1000);
    const next = await bulk.cli('run', '--json');
    expect(next.code, next.stderr).toBe(0);
    expect(report.deleted + reportOf(next.stdout).deleted).toBe(count);
    expect(await bulk.remaining()).toBe(0);
    expectOneDeletedRecordPerFile(await bulk.audit(), count);
  });

  it('lease break stops the holder before its next batch; the next run finishes; totals equal what is gone', async () => {
    const count = 6000;
    const bulk = await bulkPolicy('broken', count);
    const run = bulk.start('run', '--json');
    await run.afterBatches(5);
    expect((await bulk.cli('lease', 'break', 'bulk')).code).toBe(0);
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(4);
    const first = reportOf(ended.stdout);
    expect(first).toMatchObject({ status: 'partial', stopReason: 'lease_lost' });
    await bulk.setBatchSize(1000);
    const next = await bulk.cli('run', '--json');
    expect(next.code, next.stderr).toBe(0);
    const second = reportOf(next.stdout);
    expect(second.status).toBe('completed');
    expect(await bulk.remaining()).toBe(0);
    expect(first.deleted + second.deleted).toBe(count);
    expectOneDeletedRecordPerFile(await bulk.audit(), count);
  });

  it('a holder stalled past its lease (SIGSTOP) stops on waking; the audit equals what is gone and restores bring back everything', async () => {
    const count = 3000;
    const bulk = await bulkPolicy(
      'stalled',
      count,
      { backup: { to: path.join(shared.scratch, 'stalled', 'backup'), keepFor: '30d' } },
      { RETENTION_LEASE_TTL: '3s' },
    );
    const stalled = bulk.start('run', '--json');
    await stalled.afterBatches(10);
    process.kill(stalled.pid, 'SIGSTOP');
    try {
      // Past the 3 s lease: the next run takes over, recovers the stalled run's intents and finishes.
      await sleep(3_500);
      await bulk.setBatchSize(500);
      const takeover = await bulk.cli('run', '--json');
      expect(takeover.code, takeover.stderr).toBe(0);
      expect(reportOf(takeover.stdout).status).toBe('completed');
    } finally {
      process.kill(stalled.pid, 'SIGCONT');
    }
    const ended = await stalled.exited;
    expect(ended.code, ended.stderr).toBe(4);
    const first = reportOf(ended.stdout);
    expect(first).toMatchObject({ status: 'partial', stopReason: 'lease_lost' });
    expect(await bulk.remaining()).toBe(0);
    const records = await bulk.audit();
    expectOneDeletedRecordPerFile(records, count);

    // Every deleted file comes back from the backup of the run that deleted it.
    const runs = [...new Set(records.filter((record) => record.status === 'deleted').map((record) => record.runId))];
    for (const runId of runs) {
      const restored = await bulk.cli('restore', '--run', runId, '--json');
      expect(restored.code, restored.stderr).toBe(0);
    }
    expect(await bulk.remaining()).toBe(count);
  });

  it('a pause stops a rows run between one-statement batches (the check rides on the fenced checkpoint)', async () => {
    const count = 20_000;
    const url = await shared.server.createDatabase('events');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const rowsLeft = async () =>
      Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n);
    try {
      await client.query('CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL)');
      await client.query('CREATE INDEX events_created_at ON events (created_at, id)');
      await client.query(
        `INSERT INTO events (created_at) SELECT now() - interval '90 days' FROM generate_series(1, ${count})`,
      );
      const dir = path.join(shared.scratch, 'rows-paused');
      await mkdir(dir, { recursive: true });
      const configPath = path.join(dir, 'retention.json');
      const policy = {
        name: 'events',
        class: 'rows',
        store: { kind: 'postgres', url },
        table: 'events',
        timestamp: 'created_at',
        retention: '30d',
        schedule: '0 * * * *',
        batchSize: 20,
        limits: { maxDeleteFraction: 1, maxDeletesPerRun: 1_000_000 },
      };
      await writeFile(configPath, JSON.stringify({ policies: [policy] }));
      const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('events-control') };
      const run = startCli(['--config', configPath, 'run', '--json'], env);
      await run.afterBatches(5);
      const paused = await runCli(['--config', configPath, 'pause', '--policy', 'events'], { env });
      expect(paused.code, paused.stderr).toBe(0);
      const leftWhenPauseReturned = await rowsLeft();
      const ended = await run.exited;
      expect(ended.code, ended.stderr).toBe(4);
      const report = reportOf(ended.stdout);
      expect(report).toMatchObject({ status: 'partial', stopReason: 'paused' });
      const left = await rowsLeft();
      expect(leftWhenPauseReturned).toBeGreaterThan(0);
      expect(leftWhenPauseReturned - left).toBeLessThanOrEqual(20);
      expect(left).toBe(count - report.deleted);
      const audit = await runCli(
        ['--config', configPath, 'audit', '--policy', 'events', '--limit', '1000000', '--json'],
        { env },
      );
      const deleted = (JSON.parse(audit.stdout) as AuditEntry[]).filter((record) => record.status === 'deleted');
      expect(deleted).toHaveLength(report.deleted);
    } finally {
      await client.end();
    }
  });
});
