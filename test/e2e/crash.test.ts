import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/engine/types.ts';
import { BIN, runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';


const shared = usePostgresAndScratch('retention-crash-');

describe('a run killed with kill -9', () => {
  it('loses no audit record: the next run resolves the pending intents and finishes the job', async () => {
    const root = path.join(shared.scratch, 'root');
    await mkdir(root);
    const count = 3000;
    await seedFiles(root, Array.from({ length: count }, (_, i) => ({ key: `bulk/${String(i).padStart(5, '0')}.tmp`, mtime: new Date(Date.now() - 90 * 86_400_000) })));
    const configPath = path.join(shared.scratch, 'retention.json');
    await writeFile(configPath, JSON.stringify({ policies: [{ name: 'bulk', class: 'blobs', store: { kind: 'fs', root }, retention: '30d', schedule: '0 * * * *', batchSize: 10, limits: { maxDeleteFraction: 1 } }] }));
    const env = { ...process.env, RETENTION_DATABASE_URL: await shared.server.createDatabase('crash'), RETENTION_LOG_LEVEL: 'info' };

    // Kill the run as soon as it has deleted a few batches.
    const victim = spawn(process.execPath, [BIN, '--config', configPath, 'run'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve) => {
      let batches = 0;
      victim.stderr.on('data', (chunk: Buffer) => {
        batches += (chunk.toString().match(/"event":"batch_deleted"/g) ?? []).length;
        if (batches >= 5 && victim.exitCode === null) {
          victim.kill('SIGKILL');
          resolve();
        }
      });
      victim.on('exit', () => resolve());
    });
    await new Promise((resolve) => victim.once('exit', resolve).exitCode !== null && resolve(undefined));
    const left = (await readdir(path.join(root, 'bulk'))).length;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(count);

    // The dead run still holds its lease (it expires within a minute); an operator breaks it.
    const locked = await runCli(['--config', configPath, 'run', '--json'], { env });
    expect((JSON.parse(locked.stdout) as RunReport).status).toBe('skipped_locked');
    expect((await runCli(['--config', configPath, 'lease', 'break', 'bulk'], { env })).code).toBe(0);

    const resumed = await runCli(['--config', configPath, 'run', '--json'], { env });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((JSON.parse(resumed.stdout) as RunReport).status).toBe('completed');
    expect(await readdir(path.join(root, 'bulk'))).toEqual([]);

    const audit = await runCli(['--config', configPath, 'audit', '--policy', 'bulk', '--limit', '100000', '--json'], { env });
    const records = JSON.parse(audit.stdout) as Array<{ key: string; status: string }>;
    expect(records.filter((record) => record.status === 'pending')).toEqual([]);
    const deleted = records.filter((record) => record.status === 'deleted').map((record) => record.key);
    expect(deleted).toHaveLength(count);
    expect(new Set(deleted).size).toBe(count);
  });
});
