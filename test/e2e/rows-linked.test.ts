import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * Rows with linked files (`blob`), through the CLI as an operator drives them: holds on the file
 * path an operator sees, restores that bring rows and files back together, and a reason for
 * every row not deleted.
 */
const shared = usePostgresAndScratch('retention-rows-linked-');
const DAY = 86_400_000;

interface Documents {
  url: string;
  control: string;
  root: string;
  scratch: string;
  /** The documents policy, with overrides. */
  policy(overrides?: Record<string, unknown>): Record<string, unknown>;
  /** Writes a config with these policies and runs the CLI on it. */
  cliWith(policies: Array<Record<string, unknown>>, ...args: string[]): ReturnType<typeof runCli>;
  /** The CLI on a config of the documents policy (plus overrides). */
  cli(overrides: Record<string, unknown>, ...args: string[]): ReturnType<typeof runCli>;
  query<R extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<R[]>;
}

/** Rows 1..n of `documents`, each with its file `docs/d<id>.pdf`, both `ageDays` old (default 40 days). */
async function documents(
  count: number,
  ages: { rowDays?: number; fileDays?: Record<number, number> } = {},
): Promise<Documents> {
  const url = await shared.server.createDatabase('documents');
  const control = await shared.server.createDatabase('control');
  const scratch = path.join(shared.scratch, path.basename(new URL(url).pathname));
  const root = path.join(scratch, 'files');
  const query = async <R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<R>(text, params)).rows;
    } finally {
      await client.end();
    }
  };
  await query('CREATE TABLE documents (id bigint PRIMARY KEY, file_path text, created_at timestamptz NOT NULL)');
  await query('CREATE INDEX documents_created_at ON documents (created_at, id)');
  const ids = Array.from({ length: count }, (_, index) => index + 1);
  const rowAge = (ages.rowDays ?? 40) * DAY;
  await query(
    `INSERT INTO documents SELECT id, 'docs/d' || id || '.pdf', now() - make_interval(secs => $2::float8 / 1000) FROM unnest($1::bigint[]) AS id`,
    [ids, rowAge],
  );
  const now = Date.now();
  await seedFiles(
    root,
    ids.map((id) => ({
      key: `docs/d${id}.pdf`,
      mtime: new Date(now - (ages.fileDays?.[id] ?? ages.rowDays ?? 40) * DAY),
      content: `document ${id}`,
    })),
  );
  const policy = (overrides: Record<string, unknown> = {}) => ({
    name: 'documents',
    class: 'rows',
    schedule: '0 2 * * *',
    store: { kind: 'postgres', url },
    table: 'public.documents',
    timestamp: 'created_at',
    retention: '30d',
    blob: { column: 'file_path', store: { kind: 'fs', root } },
    limits: { maxDeleteFraction: 1 },
    ...overrides,
  });
  const cliWith = async (policies: Array<Record<string, unknown>>, ...args: string[]) => {
    const configPath = path.join(scratch, `config-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(configPath, JSON.stringify({ policies }));
    return runCli(['--config', configPath, ...args], { env: { RETENTION_DATABASE_URL: control } });
  };
  const cli = (overrides: Record<string, unknown>, ...args: string[]) => cliWith([policy(overrides)], ...args);
  return { url, control, root, scratch, policy, cliWith, cli, query };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function rowIds(docs: Documents): Promise<number[]> {
  return (await docs.query<{ id: string }>('SELECT id FROM documents ORDER BY id')).map((row) => Number(row.id));
}

describe('holds on rows with linked files', () => {
  it('a hold on the file path, a file prefix or the row key keeps the row and its file, counted held everywhere', async () => {
    const docs = await documents(6);
    for (const hold of [
      ['--key', 'docs/d3.pdf'],
      ['--prefix', 'docs/d4'],
      ['--key', '5'],
    ]) {
      const added = await docs.cli({}, 'hold', 'add', ...hold, '--reason', 'case 7');
      expect(added.code, added.stderr).toBe(0);
      expect(added.stderr).not.toContain('warning:');
    }

    const plan = await docs.cli({}, 'plan', '--list', '--json');
    expect(plan.code, plan.stderr).toBe(0);
    const planned = JSON.parse(plan.stdout) as RunReport;
    expect(planned).toMatchObject({ eligible: 6, held: 3 });
    const outcomes = (report: RunReport) => Object.fromEntries(report.items!.map((item) => [item.key, item.outcome]));
    expect(outcomes(planned)).toEqual({
      1: 'would_delete',
      2: 'would_delete',
      3: 'held',
      4: 'held',
      5: 'held',
      6: 'would_delete',
    });

    // The census counts held rows apart: with them counted eligible, 6 planned deletions would exceed 3.
    const run = await docs.cli({ limits: { maxDeletesPerRun: 3, maxDeleteFraction: 1 } }, 'run', '--list', '--json');
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as RunReport;
    expect(report).toMatchObject({ status: 'completed', deleted: 3, held: 3, failed: 0 });
    expect(report.notDeleted.filter((entry) => entry.outcome === 'held').map((entry) => entry.count)).toEqual([
      1, 1, 1,
    ]);
    expect(outcomes(report)).toEqual({ 1: 'deleted', 2: 'deleted', 3: 'held', 4: 'held', 5: 'held', 6: 'deleted' });
    expect(await rowIds(docs)).toEqual([3, 4, 5]);
    const present = await Promise.all([1, 2, 3, 4, 5, 6].map((id) => exists(path.join(docs.root, `docs/d${id}.pdf`))));
    expect(present).toEqual([false, false, true, true, true, false]);
  });

  it('hold add keeps a hold that matches nothing, and says so per policy in its scope (exit 0, also in --json)', async () => {
    const docs = await documents(2);
    // The same files governed twice: as rows with linked files, and as an fs policy of their own.
    const policies = [
      docs.policy(),
      {
        name: 'files',
        class: 'blobs',
        schedule: '0 3 * * *',
        retention: '30d',
        store: { kind: 'fs', root: docs.root },
      },
    ];
    const typo = await docs.cliWith(
      policies,
      'hold',
      'add',
      '--policy',
      'documents',
      '--key',
      'docs/d9.pdf',
      '--reason',
      'case 8',
    );
    expect(typo.code, typo.stderr).toBe(0);
    expect(typo.stdout).toMatch(/^hold (\d+) added on key "docs\/d9.pdf" \(documents\)/);
    const id = /^hold (\d+)/.exec(typo.stdout)![1];
    expect(typo.stderr).toContain(
      `warning: hold #${id} matches nothing in policy documents (yet): check the key (rows: the row key, e.g. "1", or the linked file, e.g. "docs/d1.pdf")`,
    );

    type Added = {
      id: number;
      policy: string | null;
      checks: Array<{ policy: string; matched: boolean; warning?: string }>;
    };
    const everywhere = await docs.cliWith(
      policies,
      'hold',
      'add',
      '--prefix',
      'docs/d1',
      '--reason',
      'case 9',
      '--json',
    );
    expect(everywhere.code, everywhere.stderr).toBe(0);
    expect((JSON.parse(everywhere.stdout) as Added[]).map((hold) => [hold.policy, hold.checks])).toEqual([
      [
        null,
        [
          { policy: 'documents', matched: true },
          { policy: 'files', matched: true },
        ],
      ],
    ]);
    const nothing = await docs.cliWith(policies, 'hold', 'add', '--prefix', 'scans/', '--reason', 'case 9', '--json');
    expect(nothing.code, nothing.stderr).toBe(0);
    const [added] = JSON.parse(nothing.stdout) as Added[];
    expect(added!.checks).toEqual([
      {
        policy: 'documents',
        matched: false,
        warning: expect.stringContaining(
          `hold #${added!.id} matches nothing in policy documents (yet): check the prefix (rows:`,
        ),
      },
      {
        policy: 'files',
        matched: false,
        warning: `hold #${added!.id} matches nothing in policy files (yet): check the prefix (fs: a path relative to the root, e.g. "docs/d1.pdf")`,
      },
    ]);

    const list = await docs.cli({}, 'hold', 'list', '--json');
    expect((JSON.parse(list.stdout) as Array<{ key: string }>).map((hold) => hold.key).sort()).toEqual([
      'docs/d1',
      'docs/d9.pdf',
      'scans/',
    ]);
  });
});

/** The documents policy backed up whole: rows to a copy table, files to a directory. */
async function backedUp(docs: Documents): Promise<{ policy: Record<string, unknown>; files: string }> {
  await docs.query(
    'CREATE TABLE documents_backup (LIKE documents, retention_copied_at timestamptz NOT NULL DEFAULT now())',
  );
  const files = path.join(docs.scratch, 'file-backups');
  const policy = {
    backup: { to: 'public.documents_backup', keepFor: '30d' },
    blob: { column: 'file_path', store: { kind: 'fs', root: docs.root }, backupTo: files },
  };
  return { policy, files };
}

async function fileState(
  docs: Documents,
  ids: number[],
): Promise<Array<{ id: number; content: string; mtimeMs: number } | null>> {
  return Promise.all(
    ids.map(async (id) => {
      const file = path.join(docs.root, `docs/d${id}.pdf`);
      if (!(await exists(file))) return null;
      return { id, content: await readFile(file, 'utf8'), mtimeMs: (await stat(file)).mtimeMs };
    }),
  );
}

describe('restores of rows with linked files', () => {
  it('brings rows and their files back together (contents and mtimes), exit 0', async () => {
    // Row 5 is past retention but its file was modified yesterday: both are kept, with the cause.
    const docs = await documents(5, { fileDays: { 5: 1 } });
    const { policy } = await backedUp(docs);
    const before = await fileState(docs, [1, 2, 3, 4]);
    const run = await docs.cli(policy, 'run', '--list', '--json');
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as RunReport;
    expect(report).toMatchObject({ status: 'completed', deleted: 4, failed: 0, kept: 1 });
    const cause = expect.stringMatching(
      /^linked file docs\/d5\.pdf modified after the cutoff \S+Z; row and file kept$/,
    );
    expect(report.notDeleted).toEqual([{ outcome: 'kept', cause, count: 1 }]);
    expect(report.items!.find((item) => item.key === '5')).toMatchObject({ outcome: 'kept', error: cause });
    expect(await rowIds(docs)).toEqual([5]);
    expect(await fileState(docs, [1, 2, 3, 4])).toEqual([null, null, null, null]);
    expect(await exists(path.join(docs.root, 'docs/d5.pdf'))).toBe(true);
    const audit = await docs.cli(policy, 'audit', '--run', report.runId, '--key', '5', '--json');
    expect(JSON.parse(audit.stdout)).toEqual([expect.objectContaining({ key: '5', status: 'kept', error: cause })]);

    const restore = await docs.cli(policy, 'restore', '--run', report.runId, '--json');
    expect(restore.code, restore.stderr).toBe(0);
    const summary = JSON.parse(restore.stdout) as { outcomes: Array<{ key: string; status: string }> };
    expect(summary.outcomes.map((outcome) => [outcome.key, outcome.status]).sort()).toEqual([
      ['1', 'restored'],
      ['2', 'restored'],
      ['3', 'restored'],
      ['4', 'restored'],
    ]);
    expect(await rowIds(docs)).toEqual([1, 2, 3, 4, 5]);
    expect(await fileState(docs, [1, 2, 3, 4])).toEqual(before);
  });

  it('lists a row whose file is missing from the backup, leaves it deleted, and exits non-zero', async () => {
    const docs = await documents(3);
    const { policy, files } = await backedUp(docs);
    const run = await docs.cli(policy, 'run', '--json');
    expect(run.code, run.stderr).toBe(0);
    const { runId } = JSON.parse(run.stdout) as RunReport;
    await rm(path.join(files, 'documents', runId, 'docs/d2.pdf'));

    const restore = await docs.cli(policy, 'restore', '--run', runId);
    expect(restore.code).toBe(1);
    expect(restore.stdout).toMatch(
      /2\s+failed\s+linked file docs\/d2\.pdf could not be restored from .* \(no_backup\); row not restored/,
    );
    expect(restore.stdout).toContain('restored 2 of 3 item(s)');
    expect(restore.stderr).toContain(
      `error: restore --run ${runId}: 1 item(s) could not be restored: 2 (linked file docs/d2.pdf could not be restored from`,
    );
    expect(await rowIds(docs)).toEqual([1, 3]);
    expect((await fileState(docs, [1, 2, 3])).map((file) => file !== null)).toEqual([true, false, true]);
  });
});

describe('rows with linked files that cannot be restored whole are refused at config time', () => {
  it('exit 2, each field named with its fix', async () => {
    const policy = (name: string, overrides: Record<string, unknown>) => ({
      name,
      class: 'rows',
      schedule: '0 2 * * *',
      store: { kind: 'postgres', url: 'postgres://localhost/none' },
      table: 'documents',
      timestamp: 'created_at',
      retention: '30d',
      blob: { column: 'file_path', store: { kind: 'fs', root: '/srv/docs' } },
      ...overrides,
    });
    const backup = { to: 'public.documents_backup', keepFor: '7d' };
    const configPath = path.join(shared.scratch, 'refused.json');
    await writeFile(
      configPath,
      JSON.stringify({
        policies: [
          policy('archived', { archive: { table: 'public.documents_archive' } }),
          policy('rows-only-backup', { backup }),
          policy('files-only-backup', {
            blob: { column: 'file_path', store: { kind: 'fs', root: '/srv/docs' }, backupTo: '/srv/backups' },
          }),
          policy('backup-in-root', {
            backup,
            blob: { column: 'file_path', store: { kind: 'fs', root: '/srv/docs' }, backupTo: '/srv/docs/.backups' },
          }),
        ],
      }),
    );
    const result = await runCli(['--config', configPath, 'config']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      /error: policies\[0\]\.archive: archive keeps the rows, but their linked files are deleted.*\(use backup \(rows\) with blob\.backupTo/,
    );
    expect(result.stderr).toMatch(
      /error: policies\[1\]\.blob\.backupTo: backup copies the rows but not their linked files.*\(add blob\.backupTo: where the fs store copies the files \(a directory outside the store root\)\)/,
    );
    expect(result.stderr).toMatch(
      /error: policies\[2\]\.blob\.backupTo: blob\.backupTo is only used with backup.*\(add backup for the rows, or remove blob\.backupTo\)/,
    );
    expect(result.stderr).toMatch(
      /error: policies\[3\]\.blob\.backupTo: \/srv\/docs\/\.backups is inside the linked files' root \/srv\/docs/,
    );
  });
});
