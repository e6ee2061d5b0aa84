import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { acquireEmbeddedPostgres } from '../../lib/control/local/embedded.ts';
import { PostgresControlStore } from '../../lib/control/postgres/store.ts';
import type { RunReport } from '../../lib/core/types.ts';
import type { ComplianceReport } from '../../lib/reports/complianceRead.ts';
import { createSqlClient } from '../../lib/sql/client.ts';
import { runCli, seedFiles } from '../support/cli.ts';
import { useFreshHomes } from '../support/embeddedHome.ts';
import { evidenceSetup, killAfterBatches, OLD } from '../support/evidence.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * `retention report` through the CLI on the embedded control store: after runs, a run killed
 * mid-way whose intents the next run resolves, a restore and rows deleted in one statement (audited
 * only in the rows database), every policy's `deleted` equals its audit records with outcome
 * deleted, with no finding; a history row edited behind the tool's back is a finding.
 */
const shared = usePostgresAndScratch('retention-report-');
const newHome = useFreshHomes('retention-report-home-');
const setup = async () => evidenceSetup(shared, await newHome(), { files: 12, bulk: 40, batchSize: 5 });

/** What a run killed mid-batch leaves: its history `running`, its intents `pending`. */
async function crashedWithIntents(url: string, root: string, keys: string[]): Promise<void> {
  const control = new PostgresControlStore(createSqlClient({ url }));
  try {
    const runId = 'crashed-with-intents';
    await control.startRun({ runId, policy: 'files', dryRun: false, startedAt: new Date() });
    await control.recordIntents(
      keys.map((key) => ({
        runId,
        policy: 'files',
        store: `fs:${root}`,
        key,
        itemTimestamp: OLD,
        rule: 'retention: 30d',
        cutoff: new Date(Date.now() - 30 * 86_400_000),
        actor: 'cli:test',
        trigger: 'manual',
        action: 'delete',
      })),
    );
  } finally {
    await control.close();
  }
}

async function query<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** What the trails hold, counted apart from the tool: records with outcome deleted, and rows in row_audit. */
async function auditDeleted(control: string, rows: string): Promise<Record<string, number>> {
  const recorded = await query<{ policy: string; n: string }>(
    control,
    `SELECT policy, count(*) AS n FROM retention.audit WHERE action = 'delete' AND status = 'deleted' GROUP BY policy`,
  );
  const [inRows] = await query<{ n: string }>(
    rows,
    `SELECT COALESCE(sum(row_count), 0) AS n FROM retention.row_audit WHERE policy = 'docs' AND action = 'delete'`,
  );
  return { ...Object.fromEntries(recorded.map((row) => [row.policy, Number(row.n)])), docs: Number(inRows!.n) };
}

describe('retention report', () => {
  it('reconciles runs, a crash, a restore and one-statement sweeps with the audit trail; an edited history is a finding', async () => {
    const { home, files, rows, config, env, cli } = await setup();
    const embedded = await acquireEmbeddedPostgres(home, { ...process.env, ...env });
    try {
      const from = new Date(Date.now() - 60_000).toISOString();
      await killAfterBatches(config, env, 'bulk', 2);
      expect((await cli('lease', 'break', 'bulk')).code).toBe(0);
      const recovered = await cli('run', '--policy', 'bulk');
      expect(recovered.code, recovered.stderr).toBe(0);
      expect(recovered.stderr).toContain('crashed_runs_closed');
      // A kill between an intent and its resolution, made certain: a run that recorded two intents,
      // deleted one file and died. The next run of files resolves them (deleted; abandoned: still there).
      await crashedWithIntents(embedded.url, files, ['f0.pdf', 'f1.pdf']);
      await rm(path.join(files, 'f0.pdf'));
      const ran = await cli('run', '--policy', 'files', '--policy', 'docs', '--json');
      expect(ran.code, ran.stderr).toBe(0);
      expect(ran.stderr).toMatch(/"event":"intents_recovered".*"deleted":1,"abandoned":1/);
      const [filesRun] = JSON.parse(ran.stdout) as RunReport[];
      expect((await cli('restore', '--run', filesRun!.runId)).code).toBe(0);
      await seedFiles(files, [{ key: 'later.pdf', mtime: OLD }]);
      expect((await cli('run', '--all')).code).toBe(0);
      const to = new Date(Date.now() + 3_600_000).toISOString();

      const result = await cli('report', '--json', '--from', from, '--to', to);
      expect(result.code, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout) as ComplianceReport;
      const counted = await auditDeleted(embedded.url, rows);
      // bulk: its 40 files, those of the killed run confirmed by the next run's recovery.
      // files: the crashed run's one, 11 by its next run, then one more (the 11 restored are held).
      expect(counted).toEqual({ bulk: 40, files: 1 + 11 + 1, docs: 9 });
      const byPolicy = Object.fromEntries(report.policies.map((policy) => [policy.policy, policy]));
      for (const policy of ['files', 'bulk', 'docs']) {
        expect(byPolicy[policy]!.deleted, policy).toBe(counted[policy]);
        expect(byPolicy[policy]!.reconciliation.findings, policy).toEqual([]);
      }
      expect(byPolicy.bulk).toMatchObject({
        verdict: 'compliant',
        governance: { lease_broken: 1 },
        reconciliation: { unreported: [{ status: 'crashed' }] },
        end: { backlog: 0 },
      });
      expect(byPolicy.bulk!.reconciliation.unreported[0]!.audit_deleted).toBeGreaterThan(0);
      expect(byPolicy.files).toMatchObject({
        verdict: 'compliant',
        governance: { restored: 1 },
        failed: 0,
        end: { held: 11, unclassified: 0, backlog: 0 },
        reconciliation: { unreported: [{ run_id: 'crashed-with-intents', status: 'crashed', audit_deleted: 1 }] },
      });
      expect(byPolicy.docs!.purposes).toEqual([{ purpose: 'retention', deleted: 9, failed: 0, kept: 0, pending: 0 }]);
      expect(report.chains).toMatchObject({ intact: true, problem_count: 0 });
      expect(report.summary).toEqual({ compliant: 3, attention: 0, disabled: 0, findings: 0 });

      const html = await cli('report', '--html', '--from', from, '--to', to);
      expect(html.code, html.stderr).toBe(0);
      expect(html.stdout).toMatch(/^<!doctype html>/);
      expect(html.stdout).toContain('<svg');
      expect(html.stdout).toContain('Audit chains intact');
      // Self-contained: nothing fetched (the SVG namespace is a name, not a request).
      expect(html.stdout.replaceAll('xmlns="http://www.w3.org/2000/svg"', '')).not.toMatch(
        /src=|href=|<script|https?:/,
      );
      const csv = await cli('report', '--csv', '--from', from, '--to', to);
      expect(csv.stdout.split('\n')[0]).toBe(
        'policy,purpose,verdict,deleted,failed,failure_rate_percent,held,unclassified,backlog,oldest_overdue_seconds,sla_breaches,missed_runs,governance_actions,findings',
      );
      expect(csv.stdout).toContain(`\nfiles,*,compliant,${counted.files},0,0,`);

      // History edited behind the tool's back: the report says which run and by how much.
      await query(
        embedded.url,
        `UPDATE retention.runs SET report = jsonb_set(report, '{deleted}', '3') WHERE run_id = $1`,
        [filesRun!.runId],
      );
      const edited = await cli('report', '--from', from, '--to', to, '--strict');
      expect(edited.code).toBe(1);
      expect(edited.stdout).toContain(
        `reconciliation: run ${filesRun!.runId}: history says 3 deleted, the audit trail has 11 record(s) with outcome deleted`,
      );
      expect(edited.stdout).toMatch(/^files +attention +13 /m);
      expect(edited.stdout).toContain('1 reconciliation finding(s)');
    } finally {
      await embedded.release();
    }
  }, 150_000); // A dozen CLI runs, a kill and a restore: ~35 s alone, more beside other test files.

  it('refuses bad periods and formats with exit 2, naming the flag', async () => {
    const configPath = path.join(shared.scratch, 'bad-input.json');
    const root = path.join(shared.scratch, 'bad-input-root');
    await mkdir(root);
    await writeFile(
      configPath,
      JSON.stringify({
        policies: [
          {
            name: 'temp',
            class: 'blobs',
            store: { kind: 'fs', root },
            retention: '30d',
            schedule: '0 * * * *',
          },
        ],
      }),
    );
    const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('report_input') };
    for (const [args, flag] of [
      [['--month', '2026-13'], '--month'],
      [['--from', '2026-11-01'], '--to'],
      [['--from', '2026-12-01', '--to', '2026-11-01'], '--to'],
      [['--month', '2026-11', '--from', '2026-11-01'], '--from'],
      [['--since', 'nonsense'], '--since'],
      [['--json', '--html'], '--html'],
    ] as const) {
      const bad = await runCli(['--config', configPath, 'report', ...args], { env });
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stderr, args.join(' ')).toMatch(new RegExp(`^error: ${flag}: `));
      expect(bad.stdout).toBe('');
    }
    const month = await runCli(['--config', configPath, 'report', '--month', '2026-11', '--json'], { env });
    expect(month.code, month.stderr).toBe(0);
    expect(JSON.parse(month.stdout)).toMatchObject({
      period: { from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z', label: '2026-11' },
      // Never ran in November: each of its 720 hourly runs was missed, and that is not compliant.
      policies: [{ policy: 'temp', verdict: 'attention', deleted: 0, missed_runs: { count: 720 } }],
    });
  });
});
