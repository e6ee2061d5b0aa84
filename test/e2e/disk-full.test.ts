import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../lib/core/control.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { logLines, runCli, seedFiles } from '../support/cli.ts';
import { removeHome } from '../support/embeddedHome.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * A full disk ends a run cleanly (issue 11). The disks are real: small tmpfs mounts, which needs
 * root (CI runs as root; a test that cannot mount fails, it is not skipped). A file-size rlimit
 * (EFBIG) or a loop device would also fail writes, but only a full file system gives the ENOSPC
 * an operator meets, mid-run, on the directory it happens to.
 *
 * - The backup directory fills up mid-run: items whose copy could not be written are not deleted
 *   and are reported `failed` with the cause (the disk, and what to do); the items backed up
 *   before are deleted; the run ends with its report, closed history and a released lease, and
 *   finishes the rest once the disk has room.
 * - $RETENTION_HOME is on a full disk: the embedded control database cannot start; the command
 *   exits 1 naming the disk and the fix (free space or move RETENTION_HOME), nothing touched.
 */
const shared = usePostgresAndScratch('retention-disk-full-');
let base: string;
const mounts: string[] = [];

async function mountTmpfs(directory: string, size: string): Promise<void> {
  await mkdir(directory, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', directory]);
  mounts.push(directory);
}

beforeAll(async () => {
  if (process.getuid?.() !== 0)
    throw new Error('disk-full tests mount tmpfs file systems and must run as root (as CI does)');
  // Apart from the shared scratch (removed by its own hook), and traversable by the postgres user.
  base = await mkdtemp(path.join(os.tmpdir(), 'retention-disks-'));
  await chmod(base, 0o755);
});

afterAll(async () => {
  for (const directory of mounts.splice(0).reverse()) execFileSync('umount', ['--lazy', directory]);
  if (base) await rm(base, { recursive: true, force: true });
});

const FILES = 40;
const FILE_BYTES = 4096;
const old = new Date(Date.now() - 90 * 86_400_000);

async function filesUnder(directory: string): Promise<Map<string, string>> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  const files = new Map<string, string>();
  for (const entry of entries.filter((candidate) => candidate.isFile())) {
    files.set(entry.name, await readFile(path.join(entry.parentPath, entry.name), 'utf8'));
  }
  return files;
}

describe('a full disk', () => {
  it('the backup disk filling mid-run: unbacked items kept and failed with the cause, a report, history closed, lease released', async () => {
    const root = path.join(base, 'files');
    const backup = path.join(base, 'backup');
    await mountTmpfs(backup, '64k');
    const content = (n: number) => `${String(n).padStart(4, '0')}${'x'.repeat(FILE_BYTES - 4)}`;
    await seedFiles(
      root,
      Array.from({ length: FILES }, (_, n) => ({ key: `old-${n}.bin`, mtime: old, content: content(n) })),
    );
    const configPath = path.join(base, 'backup.json');
    const policy = {
      name: 'files',
      class: 'blobs',
      store: { kind: 'fs', root },
      backup: { to: backup, keepFor: '7d' },
      retention: '30d',
      schedule: '0 * * * *',
      batchSize: 10,
      limits: { maxDeleteFraction: 1 },
    };
    await writeFile(configPath, JSON.stringify({ policies: [policy] }));
    const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('disk_full') };
    const cli = (...args: string[]) => runCli(['--config', configPath, ...args], { env });

    const run = await cli('run', '--json', '--list', '--strict');
    // An SLA breach (the failure rate): a cron wrapper with --strict sees it.
    expect(run.code, run.stderr).toBe(1);
    const report = JSON.parse(run.stdout) as RunReport;
    expect(report).toMatchObject({ status: 'completed', eligible: FILES, sla: { status: 'breach' } });
    expect(report.deleted).toBeGreaterThan(0);
    expect(report.failed).toBeGreaterThan(0);
    expect(report.deleted + report.failed).toBe(FILES);

    // Deleted only with a copy; kept (still in the root) when the copy could not be written.
    const items = report.items ?? [];
    const deleted = items.filter((item) => item.outcome === 'deleted').map((item) => item.key);
    const failed = items.filter((item) => item.outcome === 'failed');
    const copies = await filesUnder(backup);
    const remaining = await filesUnder(root);
    for (const key of deleted) expect(copies.get(key), key).toBe(content(Number(key.slice(4, -4))));
    expect([...remaining.keys()].sort()).toEqual(failed.map((item) => item.key).sort());
    for (const item of failed) {
      expect(item.error).toMatch(/^backup failed, not deleted: ENOSPC: no space left on device/);
      // The disk is named by where it is mounted, whichever directory below it was written.
      expect(item.error).toContain(
        `(the disk holding ${backup}/files/${report.runId} (mounted at ${backup}) is full: free space on it or move that directory to a larger disk)`,
      );
    }
    // One cause for all of them: the summary says it once, with the count.
    expect(report.notDeleted.filter((entry) => entry.outcome === 'failed')).toEqual([
      { outcome: 'failed', count: report.failed, cause: failed[0]!.error },
    ]);
    const batchFailures = logLines(run.stderr)
      .filter((line) => line.event === 'batch_deleted')
      .flatMap((line) => (line.failures as Array<{ error: string }> | undefined) ?? []);
    expect(batchFailures.length).toBeGreaterThan(0);
    expect(batchFailures.every((failure) => failure.error.includes('is full: free space on it'))).toBe(true);

    // The record: history closed, every deletion and every failure audited, the lease free.
    const [history, audit, status] = await Promise.all([
      cli('history', '--json'),
      cli('audit', '--run', report.runId, '--json'),
      cli('status', '--json'),
    ]);
    expect((JSON.parse(history.stdout) as RunReport[]).find((entry) => entry.runId === report.runId)?.status).toBe(
      'completed',
    );
    const records = JSON.parse(audit.stdout) as AuditRecord[];
    expect(
      records
        .filter((record) => record.status === 'deleted')
        .map((record) => record.key)
        .sort(),
    ).toEqual([...deleted].sort());
    expect(
      records
        .filter((record) => record.status === 'failed')
        .every((record) => record.error?.includes('no space left on device')),
    ).toBe(true);
    expect(JSON.parse(status.stdout)).toMatchObject({ policies: [{ policy: 'files', lease: null }] });

    // Room again (the operator freed space): the next run backs up and deletes the rest.
    execFileSync('mount', ['-o', 'remount,size=4m', backup]);
    const again = await cli('run', '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ status: 'completed', deleted: report.failed, failed: 0 });
    expect((await filesUnder(root)).size).toBe(0);
    expect((await filesUnder(backup)).size).toBe(FILES);
  });

  it('$RETENTION_HOME on a full disk: exit 1 naming the disk and the fix, nothing touched', async () => {
    const home = path.join(base, 'home');
    await mountTmpfs(home, '4m');
    const root = path.join(base, 'untouched');
    await seedFiles(root, [{ key: 'old.txt', mtime: old }]);
    const configPath = path.join(base, 'home.json');
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
            limits: { maxDeleteFraction: 1 },
          },
        ],
      }),
    );
    try {
      const run = await runCli(['--config', configPath, 'run', '--json'], {
        env: { RETENTION_HOME: home, RETENTION_DATABASE_URL: '' },
      });
      expect(run.code, run.stderr).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/^error: could not initialise the embedded PostgreSQL/);
      expect(run.stderr).toContain(
        `(the disk holding ${home} is full: free space on it or move RETENTION_HOME to a larger disk)`,
      );
      expect([...(await filesUnder(root)).keys()]).toEqual(['old.txt']);
    } finally {
      await removeHome(home).catch(() => undefined);
    }
  });
});
