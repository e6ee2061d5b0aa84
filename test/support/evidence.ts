import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import { BIN, runCli, seedFiles } from './cli.ts';
import type { TestPostgres } from './postgres.ts';

/**
 * The trail the evidence tests (`audit verify`, `report`) read: on a fresh embedded home, three
 * policies whose items are all 90 days old: `files` (fs, with backups, so restores work), `bulk`
 * (fs) and `docs` (rows, deleted in one statement and audited in the rows database).
 */
export interface EvidenceSizes {
  files: number;
  bulk: number;
  /** Batch size of the two fs policies (docs: 4 rows). */
  batchSize: number;
}

export const OLD = new Date(Date.now() - 90 * 86_400_000);

export async function evidenceSetup(
  shared: { readonly server: TestPostgres; readonly scratch: string },
  home: string,
  sizes: EvidenceSizes,
) {
  const dir = (name: string) => path.join(shared.scratch, `${path.basename(home)}-${name}`);
  const [files, bulk, backups] = [dir('files'), dir('bulk'), dir('backups')];
  for (const directory of [files, bulk, backups]) await mkdir(directory);
  await seedFiles(
    files,
    Array.from({ length: sizes.files }, (_, i) => ({ key: `f${i}.pdf`, mtime: OLD })),
  );
  await seedFiles(
    bulk,
    Array.from({ length: sizes.bulk }, (_, i) => ({ key: `b${String(i).padStart(3, '0')}.tmp`, mtime: OLD })),
  );
  const rows = await shared.server.createDatabase('evidence_rows');
  const seed = new pg.Client({ connectionString: rows });
  await seed.connect();
  await seed.query('CREATE TABLE docs (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL)');
  await seed.query('CREATE INDEX ON docs (created_at, id)');
  await seed.query(`INSERT INTO docs (created_at) SELECT now() - interval '40 days' FROM generate_series(1, 9)`);
  await seed.end();
  // Daily at 02:00: no scheduled run falls due inside a test's period unless it runs then.
  const common = { schedule: '0 2 * * *', retention: '30d', limits: { maxDeleteFraction: 1 } };
  const config = path.join(shared.scratch, `${path.basename(home)}.json`);
  const fs = (name: string, root: string) => ({
    ...common,
    name,
    class: 'blobs',
    store: { kind: 'fs', root },
    batchSize: sizes.batchSize,
  });
  await writeFile(
    config,
    JSON.stringify({
      policies: [
        { ...fs('files', files), backup: { to: backups, keepFor: '30d' } },
        fs('bulk', bulk),
        {
          ...common,
          name: 'docs',
          class: 'rows',
          store: { kind: 'postgres', url: rows },
          table: 'public.docs',
          timestamp: 'created_at',
          batchSize: 4,
        },
      ],
    }),
  );
  const env = { RETENTION_HOME: home, RETENTION_DATABASE_URL: '', RETENTION_LEASE_TTL: '3s' };
  const cli = (...args: string[]) => runCli(['--config', config, ...args], { env });
  return { home, files, rows, config, env, cli };
}

/** `retention run --policy <p>`, SIGKILLed once it has deleted `batches` batches. */
export async function killAfterBatches(config: string, env: Record<string, string>, policy: string, batches: number) {
  const child = spawn(process.execPath, [BIN, '--config', config, 'run', '--policy', policy], {
    env: { ...process.env, RETENTION_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let seen = 0;
  child.stderr.on('data', (chunk: Buffer) => {
    seen += (chunk.toString().match(/"event":"batch_deleted"/g) ?? []).length;
    if (seen >= batches) child.kill('SIGKILL');
  });
  const signal = await new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  expect(signal).toBe('SIGKILL');
}
