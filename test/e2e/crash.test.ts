import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/engine/types.ts';
import { BIN, runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';


const shared = usePostgresAndScratch('retention-crash-');

/** A policy over `count` expired files, swept 10 at a time so a run lasts a few seconds. */
async function bulkPolicy(name: string, count: number) {
  const root = path.join(shared.scratch, name);
  await mkdir(root);
  await seedFiles(root, Array.from({ length: count }, (_, i) => ({ key: `bulk/${String(i).padStart(5, '0')}.tmp`, mtime: new Date(Date.now() - 90 * 86_400_000) })));
  const configPath = path.join(shared.scratch, `${name}.json`);
  await writeFile(configPath, JSON.stringify({ policies: [{ name: 'bulk', class: 'blobs', store: { kind: 'fs', root }, retention: '30d', schedule: '0 * * * *', batchSize: 10, limits: { maxDeleteFraction: 1 } }] }));
  const env = { ...process.env, RETENTION_DATABASE_URL: await shared.server.createDatabase(name), RETENTION_LOG_LEVEL: 'info' };
  const remaining = async () => (await readdir(path.join(root, 'bulk'))).length;
  return { configPath, env, remaining };
}

/** Starts `retention run --json` and sends `signal` once it has deleted `batches` batches. */
async function signalAfterBatches(configPath: string, env: NodeJS.ProcessEnv, signal: NodeJS.Signals, batches: number): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, [BIN, '--config', configPath, 'run', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let seen = 0;
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    seen += (chunk.toString().match(/"event":"batch_deleted"/g) ?? []).length;
    if (seen >= batches && child.exitCode === null && !child.killed) child.kill(signal);
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  return { code, stdout };
}

describe('interrupted runs', () => {
  it('kill -9 loses no audit record: the next run resolves the pending intents and finishes the job', async () => {
    const count = 3000;
    const { configPath, env, remaining } = await bulkPolicy('killed', count);
    await signalAfterBatches(configPath, env, 'SIGKILL', 5);
    const left = await remaining();
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(count);

    // The dead run still holds its lease (it expires within a minute); an operator breaks it.
    const locked = await runCli(['--config', configPath, 'run', '--json'], { env });
    expect((JSON.parse(locked.stdout) as RunReport).status).toBe('skipped_locked');
    expect((await runCli(['--config', configPath, 'lease', 'break', 'bulk'], { env })).code).toBe(0);

    const resumed = await runCli(['--config', configPath, 'run', '--json'], { env });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((JSON.parse(resumed.stdout) as RunReport).status).toBe('completed');
    expect(await remaining()).toBe(0);

    const audit = await runCli(['--config', configPath, 'audit', '--policy', 'bulk', '--limit', '100000', '--json'], { env });
    const records = JSON.parse(audit.stdout) as Array<{ key: string; status: string }>;
    expect(records.filter((record) => record.status === 'pending')).toEqual([]);
    const deleted = records.filter((record) => record.status === 'deleted').map((record) => record.key);
    expect(deleted).toHaveLength(count);
    expect(new Set(deleted).size).toBe(count);
  });

  it('SIGTERM stops after the current batch: partial, lease released, the next run finishes', async () => {
    const count = 2000;
    const { configPath, env, remaining } = await bulkPolicy('terminated', count);
    const stopped = await signalAfterBatches(configPath, env, 'SIGTERM', 3);
    // Exit 4: stopped by a signal (a cron wrapper can tell it from success).
    expect(stopped.code).toBe(4);
    const report = JSON.parse(stopped.stdout) as RunReport;
    expect(report).toMatchObject({ status: 'partial', stopReason: 'signal' });
    expect(await remaining()).toBe(count - report.deleted);

    const next = await runCli(['--config', configPath, 'run', '--json'], { env });
    expect((JSON.parse(next.stdout) as RunReport).status).toBe('completed');
    expect(await remaining()).toBe(0);
  });
});
