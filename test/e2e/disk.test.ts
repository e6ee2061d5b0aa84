import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { statfsProbe } from '../../lib/disk/probe.ts';
import { BIN, logLines, runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * `retention disk` on the real file system (statfs; the thresholds are set around what the disk
 * really holds, so the levels are known) and `retention run --emergency` on real files.
 */
const HOUR = 3_600_000;
const shared = usePostgresAndScratch('retention-disk-');

async function fixture(policy: Record<string, unknown>, disk: Record<string, unknown> = {}) {
  const dir = await mkdtemp(path.join(shared.scratch, 'case-'));
  const root = path.join(dir, 'root');
  await mkdir(root);
  const alertFile = path.join(dir, 'alerts.json');
  const configPath = path.join(dir, 'retention.json');
  const config = {
    disk: { alertFile, ...disk },
    policies: [
      { name: 'logs', class: 'blobs', store: { kind: 'fs', root }, retention: '30d', schedule: '0 * * * *', ...policy },
    ],
  };
  await writeFile(configPath, JSON.stringify(config));
  const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('disk') };
  const cli = (...args: string[]) => runCli(['--config', configPath, ...args], { env });
  return { root, alertFile, configPath, env, cli };
}

describe('retention disk', () => {
  it('levels from statfs: ok is exit 0; critical is exit 6, alerted and written to the alert file', async () => {
    const used = (await statfsProbe.usage(shared.scratch)).usedPercent;
    // Lines well away from what the disk holds: the level cannot change while the test runs.
    expect(used).toBeLessThan(99);
    const ok = await fixture({}, { warning: 99.5, critical: 99.9 });
    const fine = await ok.cli('disk', '--json');
    expect(fine.code, fine.stderr).toBe(0);
    expect(JSON.parse(fine.stdout)).toMatchObject({ filesystems: [{ level: 'ok', policies: ['logs'] }], alerts: [] });

    const full = await fixture({}, { warning: 0.1, critical: 0.2 });
    const critical = await full.cli('disk');
    expect(critical.code, critical.stderr).toBe(6);
    expect(critical.stdout).toMatch(/critical\s+logs/);
    expect(critical.stdout).toContain('alert: disk critical:');
    expect(logLines(critical.stderr).filter((line) => line.event === 'disk_alert')).toHaveLength(1);
    const file = JSON.parse(await readFile(full.alertFile, 'utf8'));
    expect(file).toMatchObject({ filesystems: [{ level: 'critical' }], recentAlerts: [{ level: 'critical' }] });
  });
});

describe('retention run --emergency', () => {
  it('keeps exactly the newest N files (held ones too), says why, and records the emergency rule', async () => {
    const now = Date.now();
    const { root, cli } = await fixture({ emergency: { keepNewest: 3 }, limits: { maxDeleteFraction: 1 } });
    await seedFiles(
      root,
      Array.from({ length: 8 }, (_, index) => ({ key: `app-${index}.log`, mtime: new Date(now - (8 - index) * HOUR) })),
    );
    const hold = await cli('hold', 'add', '--key', 'app-1.log', '--reason', 'incident 42');
    expect(hold.code, hold.stderr).toBe(0);

    const plan = await cli('plan', '--policy', 'logs', '--emergency', '--json', '--list');
    expect(plan.code, plan.stderr).toBe(0);
    const planned = JSON.parse(plan.stdout) as RunReport;
    expect(planned.items?.filter((entry) => entry.outcome === 'would_delete')).toHaveLength(4);

    const run = await cli('run', '--policy', 'logs', '--emergency', '--json');
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as RunReport;
    expect(report).toMatchObject({ status: 'completed', deleted: 4, held: 1, emergency: { reason: 'operator' } });
    expect((await readdir(root)).sort()).toEqual(['app-1.log', 'app-5.log', 'app-6.log', 'app-7.log']);
    const audit = await cli('audit', '--run', report.runId, '--json');
    const rules = new Set((JSON.parse(audit.stdout) as Array<{ rule: string; action: string }>).map((r) => r.rule));
    expect(rules).toContain('emergency: keep newest 3');
  });

  it('a policy without emergency rules is bad input (exit 2), nothing touched', async () => {
    const { root, cli } = await fixture({});
    await seedFiles(root, [{ key: 'a.log', mtime: new Date(Date.now() - HOUR) }]);
    const result = await cli('run', '--policy', 'logs', '--emergency');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('error: policies[0].emergency: logs has no emergency rules');
    expect(await readdir(root)).toEqual(['a.log']);
  });
});

describe('retention daemon on a critical disk', () => {
  it('alerts and runs the emergency rules at its first check (the disk stays over its tiny lines: in full)', async () => {
    const now = Date.now();
    // Never scheduled in this test (1 January), never caught up (never ran): only the disk check deletes.
    const { root, configPath, env, alertFile } = await fixture(
      { schedule: '0 0 1 1 *', emergency: { keepNewest: 2 }, limits: { maxDeleteFraction: 1 } },
      { warning: 0.1, critical: 0.2 },
    );
    await seedFiles(
      root,
      Array.from({ length: 6 }, (_, index) => ({ key: `c-${index}.jpg`, mtime: new Date(now - (6 - index) * HOUR) })),
    );
    const child = spawn(process.execPath, [BIN, 'daemon', '--config', configPath], {
      env: { ...process.env, ...env, RETENTION_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit');
    const events = (name: string) => logLines(stderr).filter((line) => line.event === name);
    for (let waited = 0; events('emergency_finished').length === 0; waited += 100) {
      if (child.exitCode !== null || waited > 50_000) throw new Error(`daemon: no emergency run; its log:\n${stderr}`);
      await sleep(100);
    }
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code, stderr).toBe(0);
    expect(events('disk_alert')).toMatchObject([{ level: 'error', disk_level: 'critical', policies: ['logs'] }]);
    expect(events('emergency_finished')).toMatchObject([{ policy: 'logs', status: 'completed', deleted: 4 }]);
    expect(events('run_completed')).toMatchObject([{ emergency: { reason: 'disk_critical' }, deleted: 4 }]);
    expect((await readdir(root)).sort()).toEqual(['c-4.jpg', 'c-5.jpg']);
    expect(JSON.parse(await readFile(alertFile, 'utf8'))).toMatchObject({ recentAlerts: [{ level: 'critical' }] });
  });
});
