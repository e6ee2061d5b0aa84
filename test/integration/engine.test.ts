import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import type { PolicyConfig } from '../../lib/config/schema.ts';
import { PostgresControlStore } from '../../lib/control/postgres/store.ts';
import type { Store } from '../../lib/core/store.ts';
import { systemClock } from '../../lib/core/types.ts';
import type { RunDeps, RunOptions } from '../../lib/engine/options.ts';
import { restoreRun } from '../../lib/engine/restore.ts';
import { runPolicy } from '../../lib/engine/run.ts';
import { Logger } from '../../lib/observe/log.ts';
import { computeCutoffs } from '../../lib/policy/plan.ts';
import { createSqlClient } from '../../lib/sql/client.ts';
import { createFsStore, type FsStoreConfig } from '../../lib/stores/fs/store.ts';
import { seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * The engine in-process against real backends (a directory, PostgreSQL): the failure paths that
 * are awkward to reach through the CLI — a crash mid-batch, a lease taken over mid-run, restore.
 */
const DAY = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms);
let control: PostgresControlStore;
let root: string;
let logLines: Array<Record<string, unknown>>;

const shared = usePostgresAndScratch('retention-engine-');
beforeEach(async () => {
  control = new PostgresControlStore(createSqlClient({ url: await shared.server.createDatabase('engine') }));
  await control.migrate();
  root = await mkdtemp(path.join(shared.scratch, 'root-'));
  logLines = [];
});
afterEach(async () => {
  await control.close();
});

function policyWith(overrides: Record<string, unknown> = {}): PolicyConfig {
  const config = parseConfig({
    policies: [
      {
        name: 'files',
        class: 'blobs',
        store: { kind: 'fs', root },
        retention: '30d',
        schedule: '0 * * * *',
        limits: { maxDeleteFraction: 1 },
        ...overrides,
      },
    ],
  });
  return config.policies[0]!;
}

const fsStoreOf = (policy: PolicyConfig): Store => createFsStore(policy.store as FsStoreConfig);

const live: RunOptions = { trigger: 'manual', dryRun: false, force: false, list: true };

function deps(store: Store, extra: Partial<RunDeps> = {}): RunDeps {
  const log = new Logger({ sink: { write: (line) => logLines.push(JSON.parse(line)) }, level: 'debug' });
  return { control, store, clock: systemClock, log, actor: 'test:engine', ...extra };
}

async function files(): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}

describe('engine', () => {
  it("resolves a crashed run's pending intents from the store, then deletes what is left", async () => {
    const policy = policyWith();
    await seedFiles(root, [
      { key: 'gone.bin', mtime: ago(60 * DAY) },
      { key: 'still-here.bin', mtime: ago(60 * DAY) },
    ]);
    const intent = {
      policy: 'files',
      store: `fs:${root}`,
      rule: 'retention: 30d',
      cutoff: ago(30 * DAY),
      actor: 'test:crashed',
      trigger: 'scheduled' as const,
      action: 'delete' as const,
    };
    await control.recordIntents([
      { ...intent, runId: 'crashed-run', key: 'gone.bin', itemTimestamp: ago(60 * DAY) },
      { ...intent, runId: 'crashed-run', key: 'still-here.bin', itemTimestamp: ago(60 * DAY) },
    ]);
    await rm(path.join(root, 'gone.bin'));

    const report = await runPolicy(policy, live, deps(fsStoreOf(policy)));
    expect(report).toMatchObject({ status: 'completed', deleted: 1 });
    const crashed = await control.audit({ runId: 'crashed-run', limit: 10 });
    expect(Object.fromEntries(crashed.map((record) => [record.key, record.status]))).toEqual({
      'gone.bin': 'deleted',
      'still-here.bin': 'abandoned',
    });
    expect(
      (await control.audit({ runId: report.runId, limit: 10 })).map((record) => [record.key, record.status]),
    ).toEqual([['still-here.bin', 'deleted']]);
    expect(await control.pendingIntents('files')).toEqual([]);
    expect(logLines.find((line) => line.event === 'intents_recovered')).toMatchObject({ deleted: 1, abandoned: 1 });
  });

  it('a store failure mid-batch settles every intent of the batch by presence and fails the run', async () => {
    const policy = policyWith({ batchSize: 5 });
    await seedFiles(
      root,
      Array.from({ length: 5 }, (_, i) => ({ key: `f${i}.bin`, mtime: ago(60 * DAY) })),
    );
    const real = fsStoreOf(policy);
    const flaky: Store = {
      ...real,
      delete: async (items) => {
        await real.delete(items.slice(0, 2));
        throw new Error('connection reset by peer');
      },
    };
    const report = await runPolicy(policy, live, deps(flaky));
    expect(report.status).toBe('failed');
    expect(report.error?.message).toContain('connection reset');
    const records = await control.audit({ runId: report.runId, limit: 10 });
    expect(
      records
        .filter((record) => record.status === 'deleted')
        .map((record) => record.key)
        .sort(),
    ).toEqual(['f0.bin', 'f1.bin']);
    expect(records.filter((record) => record.status === 'abandoned')).toHaveLength(3);
    expect(await files()).toEqual(['f2.bin', 'f3.bin', 'f4.bin']);
    expect(logLines.find((line) => line.event === 'error')).toMatchObject({
      correlation_id: report.runId,
      policy: 'files',
    });
  });

  it('reports what a run leaves behind: failures as backlog and overdue, and a failure-rate SLA breach', async () => {
    const policy = policyWith();
    await seedFiles(root, [
      { key: 'stuck.bin', mtime: ago(90 * DAY) },
      { key: 'a.bin', mtime: ago(40 * DAY) },
      { key: 'b.bin', mtime: ago(40 * DAY) },
    ]);
    const real = fsStoreOf(policy);
    const stubborn: Store = {
      ...real,
      delete: async (items) => [
        ...(await real.delete(items.filter((item) => item.key !== 'stuck.bin'))),
        ...items
          .filter((item) => item.key === 'stuck.bin')
          .map((item) => ({ key: item.key, status: 'failed' as const, error: 'EACCES: permission denied' })),
      ],
    };
    const report = await runPolicy(policy, live, deps(stubborn));
    expect(report).toMatchObject({ status: 'completed', deleted: 2, failed: 1, backlog: 1 });
    expect(report.oldestOverdueSeconds).toBeGreaterThan(59 * 86_400);
    expect(report.sla.status).toBe('breach');
    expect(report.sla.reasons.some((reason) => reason.startsWith('failure_rate:'))).toBe(true);
    expect(report.sla.reasons.some((reason) => reason.startsWith('overdue:'))).toBe(true);
    const measured = await real.census({ cutoffs: computeCutoffs('30d', new Date(report.startedAt)), holds: [] });
    expect([measured.eligible, Math.round(measured.oldestOverdueSeconds)]).toEqual([
      report.backlog,
      Math.round(report.oldestOverdueSeconds!),
    ]);
  });

  it('stops before the next batch when its lease is taken over, deleting nothing more', async () => {
    const policy = policyWith({ batchSize: 3 });
    await seedFiles(
      root,
      Array.from({ length: 9 }, (_, i) => ({ key: `f${i}.bin`, mtime: ago(60 * DAY) })),
    );
    const real = fsStoreOf(policy);
    let scans = 0;
    // An operator (or a takeover after expiry) breaks the lease while the run is between batches.
    const racing: Store = {
      ...real,
      scan: async (query) => {
        scans += 1;
        if (scans === 2) await control.breakLease('files');
        return real.scan(query);
      },
    };
    const report = await runPolicy(policy, live, deps(racing));
    expect(report).toMatchObject({ status: 'partial', stopReason: 'lease_lost', deleted: 3 });
    expect(report.error?.message).toContain('stopped');
    expect(await files()).toHaveLength(6);
    expect(logLines.some((line) => line.event === 'lease_lost')).toBe(true);
    expect(await control.pendingIntents('files')).toEqual([]);
    // The second batch's intents were written, then the check before deleting refused: recorded as not done.
    const trail = await control.audit({ runId: report.runId, limit: 100 });
    expect(trail.filter((record) => record.status === 'deleted')).toHaveLength(3);
    expect(trail.filter((record) => record.status === 'abandoned')).toHaveLength(3);
  });

  it('maxDeletesPerRun bounds what a run deletes even when the census counted fewer (an estimate)', async () => {
    const policy = policyWith({ batchSize: 4, limits: { maxDeletesPerRun: 6, maxDeleteFraction: 1 } });
    await seedFiles(
      root,
      Array.from({ length: 20 }, (_, i) => ({ key: `f${String(i).padStart(2, '0')}.bin`, mtime: ago(60 * DAY) })),
    );
    const real = fsStoreOf(policy);
    // Like a rows census past its exact bound: it says 5 eligible, there are 20.
    const underCounting: Store = {
      ...real,
      census: async (query) => ({ ...(await real.census(query)), eligible: 5, exact: false }),
    };
    const report = await runPolicy(policy, live, deps(underCounting));
    expect(report).toMatchObject({ status: 'partial', stopReason: 'limit', deleted: 6 });
    expect(await files()).toHaveLength(14);
    expect(logLines.some((line) => line.event === 'limit_reached')).toBe(true);
    // The next run resumes where this one stopped and takes the next 6, never skipping any.
    const next = await runPolicy(policy, live, deps(underCounting));
    expect(next).toMatchObject({ status: 'partial', stopReason: 'limit', deleted: 6 });
    expect(await files()).toEqual(Array.from({ length: 8 }, (_, i) => `f${String(i + 12).padStart(2, '0')}.bin`));
    expect((await runPolicy(policy, { ...live, force: true }, deps(underCounting))).deleted).toBe(8);
  });

  it('a run that took over resolves the stalled run: the stalled one overwrites abandoned with what it did', async () => {
    const policy = policyWith({ batchSize: 5 });
    await seedFiles(
      root,
      Array.from({ length: 5 }, (_, i) => ({ key: `s${i}.bin`, mtime: ago(60 * DAY) })),
    );
    const real = fsStoreOf(policy);
    // While this run is inside its delete call, a takeover's recovery finds the files present.
    const stalling: Store = {
      ...real,
      delete: async (items, options) => {
        const pending = await control.pendingIntents('files');
        await control.resolveStaleIntents(pending.map((record) => ({ id: record.id, status: 'abandoned' as const })));
        return real.delete(items, options);
      },
    };
    const report = await runPolicy(policy, live, deps(stalling));
    expect(report.deleted).toBe(5);
    const trail = await control.audit({ runId: report.runId, limit: 100 });
    expect(trail.map((record) => record.status)).toEqual(Array(5).fill('deleted'));
  });

  it('a dry run needs no lease and lists exactly what the live run then deletes', async () => {
    const policy = policyWith();
    await seedFiles(root, [
      { key: 'old.bin', mtime: ago(60 * DAY) },
      { key: 'new.bin', mtime: ago(DAY) },
    ]);
    const holder = await control.acquireLease('files', 'someone-else', 60_000);
    const plan = await runPolicy(policy, { ...live, dryRun: true }, deps(fsStoreOf(policy)));
    expect(plan).toMatchObject({ status: 'completed', dryRun: true, deleted: 0 });
    expect(plan.items).toEqual([expect.objectContaining({ key: 'old.bin', outcome: 'would_delete' })]);
    expect((await runPolicy(policy, live, deps(fsStoreOf(policy)))).status).toBe('skipped_locked');
    await control.releaseLease(holder!);
    const run = await runPolicy(policy, live, deps(fsStoreOf(policy)));
    expect(run.items?.map((item) => [item.key, item.outcome])).toEqual([['old.bin', 'deleted']]);
    expect(await files()).toEqual(['new.bin']);
  });

  it('backs up before deleting, restores a run (holding restored items), and prunes old backups', async () => {
    const backups = path.join(shared.scratch, `backups-${Date.now()}`);
    const policy = policyWith({ backup: { to: backups, keepFor: '7d' } });
    const staleBackup = path.join(backups, 'files', 'old-run');
    await mkdir(staleBackup, { recursive: true });
    await utimes(staleBackup, ago(30 * DAY), ago(30 * DAY));
    await seedFiles(root, [
      { key: 'reports/q1.pdf', mtime: ago(60 * DAY), content: 'Q1 figures' },
      { key: 'reports/q2.pdf', mtime: ago(45 * DAY), content: 'Q2 figures' },
    ]);
    const run = await runPolicy(policy, live, deps(fsStoreOf(policy)));
    expect(run).toMatchObject({ status: 'completed', deleted: 2 });
    expect(await files()).toEqual([]);
    expect(existsSync(path.join(backups, 'files', run.runId, 'reports', 'q1.pdf'))).toBe(true);
    expect(existsSync(staleBackup)).toBe(false);

    const summary = await restoreRun(
      { runId: run.runId, keys: ['reports/q1.pdf'] },
      {
        control,
        policies: [policy],
        storeFor: async (p) => fsStoreOf(p),
        actor: 'test:operator',
        log: new Logger({ sink: { write: () => undefined } }),
      },
    );
    expect(summary.outcomes).toEqual([{ key: 'reports/q1.pdf', status: 'restored' }]);
    expect(await files()).toEqual(['reports/q1.pdf']);
    const trail = await control.audit({ key: 'reports/q1.pdf', limit: 10 });
    expect(trail.map((record) => [record.action, record.status]).sort()).toEqual([
      ['delete', 'deleted'],
      ['restore', 'restored'],
    ]);

    const again = await runPolicy(policy, live, deps(fsStoreOf(policy)));
    expect(again).toMatchObject({ deleted: 0, held: 1 });
    expect(await files()).toEqual(['reports/q1.pdf']);
  });

  it('restores a large run in chunks, auditing and holding each chunk with one call', async () => {
    const policy = policyWith({ backup: { to: path.join(shared.scratch, `backups-${Date.now()}`), keepFor: '7d' } });
    const runId = 'large-run';
    await control.startRun({ runId, policy: 'files', dryRun: false, startedAt: ago(DAY) });
    const keys = Array.from({ length: 2_500 }, (_, i) => `k${i}`);
    const deletion = {
      runId,
      policy: 'files',
      store: `fs:${root}`,
      itemTimestamp: ago(60 * DAY),
      rule: 'retention: 30d',
      cutoff: ago(30 * DAY),
      actor: 'test',
      trigger: 'manual' as const,
    };
    await control.recordEvents(
      keys.map((key) => ({ ...deletion, key, action: 'delete' as const, status: 'deleted' as const })),
    );
    const calls: number[] = [];
    // Backups are the fs store's business (tested above); here only the calls' sizes matter.
    const files = fsStoreOf(policy);
    const store: Store = {
      ...files,
      backups: {
        ...files.backups!,
        restore: async (_ref, chunk) => {
          calls.push(chunk.length);
          return chunk.map((key) => ({ key, status: key === 'k1' ? ('exists' as const) : ('restored' as const) }));
        },
      },
    };
    const addHolds = vi.spyOn(control, 'addHolds');

    const summary = await restoreRun(
      { runId },
      {
        control,
        policies: [policy],
        storeFor: async () => store,
        actor: 'test:operator',
        log: new Logger({ sink: { write: () => undefined } }),
      },
    );
    expect(calls).toEqual([1_000, 1_000, 500]);
    expect(addHolds).toHaveBeenCalledTimes(3);
    expect(summary.outcomes.map((outcome) => outcome.key).sort()).toEqual([...keys].sort());
    const holds = await control.listHolds('files');
    expect(holds.map((hold) => hold.key).sort()).toEqual(keys.filter((key) => key !== 'k1').sort());
    expect(holds[0]).toMatchObject({
      policy: 'files',
      prefix: false,
      reason: `restored from run ${runId}; remove this hold to let retention apply again`,
      createdBy: 'test:operator',
    });
    const restores = (await control.audit({ runId, limit: 10_000 })).filter((record) => record.action === 'restore');
    expect(restores).toHaveLength(2_499);
  });

  it('holds what it restores before restoring it: a failure after the restore leaves the items held', async () => {
    const policy = policyWith({
      name: 'held-first',
      backup: { to: path.join(shared.scratch, `backups-${Date.now()}`), keepFor: '7d' },
    });
    const runId = 'interrupted-restore';
    await control.startRun({ runId, policy: 'held-first', dryRun: false, startedAt: ago(DAY) });
    const deletion = {
      runId,
      policy: 'held-first',
      store: `fs:${root}`,
      itemTimestamp: ago(60 * DAY),
      rule: 'retention: 30d',
      cutoff: ago(30 * DAY),
      actor: 'test',
      trigger: 'manual' as const,
    };
    await control.recordEvents(
      ['a', 'b'].map((key) => ({ ...deletion, key, action: 'delete' as const, status: 'deleted' as const })),
    );
    const files = fsStoreOf(policy);
    const store: Store = {
      ...files,
      backups: {
        ...files.backups!,
        restore: async (_ref, chunk) => chunk.map((key) => ({ key, status: 'restored' as const })),
      },
    };
    vi.spyOn(control, 'recordEvents').mockRejectedValueOnce(new Error('control store unreachable'));

    await expect(
      restoreRun(
        { runId },
        {
          control,
          policies: [policy],
          storeFor: async () => store,
          actor: 'test:operator',
          log: new Logger({ sink: { write: () => undefined } }),
        },
      ),
    ).rejects.toThrow('control store unreachable');
    expect(
      (await control.listHolds('held-first'))
        .filter((hold) => hold.policy === 'held-first')
        .map((hold) => hold.key)
        .sort(),
    ).toEqual(['a', 'b']);
  });
});
