import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { BIN, runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

const shared = usePostgresAndScratch('retention-crash-');

/** A policy over `count` expired files, swept 10 at a time so a run lasts a few seconds. */
async function bulkPolicy(name: string, count: number) {
  const root = path.join(shared.scratch, name);
  await mkdir(root);
  await seedFiles(
    root,
    Array.from({ length: count }, (_, i) => ({
      key: `bulk/${String(i).padStart(5, '0')}.tmp`,
      mtime: new Date(Date.now() - 90 * 86_400_000),
    })),
  );
  const configPath = path.join(shared.scratch, `${name}.json`);
  await writeFile(
    configPath,
    JSON.stringify({
      policies: [
        {
          name: 'bulk',
          class: 'blobs',
          store: { kind: 'fs', root },
          retention: '30d',
          schedule: '0 * * * *',
          batchSize: 10,
          limits: { maxDeleteFraction: 1 },
        },
      ],
    }),
  );
  const env = {
    ...process.env,
    RETENTION_DATABASE_URL: await shared.server.createDatabase(name),
    RETENTION_LOG_LEVEL: 'info',
  };
  const remaining = async () => (await readdir(path.join(root, 'bulk'))).length;
  return { configPath, env, remaining };
}

/** Starts `retention run --json` and sends `signal` once it has deleted `batches` batches. */
async function signalAfterBatches(
  configPath: string,
  env: NodeJS.ProcessEnv,
  signal: NodeJS.Signals,
  batches: number,
): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, [BIN, '--config', configPath, 'run', '--json'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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

// kill -9 at random moments: crash-trials.test.ts.
describe('interrupted runs', () => {
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
