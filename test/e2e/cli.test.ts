import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { logLines, runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

const DAY = 86_400_000;

const shared = usePostgresAndScratch('retention-e2e-');

interface Fixture {
  root: string;
  configPath: string;
  env: Record<string, string>;
  cli: (...args: string[]) => ReturnType<typeof runCli>;
  json: (...args: string[]) => Promise<RunReport>;
}

/** A fresh control database, a root directory and a one-policy JSON config. */
async function fixture(policy: Record<string, unknown> = {}): Promise<Fixture> {
  const dir = await mkdtemp(path.join(shared.scratch, 'case-'));
  const root = path.join(dir, 'root');
  await mkdir(root);
  const configPath = path.join(dir, 'retention.json');
  const config = {
    policies: [
      {
        name: 'temp-files',
        class: 'blobs',
        store: { kind: 'fs', root },
        retention: '30d',
        schedule: '0 * * * *',
        limits: { maxDeleteFraction: 1 },
        ...policy,
      },
    ],
  };
  await writeFile(configPath, JSON.stringify(config));
  const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('e2e') };
  const cli = (...args: string[]) => runCli(['--config', configPath, ...args], { env });
  const json = async (...args: string[]) => {
    const result = await cli(...args, '--json');
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as RunReport;
  };
  return { root, configPath, env, cli, json };
}

const now = Date.now();
const ago = (ms: number) => new Date(now - ms);

async function keysUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

describe('retention CLI end to end', () => {
  it('runs the documented JSON config and prints a report with every DESIGN.md field', async () => {
    const root = '/tmp/retention-demo/temp';
    await mkdir(root, { recursive: true });
    const unique = `e2e-${process.pid}-${Date.now()}`;
    await seedFiles(root, [
      { key: `${unique}/old.tmp`, mtime: ago(2 * 3_600_000) },
      { key: `${unique}/new.tmp`, mtime: ago(60_000) },
    ]);
    const configPath = path.join(shared.scratch, 'documented.json');
    await writeFile(
      configPath,
      `{ "policies": [ { "name": "temp-files", "class": "blobs",
          "store": { "kind": "fs", "root": "/tmp/retention-demo/temp" },
          "retention": "1h", "schedule": "0 * * * *" } ] }`,
    );
    const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('documented') };
    try {
      const result = await runCli(['run', '--config', configPath, '--json', '--force'], { env });
      expect(result.code, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout) as RunReport;
      for (const field of [
        'runId',
        'policy',
        'dataClass',
        'trigger',
        'dryRun',
        'status',
        'scanned',
        'eligible',
        'deleted',
        'failed',
        'held',
        'bytesFreed',
        'startedAt',
        'finishedAt',
        'durationSeconds',
        'backlog',
        'oldestOverdueSeconds',
        'sla',
      ]) {
        expect(report).toHaveProperty(field);
      }
      expect(report).toMatchObject({
        policy: 'temp-files',
        dataClass: 'blobs',
        status: 'completed',
        dryRun: false,
        trigger: 'manual',
        sla: { status: 'ok' },
      });
      expect(existsSync(path.join(root, unique, 'old.tmp'))).toBe(false);
      expect(existsSync(path.join(root, unique, 'new.tmp'))).toBe(true);
      const lines = logLines(result.stderr);
      const runLines = lines.filter((line) => !('_aws' in line));
      expect(runLines.map((line) => line.event)).toEqual(
        expect.arrayContaining(['run_started', 'batch_deleted', 'run_completed']),
      );
      for (const line of runLines) {
        expect(Object.keys(line)).toEqual(
          expect.arrayContaining(['timestamp', 'level', 'event', 'correlation_id', 'policy', 'data_class', 'store']),
        );
      }
      expect(lines.filter((line) => '_aws' in line)).toHaveLength(1);
      const completed = lines.find((line) => line.event === 'run_completed');
      expect(completed).toMatchObject({
        correlation_id: report.runId,
        policy: 'temp-files',
        data_class: 'blobs',
        status: 'completed',
        sla_status: 'ok',
        deleted: report.deleted,
        failed: 0,
        scanned: report.scanned,
      });
      expect(completed).toHaveProperty('bytes_freed');
      expect(completed).toHaveProperty('duration_seconds');
    } finally {
      await rm(path.join(root, unique), { recursive: true, force: true });
    }
  });

  it('deletes exactly what the dry run listed, keeps items at the cutoff, and audits every deletion', async () => {
    const f = await fixture();
    const before = new Date(now - 40 * DAY);
    await seedFiles(f.root, [
      { key: 'a/old-1.bin', mtime: new Date(before.getTime() - 1000) },
      { key: 'a/old-2.bin', mtime: ago(400 * DAY) },
      { key: 'b/at-cutoff.bin', mtime: before },
      { key: 'b/young.bin', mtime: ago(35 * DAY) },
      { key: 'c/recent.bin', mtime: ago(DAY) },
    ]);
    const plan = await f.json('plan', '--list', '--before', before.toISOString());
    expect(plan.dryRun).toBe(true);
    const planned = plan
      .items!.filter((item) => item.outcome === 'would_delete')
      .map((item) => item.key)
      .sort();
    expect(planned).toEqual(['a/old-1.bin', 'a/old-2.bin']);
    // What the live run would free: the two files' sizes ("content of a/old-1.bin", 22 bytes each).
    expect(plan.bytesToFree).toBe(44);
    expect(plan.bytesFreed).toBe(0);
    expect(await keysUnder(f.root)).toHaveLength(5);

    const run = await f.json('run', '--list', '--before', before.toISOString());
    const deleted = run
      .items!.filter((item) => item.outcome === 'deleted')
      .map((item) => item.key)
      .sort();
    expect(deleted).toEqual(planned);
    expect(run.bytesFreed).toBe(plan.bytesToFree);
    expect(run).not.toHaveProperty('bytesToFree');
    expect(await keysUnder(f.root)).toEqual(['b/at-cutoff.bin', 'b/young.bin', 'c/recent.bin']);

    const audit = await f.cli('audit', '--run', run.runId, '--json');
    const records = JSON.parse(audit.stdout) as Array<{
      key: string;
      status: string;
      actor: string;
      rule: string;
      cutoff: string;
    }>;
    expect(records.map((record) => [record.key, record.status]).sort()).toEqual(deleted.map((key) => [key, 'deleted']));
    expect(records[0]!.actor).toMatch(/^cli:/);
    expect(records[0]!.rule).toBe('retention: 30d');
    expect(new Date(records[0]!.cutoff).getTime()).toBe(before.getTime());
  });

  it('--limit deletes the N oldest eligible items first', async () => {
    const f = await fixture();
    await seedFiles(
      f.root,
      Array.from({ length: 6 }, (_, i) => ({ key: `f${i}.log`, mtime: ago((40 + i * 10) * DAY) })),
    );
    const run = await f.json('run', '--limit', '2', '--list');
    expect(run.deleted).toBe(2);
    expect(run.items!.map((item) => item.key).sort()).toEqual(['f4.log', 'f5.log']);
    expect(await keysUnder(f.root)).toEqual(['f0.log', 'f1.log', 'f2.log', 'f3.log']);
  });

  it('pause stops a policy (and --all everything) until resumed', async () => {
    const f = await fixture();
    await seedFiles(f.root, [{ key: 'old.bin', mtime: ago(90 * DAY) }]);
    expect((await f.cli('pause', '--policy', 'temp-files', '--reason', 'incident 42')).code).toBe(0);
    const paused = await f.json('run');
    expect(paused).toMatchObject({ status: 'skipped_paused', deleted: 0 });
    expect(existsSync(path.join(f.root, 'old.bin'))).toBe(true);
    const status = JSON.parse((await f.cli('status', '--json')).stdout);
    expect(status.policies[0].paused).toMatchObject({ scope: 'temp-files', reason: 'incident 42' });

    await f.cli('resume', '--policy', 'temp-files');
    await f.cli('pause', '--all', '--reason', 'kill switch');
    expect((await f.json('run')).status).toBe('skipped_paused');
    await f.cli('resume', '--all');
    expect(await f.json('run')).toMatchObject({ status: 'completed', deleted: 1 });
  });

  it('never deletes held items and counts them as held', async () => {
    const f = await fixture();
    await seedFiles(f.root, [
      { key: 'case-7/a.pdf', mtime: ago(90 * DAY) },
      { key: 'case-7/b.pdf', mtime: ago(90 * DAY) },
      { key: 'single.pdf', mtime: ago(90 * DAY) },
      { key: 'free.pdf', mtime: ago(90 * DAY) },
    ]);
    expect((await f.cli('hold', 'add', '--prefix', 'case-7/', '--reason', 'litigation 7')).code).toBe(0);
    expect(
      (await f.cli('hold', 'add', '--policy', 'temp-files', '--key', 'single.pdf', '--reason', 'audit')).code,
    ).toBe(0);
    const run = await f.json('run', '--list');
    expect(run).toMatchObject({ deleted: 1, held: 3, eligible: 4 });
    expect(
      run
        .items!.filter((item) => item.outcome === 'held')
        .map((item) => item.key)
        .sort(),
    ).toEqual(['case-7/a.pdf', 'case-7/b.pdf', 'single.pdf']);
    expect(await keysUnder(f.root)).toEqual(['case-7/a.pdf', 'case-7/b.pdf', 'single.pdf']);
    const holds = JSON.parse((await f.cli('hold', 'list', '--json')).stdout) as Array<{ id: number; key: string }>;
    const prefixHold = holds.find((hold) => hold.key === 'case-7/')!.id;
    // Every eligible item not deleted has a reason: the hold, in the report, --list and the audit trail.
    expect(run.notDeleted).toEqual(
      expect.arrayContaining([
        { outcome: 'held', cause: `hold #${prefixHold} on prefix "case-7/" (litigation 7)`, count: 2 },
        { outcome: 'held', cause: expect.stringMatching(/^hold #\d+ \(audit\)$/), count: 1 },
      ]),
    );
    expect(run.items!.find((item) => item.key === 'case-7/a.pdf')!.error).toContain(`hold #${prefixHold}`);
    const trail = JSON.parse((await f.cli('audit', '--run', run.runId, '--json')).stdout) as Array<{
      action: string;
      status: string;
      key: string;
      error: string;
    }>;
    expect(trail.filter((record) => record.action === 'hold')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          key: 'case-7/',
          status: 'held',
          error: `2 eligible items kept by hold #${prefixHold}`,
        }),
      ]),
    );

    await f.cli('hold', 'remove', String(holds.find((hold) => hold.key === 'single.pdf')!.id));
    expect(await f.json('run')).toMatchObject({ deleted: 1, held: 2 });
  });

  it('two concurrent runs of one policy: exactly one deletes, the other reports skipped_locked', async () => {
    const f = await fixture({ batchSize: 10 });
    await seedFiles(
      f.root,
      Array.from({ length: 2000 }, (_, i) => ({ key: `bulk/${String(i).padStart(5, '0')}.tmp`, mtime: ago(60 * DAY) })),
    );
    const [first, second] = await Promise.all([f.json('run'), f.json('run')]);
    expect([first.status, second.status].sort()).toEqual(['completed', 'skipped_locked']);
    expect(first.deleted + second.deleted).toBe(2000);
    expect(await keysUnder(f.root)).toEqual([]);
  });

  it('aborts before the first deletion when over the safety limits (exit 3), unless --force', async () => {
    const f = await fixture({ limits: { maxDeletesPerRun: 3, maxDeleteFraction: 1 } });
    await seedFiles(
      f.root,
      Array.from({ length: 5 }, (_, i) => ({ key: `x${i}`, mtime: ago(60 * DAY) })),
    );
    const abortedRun = await f.cli('run', '--json');
    expect(abortedRun.code, abortedRun.stderr).toBe(3);
    const aborted = JSON.parse(abortedRun.stdout) as RunReport;
    expect(aborted).toMatchObject({
      status: 'aborted_limit',
      deleted: 0,
      limits: { planned: 5, maxDeletesPerRun: 3 },
      sla: { status: 'breach' },
    });
    expect(await keysUnder(f.root)).toHaveLength(5);
    expect((await f.json('run', '--limit', '3')).deleted).toBe(3);
    expect((await f.json('run', '--force')).deleted).toBe(2);
  });

  it('--limit never walks around the fraction guard: a slice of a mostly-eligible root is refused', async () => {
    const f = await fixture({ limits: { maxDeletesPerRun: 1000, maxDeleteFraction: 0.5 } });
    await seedFiles(f.root, [
      ...Array.from({ length: 9 }, (_, i) => ({ key: `old${i}`, mtime: ago(60 * DAY) })),
      { key: 'young', mtime: ago(DAY) },
    ]);
    for (const command of ['plan', 'run']) {
      const limited = await f.cli(command, '--limit', '2', '--json', '--list');
      expect(limited.code, limited.stderr).toBe(3);
      const report = JSON.parse(limited.stdout) as RunReport;
      expect(report).toMatchObject({ status: 'aborted_limit', deleted: 0 });
      expect(report.error?.message).toContain('9 of 10 items (90%) are eligible');
      expect(report.items ?? []).toEqual([]);
    }
    expect(await keysUnder(f.root)).toHaveLength(10);
  });

  it('bad input exits 2 naming the field and the fix, and changes nothing', async () => {
    const f = await fixture({ retention: '30' });
    await seedFiles(f.root, [{ key: 'old.bin', mtime: ago(400 * DAY) }]);
    const bad = await f.cli('run');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('error: policies[0].retention: "30" has no unit (add one: "30d"');
    expect(bad.stdout).toBe('');

    const missingRoot = await fixture({ store: { kind: 'fs', root: path.join(shared.scratch, 'does-not-exist') } });
    const missing = await missingRoot.cli('run', '--json');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: policies\[0\]\.store\.root: .*does-not-exist does not exist/);

    // A bad second policy stops `run --all` before the first one deletes anything.
    const pair = await fixture();
    await seedFiles(pair.root, [{ key: 'old.bin', mtime: ago(400 * DAY) }]);
    const config = JSON.parse(await readFile(pair.configPath, 'utf8')) as { policies: Array<Record<string, unknown>> };
    config.policies.push({
      ...config.policies[0],
      name: 'second',
      store: { kind: 'fs', root: path.join(shared.scratch, 'also-missing') },
    });
    await writeFile(pair.configPath, JSON.stringify(config));
    const both = await pair.cli('run', '--all');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^error: policies\[1\]\.store\.root: /);
    expect(await keysUnder(pair.root)).toEqual(['old.bin']);

    const good = await fixture();
    await seedFiles(good.root, [{ key: 'old.bin', mtime: ago(400 * DAY) }]);
    const badFlags = [
      ['--limit', 'ten'],
      ['--before', 'yesterday'],
      ['--before', '2024-02-30'],
      ['--budget', '5'],
      ['--budget', '1ms'],
      ['--policy', 'nope'],
    ];
    // Independent and touching nothing: checked side by side.
    const results = await Promise.all(badFlags.map((flag) => good.cli('run', ...flag)));
    for (const [index, result] of results.entries()) {
      expect(result.code, badFlags[index]!.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/^error: --(limit|before|budget|policy): /);
    }
    expect(await keysUnder(good.root)).toEqual(['old.bin']);
    const history = JSON.parse((await good.cli('history', '--json')).stdout);
    expect(history).toEqual([]);
  });
});
