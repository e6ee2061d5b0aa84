import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../lib/core/control.ts';
import type { ReconcileReport } from '../../lib/engine/reconcile.ts';
import { runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * `retention reconcile` as an operator drives it: files no row names (older than the grace
 * period) listed and deleted through the engine (limits, holds, dry run, audit), rows whose file
 * is gone listed; sidecars whose main file is gone on an fs policy.
 */
const shared = usePostgresAndScratch('retention-reconcile-');
const DAY = 86_400_000;

async function scratchFor(name: string): Promise<{ url: string; control: string; scratch: string }> {
  const url = await shared.server.createDatabase(name);
  const control = await shared.server.createDatabase('control');
  return { url, control, scratch: path.join(shared.scratch, path.basename(new URL(url).pathname)) };
}

async function cliWith(scratch: string, control: string, policies: unknown[], ...args: string[]) {
  const configPath = path.join(scratch, `config-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(configPath, JSON.stringify({ policies }));
  return runCli(['--config', configPath, ...args], { env: { RETENTION_DATABASE_URL: control } });
}

async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}

const outcomes = (report: ReconcileReport) =>
  Object.fromEntries(report.run.items!.map((item) => [item.key, item.outcome]));

describe('reconcile: files no row names, rows whose file is gone', () => {
  it('lists orphans past the grace period, deletes only them with --delete (limits, holds, audit)', async () => {
    const { url, control, scratch } = await scratchFor('documents');
    const root = path.join(scratch, 'files');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(
        'CREATE TABLE documents (id bigint PRIMARY KEY, file_path text, created_at timestamptz NOT NULL)',
      );
      await client.query('CREATE INDEX documents_created_at ON documents (created_at, id)');
      // Rows 1-3 name their files; row 4 names a file that is gone; row 5 names none.
      await client.query(
        `INSERT INTO documents VALUES (1, 'docs/d1.pdf', now()), (2, 'docs/d2.pdf', now()), (3, 'docs/d3.pdf', now()),
                                      (4, 'docs/gone.pdf', now()), (5, NULL, now())`,
      );
    } finally {
      await client.end();
    }
    const now = Date.now();
    const old = new Date(now - 3 * DAY);
    await seedFiles(root, [
      ...['docs/d1.pdf', 'docs/d2.pdf', 'docs/d3.pdf'].map((key) => ({ key, mtime: old })),
      ...['docs/o1.pdf', 'docs/o2.pdf', 'docs/held.pdf'].map((key) => ({ key, mtime: old })),
      // Mid-upload: its row may not be committed yet.
      { key: 'docs/young.pdf', mtime: new Date(now - 60_000) },
    ]);
    const policy = (limits: Record<string, number>) => ({
      name: 'documents',
      class: 'rows',
      schedule: '0 2 * * *',
      store: { kind: 'postgres', url },
      table: 'public.documents',
      timestamp: 'created_at',
      retention: '30d',
      blob: { column: 'file_path', store: { kind: 'fs', root } },
      limits,
    });
    const cli = (limits: Record<string, number>, ...args: string[]) =>
      cliWith(scratch, control, [policy(limits)], ...args);
    const generous = { maxDeleteFraction: 1 };

    const hold = await cli(generous, 'hold', 'add', '--key', 'docs/held.pdf', '--reason', 'case 9');
    expect(hold.code, hold.stderr).toBe(0);

    const listed = await cli(generous, 'reconcile', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    const plan = JSON.parse(listed.stdout) as ReconcileReport;
    expect(plan).toMatchObject({
      mode: 'orphans',
      dryRun: true,
      grace: '24h',
      files: { files: 7, young: 1, needed: 3 },
    });
    expect(outcomes(plan)).toEqual({
      'docs/o1.pdf': 'would_delete',
      'docs/o2.pdf': 'would_delete',
      'docs/held.pdf': 'held',
    });
    expect(plan.run.items!.find((item) => item.key === 'docs/o1.pdf')!.rule).toBe(
      'orphan=no row in public.documents.file_path: 24h',
    );
    // Orphans 2 days past the grace: reported, but no breach of the policy's maxOverdue (1d), which is about its rows.
    expect(plan.run.sla.status).toBe('ok');
    expect(plan.run.oldestOverdueSeconds).toBeGreaterThan(DAY / 1000);
    expect(plan.rowsWithoutFile).toEqual({
      count: 1,
      rows: [{ key: '4', timestamp: expect.any(String), file: 'docs/gone.pdf' }],
      truncated: false,
    });
    const text = await cli(generous, 'reconcile');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('files listed 7, younger than 24h 1, still needed 3');
    expect(text.stdout).toMatch(/rows whose file is gone: 1\n[\s\S]*\n4 +\S+ +docs\/gone\.pdf\n/);
    const dryDelete = await cli(generous, 'reconcile', '--delete', '--dry-run', '--json');
    expect(dryDelete.code, dryDelete.stderr).toBe(0);
    expect(outcomes(JSON.parse(dryDelete.stdout) as ReconcileReport)).toEqual(outcomes(plan));
    expect(await filesUnder(root)).toHaveLength(7);

    // 2 orphans of 7 files is past a 20 % fraction: nothing is deleted (exit 3), as for `retention run`.
    const refused = await cli({ maxDeleteFraction: 0.2 }, 'reconcile', '--delete', '--json');
    expect(refused.code, refused.stderr).toBe(3);
    expect((JSON.parse(refused.stdout) as ReconcileReport).run.status).toBe('aborted_limit');
    expect(await filesUnder(root)).toHaveLength(7);

    const deleted = await cli(generous, 'reconcile', '--delete', '--json');
    expect(deleted.code, deleted.stderr).toBe(0);
    const report = JSON.parse(deleted.stdout) as ReconcileReport;
    expect(report.run).toMatchObject({
      status: 'completed',
      trigger: 'reconcile',
      dryRun: false,
      deleted: 2,
      held: 1,
      failed: 0,
    });
    expect(outcomes(report)).toEqual({ 'docs/o1.pdf': 'deleted', 'docs/o2.pdf': 'deleted', 'docs/held.pdf': 'held' });
    expect(await filesUnder(root)).toEqual([
      'docs/d1.pdf',
      'docs/d2.pdf',
      'docs/d3.pdf',
      'docs/held.pdf',
      'docs/young.pdf',
    ]);

    const audit = await cli(generous, 'audit', '--policy', 'documents', '--action', 'delete', '--json');
    expect(audit.code, audit.stderr).toBe(0);
    const records = JSON.parse(audit.stdout) as AuditRecord[];
    expect(records.map((record) => [record.key, record.status, record.rule, record.runId]).sort()).toEqual([
      ['docs/o1.pdf', 'deleted', 'orphan=no row in public.documents.file_path: 24h', report.run.runId],
      ['docs/o2.pdf', 'deleted', 'orphan=no row in public.documents.file_path: 24h', report.run.runId],
    ]);

    // Verify answers for an orphan: deleted by that run, under the configuration as it still is.
    const verified = await cli(generous, 'verify', '--key', 'docs/o1.pdf', '--json');
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject([
      { policy: 'documents', state: 'deleted', runId: report.run.runId, configChanged: false },
    ]);

    // The policy's own runs are unaffected (its checkpoint and intents are its own store's).
    const run = await cli(generous, 'plan', '--json');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'completed', eligible: 0 });
  });
});

describe('reconcile: fs sidecars', () => {
  it('sidecars whose main file is gone go once past the grace period; main files and their sidecars stay', async () => {
    const { control, scratch } = await scratchFor('sidecars');
    const root = path.join(scratch, 'photos');
    const now = Date.now();
    const old = new Date(now - 3 * DAY);
    await seedFiles(root, [
      { key: 'a.jpg', mtime: old },
      { key: 'a.json', mtime: old },
      { key: 'b.json', mtime: old },
      { key: 'c.json', mtime: new Date(now - 60_000) },
      { key: 'sub/d.png', mtime: old },
      { key: 'sub/d.json', mtime: old },
      { key: 'notes.txt', mtime: old },
    ]);
    const policy = (sidecars: unknown) => ({
      name: 'photos',
      class: 'blobs',
      schedule: '0 2 * * *',
      retention: '30d',
      store: { kind: 'fs', root, sidecars },
      limits: { maxDeleteFraction: 1 },
    });
    const declared = [{ pattern: '*.json', mainFile: ['*.jpg', '*.png'] }];

    const bad = await cliWith(scratch, control, [policy([{ pattern: '**.json', mainFile: '*.jpg' }])], 'reconcile');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('error: policies[0].store.sidecars[0].pattern: "**.json" has 2 "*"');

    const listed = await cliWith(scratch, control, [policy(declared)], 'reconcile', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    const plan = JSON.parse(listed.stdout) as ReconcileReport;
    expect(plan).toMatchObject({ mode: 'sidecars', files: { files: 7, young: 1, needed: 2 } });
    expect(plan.rowsWithoutFile).toBeUndefined();
    expect(outcomes(plan)).toEqual({ 'b.json': 'would_delete' });

    // A run in the policy's name: the policy's pause stops it before anything is deleted.
    const pause = await cliWith(
      scratch,
      control,
      [policy(declared)],
      'pause',
      '--policy',
      'photos',
      '--reason',
      'audit',
    );
    expect(pause.code, pause.stderr).toBe(0);
    const paused = await cliWith(scratch, control, [policy(declared)], 'reconcile', '--delete', '--json');
    expect((JSON.parse(paused.stdout) as ReconcileReport).run.status).toBe('skipped_paused');
    expect(await filesUnder(root)).toHaveLength(7);
    const resume = await cliWith(
      scratch,
      control,
      [policy(declared)],
      'resume',
      '--policy',
      'photos',
      '--reason',
      'done',
    );
    expect(resume.code, resume.stderr).toBe(0);

    const deleted = await cliWith(scratch, control, [policy(declared)], 'reconcile', '--delete', '--json');
    expect(deleted.code, deleted.stderr).toBe(0);
    const report = JSON.parse(deleted.stdout) as ReconcileReport;
    expect(report.run).toMatchObject({ status: 'completed', deleted: 1 });
    expect(report.run.items).toEqual([expect.objectContaining({ key: 'b.json', rule: 'sidecar=main file gone: 24h' })]);
    expect(await filesUnder(root)).toEqual(['a.jpg', 'a.json', 'c.json', 'notes.txt', 'sub/d.json', 'sub/d.png']);

    // A policy with nothing to reconcile says so before anything opens.
    const nothing = await cliWith(scratch, control, [policy(undefined)], 'reconcile');
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('error: --policy: policy "photos" has no linked files');
  });
});
