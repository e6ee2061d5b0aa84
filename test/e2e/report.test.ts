import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import type { ComplianceReport } from '../../lib/reports/compliance.ts';
import { runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

const DAY = 86_400_000;
const shared = usePostgresAndScratch('retention-report-');

describe('retention report', () => {
  it('reports what a run deleted and a compliant verdict; bad input exits 2 naming the flag', async () => {
    const root = path.join(shared.scratch, 'root');
    await mkdir(root);
    const configPath = path.join(shared.scratch, 'retention.json');
    const policy = {
      class: 'blobs',
      store: { kind: 'fs', root },
      retention: '30d',
      schedule: '0 * * * *',
      limits: { maxDeleteFraction: 1 },
    };
    await writeFile(
      configPath,
      JSON.stringify({
        policies: [
          { name: 'temp-files', ...policy },
          { name: 'archive', ...policy, enabled: false },
        ],
      }),
    );
    const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('report') };
    const cli = (...args: string[]) => runCli(['--config', configPath, ...args], { env });
    await seedFiles(root, [
      { key: 'old-1.bin', mtime: new Date(Date.now() - 40 * DAY), content: 'x'.repeat(10) },
      { key: 'old-2.bin', mtime: new Date(Date.now() - 90 * DAY), content: 'y'.repeat(20) },
      { key: 'young.bin', mtime: new Date(Date.now() - DAY) },
    ]);
    expect((await cli('plan', '--policy', 'temp-files')).code).toBe(0);
    const ran = await cli('run', '--policy', 'temp-files', '--json');
    expect(ran.code, ran.stderr).toBe(0);
    const run = JSON.parse(ran.stdout) as RunReport;

    const result = await cli('report', '--json');
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as ComplianceReport;
    expect(new Date(report.until).getTime() - new Date(report.since).getTime()).toBe(30 * DAY);
    expect(report.policies).toMatchObject([
      {
        policy: 'temp-files',
        verdict: 'compliant',
        reasons: [],
        runs: { total: 1, completed: 1 }, // the plan (dry run) is not counted
        totals: { deleted: 2, failed: 0, bytes_freed: 30 },
        sla: { ok: 1, warning: 0, breach: 0 },
        latest_run: { run_id: run.runId, status: 'completed', backlog: 0 },
        pending_intents: 0,
      },
      { policy: 'archive', verdict: 'disabled', runs: { total: 0 } },
    ]);

    const text = await cli('report', '--policy', 'temp-files', '--since', '7d');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^temp-files +compliant +1 +2 +0 +30 B +0 +0 /m);
    expect(text.stdout).toContain('1 compliant, 0 need attention, 0 disabled');

    for (const [args, flag] of [
      [['--since', 'nonsense'], '--since'],
      [['--policy', 'nope'], '--policy'],
    ] as const) {
      const bad = await cli('report', ...args);
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stderr).toMatch(new RegExp(`^error: ${flag}: `));
      expect(bad.stdout).toBe('');
    }
  });
});
