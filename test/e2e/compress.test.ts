import { spawn } from 'node:child_process';
import { existsSync, watch } from 'node:fs';
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../lib/core/control.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { BIN, runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * Issue 15, item 4: log rotation through the engine. `compress: { after }` compresses files in
 * place once past `after` and still younger than `retention`, which deletes them (compressed or
 * not) as before; a dry run lists, holds keep files as they are, each compression is audited, and
 * a kill -9 at any moment leaves every file whole: its original or its complete `.gz`.
 */
const shared = usePostgresAndScratch('retention-compress-e2e-');

const DAY = 86_400_000;
// Whole seconds: stored exactly, so kept mtimes compare equal.
const NOW = Math.floor(Date.now() / 1000) * 1000;
const daysAgo = (days: number) => new Date(NOW - days * DAY);

async function logsPolicy(name: string, extra: Record<string, unknown> = {}) {
  const root = path.join(shared.scratch, name);
  await mkdir(root);
  const configPath = path.join(shared.scratch, `${name}.json`);
  const policy = {
    name: 'logs',
    class: 'blobs',
    store: { kind: 'fs', root, include: ['**/*.log'] },
    retention: '30d',
    compress: { after: '7d' },
    schedule: '0 3 * * *',
    limits: { maxDeleteFraction: 1 },
    ...extra,
  };
  await writeFile(configPath, JSON.stringify({ policies: [policy] }));
  const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase(name) };
  const cli = (...args: string[]) => runCli(['--config', configPath, ...args], { env });
  return { root, cli, env, configPath };
}

async function listTree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}

describe('compress, then delete', () => {
  it('plans, compresses what is past after (holds excepted), deletes what is past retention, and audits it', async () => {
    const { root, cli } = await logsPolicy('tiers');
    const content = 'GET /api/items 200 12ms\n'.repeat(5_000);
    await seedFiles(root, [
      { key: 'old/a.log', mtime: daysAgo(40) },
      { key: 'mid/c.log', mtime: daysAgo(10), content },
      { key: 'mid/d.log', mtime: daysAgo(10), content },
      { key: 'new/f.log', mtime: daysAgo(1) },
      { key: 'mid/other.txt', mtime: daysAgo(10) },
    ]);
    await writeFile(path.join(root, 'old/b.log.gz'), gzipSync('rotated long ago'));
    await utimes(path.join(root, 'old/b.log.gz'), daysAgo(40), daysAgo(40));
    await writeFile(path.join(root, 'mid/e.log.gz'), gzipSync('rotated already'));
    await utimes(path.join(root, 'mid/e.log.gz'), daysAgo(10), daysAgo(10));
    expect((await cli('hold', 'add', '-p', 'logs', '--key', 'mid/d.log', '--reason', 'case 17')).code).toBe(0);
    const before = await listTree(root);

    const planned = await cli('plan', '--json', '--list');
    expect(planned.code).toBe(0);
    const plan = JSON.parse(planned.stdout) as RunReport;
    expect(plan.compressed).toMatchObject({ count: 0, wouldCompress: 1, bytesToCompress: content.length });
    expect(plan.items?.filter((item) => item.outcome === 'would_compress').map((item) => item.key)).toEqual([
      'mid/c.log',
    ]);
    // The delete tier sees the old .gz through the include glob that names its original.
    expect(plan.items?.filter((item) => item.outcome === 'would_delete').map((item) => item.key)).toEqual([
      'old/a.log',
      'old/b.log.gz',
    ]);
    expect(await listTree(root)).toEqual(before);

    const ran = await cli('run', '--json');
    expect(ran.code).toBe(0);
    const report = JSON.parse(ran.stdout) as RunReport;
    expect(report).toMatchObject({ status: 'completed', deleted: 2 });
    expect(report.compressed).toMatchObject({ count: 1, bytesBefore: content.length, kept: 0, failed: 0 });
    expect(report.compressed!.bytesAfter).toBeLessThan(content.length / 10);
    expect(await listTree(root)).toEqual(['mid/c.log.gz', 'mid/d.log', 'mid/e.log.gz', 'mid/other.txt', 'new/f.log']);
    expect(gunzipSync(await readFile(path.join(root, 'mid/c.log.gz'))).toString()).toBe(content);
    expect((await stat(path.join(root, 'mid/c.log.gz'))).mtime.getTime()).toBe(daysAgo(10).getTime());

    const audit = await cli('audit', '--policy', 'logs', '--action', 'compress', '--json');
    expect(audit.code).toBe(0);
    const records = JSON.parse(audit.stdout) as AuditRecord[];
    expect(records).toMatchObject([{ key: 'mid/c.log', status: 'compressed', size: content.length }]);
    expect(records[0]!.error).toContain(`saved ${content.length - report.compressed!.bytesAfter}`);
    // "Is mid/c.log still kept?": yes, compressed, under the same retention.
    const verified = await cli('verify', '--policy', 'logs', '--key', 'mid/c.log', '--json');
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({
      key: 'mid/c.log',
      compressedAs: 'mid/c.log.gz',
      state: 'retained',
      summary: expect.stringMatching(/^compressed as mid\/c\.log\.gz, which is present and within its retention/),
    });

    // The next run has nothing left to compress (idempotent); the table says so under the policy.
    const again = await cli('run');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('logs: compressed 0 files, 0 B → 0 B (saved 0 B)');
    expect(await listTree(root)).toEqual(['mid/c.log.gz', 'mid/d.log', 'mid/e.log.gz', 'mid/other.txt', 'new/f.log']);
  });

  it('refuses compress after a retention it would never reach, naming the field', async () => {
    const { cli } = await logsPolicy('bad-after', { compress: { after: '30d' } });
    const result = await cli('plan');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('policies[0].compress.after');
  });

  it('kill -9 mid-compress (writing, linking, at random): every file is always its original or its complete .gz', async () => {
    const FILES = 48;
    const { root, env, configPath, cli } = await logsPolicy('crash', { batchSize: 8 });
    // Large enough that writing each copy takes a while: the kills below land inside one.
    const contentOf = (index: number) => `${index} GET /api/items/${index} 200 ${'x'.repeat(index)}\n`.repeat(20_000);
    const keyOf = (index: number) => `app/${String(index).padStart(3, '0')}.log`;
    await seedFiles(
      root,
      Array.from({ length: FILES }, (_, index) => ({
        key: keyOf(index),
        mtime: daysAgo(10),
        content: contentOf(index),
      })),
    );
    const checkEveryFile = async () => {
      for (let index = 0; index < FILES; index += 1) {
        const original = path.join(root, keyOf(index));
        if (existsSync(original)) continue;
        // No original: its .gz must be there, complete.
        expect(gunzipSync(await readFile(`${original}.gz`)).toString()).toBe(contentOf(index));
      }
    };
    // When to kill: as a temporary copy appears (mid-write), as a .gz appears (between its link and
    // the original's unlink), or at a random moment after the first batch.
    const moments = [/\.tmp$/, /\.gz$/, 'random', /\.tmp$/, /\.gz$/, 'random'] as const;
    const seen = { temporaries: 0, both: 0 };
    for (const moment of moments) {
      const child = spawn(process.execPath, [BIN, '--config', configPath, 'run'], {
        env: { ...process.env, RETENTION_LOG_LEVEL: 'info', ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on('exit', (_code, signal) => resolve(signal)),
      );
      const kill = () => child.kill('SIGKILL');
      const watcher = watch(path.join(root, 'app'), (_event, name) => {
        if (moment !== 'random' && name && moment.test(name)) kill();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        if (moment === 'random' && chunk.toString().includes('"event":"batch_compressed"'))
          setTimeout(kill, Math.floor(Math.random() * 60));
      });
      await exited;
      watcher.close();
      await checkEveryFile();
      const names = await readdir(path.join(root, 'app'));
      seen.temporaries += names.filter((name) => name.endsWith('.tmp')).length;
      seen.both += names.filter((name) => name.endsWith('.log') && names.includes(`${name}.gz`)).length;
      // The dead run's lease would keep the next run out for its TTL: the operator breaks it.
      expect((await cli('lease', 'break', 'logs')).code).toBe(0);
    }
    // The kills did land inside compressions, not only between them.
    expect(seen.temporaries + seen.both).toBeGreaterThan(0);

    const finished = await cli('run', '--json');
    expect(finished.code).toBe(0);
    expect(await listTree(root)).toEqual(Array.from({ length: FILES }, (_, index) => `${keyOf(index)}.gz`));
    await checkEveryFile();
    // Every compression is on record: no intent left pending, every file recorded compressed.
    const records = JSON.parse((await cli('audit', '--action', 'compress', '--json')).stdout) as AuditRecord[];
    expect(records.filter((record) => record.status === 'pending')).toEqual([]);
    expect(new Set(records.filter((record) => record.status === 'compressed').map((record) => record.key)).size).toBe(
      FILES,
    );
    // And chained like every other record: the trail of killed and recovered runs verifies.
    const verified = await cli('audit', 'verify');
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });
});
