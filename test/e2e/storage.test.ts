import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StorageAnalysis } from '../../lib/reports/storage.ts';
import { runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/** `retention storage` (issue 15): what is using the space, and what a run would free now. */
const shared = usePostgresAndScratch('retention-storage-');
const DAY = 86_400_000;

describe('retention storage', () => {
  it('counts items and bytes per top-level directory and per purpose, what a run would free, held, and arrivals since the last run', async () => {
    const dir = await mkdtemp(path.join(shared.scratch, 'case-'));
    const root = path.join(dir, 'root');
    await mkdir(root);
    const configPath = path.join(dir, 'retention.json');
    await writeFile(
      configPath,
      JSON.stringify({
        policies: [
          {
            name: 'files',
            class: 'blobs',
            store: { kind: 'fs', root },
            retention: { by: 'prefix', rules: { 'logs/': '7d' }, default: '30d' },
            schedule: '0 * * * *',
            limits: { maxDeleteFraction: 1 },
          },
        ],
      }),
    );
    const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('storage') };
    const cli = (...args: string[]) => runCli(['--config', configPath, ...args], { env });
    const now = Date.now();
    const sized = (key: string, days: number, size: number) => ({
      key,
      mtime: new Date(now - days * DAY),
      content: 'x'.repeat(size),
    });
    await seedFiles(root, [
      sized('logs/old.log', 10, 100), // past 7d
      sized('logs/held.log', 10, 50), // past 7d, held
      sized('logs/new.log', 1, 10),
      sized('media/old.bin', 40, 1_000), // past the 30d default
      sized('media/young.bin', 20, 500),
      sized('top.txt', 5, 7),
    ]);
    expect((await cli('hold', 'add', '--policy', 'files', '--key', 'logs/held.log', '--reason', 'case 7')).code).toBe(
      0,
    );

    const first = await cli('storage', '--json');
    expect(first.code, first.stderr).toBe(0);
    const [files] = (JSON.parse(first.stdout) as { policies: StorageAnalysis[] }).policies;
    expect(files).toMatchObject({
      policy: 'files',
      complete: true,
      sizesKnown: true,
      sinceLastRun: null,
      total: { items: 6, bytes: 1_667, eligible: 2, bytesToFree: 1_100, held: 1 },
    });
    expect(files!.byPrefix).toEqual([
      { name: 'media/', items: 2, bytes: 1_500, eligible: 1, bytesToFree: 1_000, held: 0 },
      { name: 'logs/', items: 3, bytes: 160, eligible: 1, bytesToFree: 100, held: 1 },
      { name: '(top level)', items: 1, bytes: 7, eligible: 0, bytesToFree: 0, held: 0 },
    ]);
    expect(files!.byPurpose).toEqual([
      { name: 'default: 30d', items: 3, bytes: 1_507, eligible: 1, bytesToFree: 1_000, held: 0 },
      { name: 'prefix=logs/: 7d', items: 3, bytes: 160, eligible: 1, bytesToFree: 100, held: 1 },
    ]);

    // What a run would free is what it frees; then a file arrives.
    const run = await cli('run', '--json');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ deleted: 2, bytesFreed: 1_100 });
    await seedFiles(root, [{ key: 'media/arrived.bin', mtime: new Date(), content: 'y'.repeat(300) }]);
    const after = JSON.parse((await cli('storage', '--json')).stdout) as { policies: StorageAnalysis[] };
    expect(after.policies[0]).toMatchObject({
      total: { items: 5, bytes: 867, eligible: 0, bytesToFree: 0, held: 1 },
      sinceLastRun: { items: 1, bytes: 300 },
    });

    // The table names each policy, directory and purpose.
    const printed = await cli('storage');
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toMatch(/files .* 5 .* 867 B/);
    expect(printed.stdout).toContain('files by directory or prefix:');
    expect(printed.stdout).toContain('files by purpose:');
    expect(printed.stdout).toMatch(/media\/ +2 +800 B/);
  });

  it('bad input exits 2 naming the flag, and an unreadable store is named with exit 1', async () => {
    const dir = await mkdtemp(path.join(shared.scratch, 'case-'));
    const configPath = path.join(dir, 'retention.json');
    await writeFile(
      configPath,
      JSON.stringify({
        policies: [
          {
            name: 'gone',
            class: 'blobs',
            store: { kind: 'fs', root: path.join(dir, 'missing') },
            retention: '30d',
            schedule: '0 * * * *',
          },
        ],
      }),
    );
    const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('storage') };
    const bad = await runCli(['--config', configPath, 'storage', '--limit', 'lots'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--limit');
    const unknown = await runCli(['--config', configPath, 'storage', '--policy', 'nope'], { env });
    expect(unknown.code).toBe(2);
    const missing = await runCli(['--config', configPath, 'storage'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/policy gone: cannot read its store/);
  });
});
