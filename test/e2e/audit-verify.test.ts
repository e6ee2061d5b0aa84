import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { acquireEmbeddedPostgres } from '../../lib/control/local/embedded.ts';
import type { RunReport } from '../../lib/core/types.ts';
import type { VerifyReport } from '../../lib/reports/auditVerify.ts';
import { seedFiles } from '../support/cli.ts';
import { useFreshHomes } from '../support/embeddedHome.ts';
import { evidenceSetup, killAfterBatches, OLD } from '../support/evidence.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * `retention audit verify` through the CLI on the embedded control store (invariant 13): a trail
 * written by many runs, a run killed mid-way and recovered, a restore, and rows deleted in one
 * statement verifies (exit 0); a record or a row batch changed behind the tool's back makes it
 * exit 5 naming the first one.
 */
const shared = usePostgresAndScratch('retention-verify-e2e-');
const newHome = useFreshHomes('retention-verify-home-');
const setup = async () => evidenceSetup(shared, await newHome(), { files: 25, bulk: 60, batchSize: 10 });

async function newestRecord(url: string, policy: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>('SELECT max(id) AS id FROM retention.audit WHERE policy = $1', [
      policy,
    ]);
    return Number(rows[0]!.id);
  } finally {
    await client.end();
  }
}

/** A statement against a table of the trail as its owner would run it: the append-only trigger off for it. */
async function asOwner(url: string, table: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(`ALTER TABLE ${table} DISABLE TRIGGER append_only`);
    await client.query(statement);
    await client.query(`ALTER TABLE ${table} ENABLE ALWAYS TRIGGER append_only`);
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

describe('retention audit verify', () => {
  it('verifies a trail of many runs, a crash and a restore (exit 0), and names what was changed (exit 5)', async () => {
    const { home, files, rows, config, env, cli } = await setup();
    // The test holds the embedded server: the CLIs share it, and the test can reach its tables.
    const embedded = await acquireEmbeddedPostgres(home, { ...process.env, ...env });
    try {
      await killAfterBatches(config, env, 'bulk', 2);
      const broken = await cli('lease', 'break', 'bulk');
      expect(broken.code, broken.stderr).toBe(0);
      const recovered = await cli('run', '--policy', 'bulk', '--json');
      expect(recovered.code, recovered.stderr).toBe(0);
      expect(recovered.stderr).toContain('crashed_runs_closed');

      const deleted = await cli('run', '--policy', 'files', '--policy', 'docs', '--json');
      expect(deleted.code, deleted.stderr).toBe(0);
      const [filesRun, docsRun] = JSON.parse(deleted.stdout) as RunReport[];
      expect(filesRun).toMatchObject({ deleted: 25, auditChain: { control: { chain: 'files' } } });
      expect(docsRun).toMatchObject({ deleted: 9, auditChain: { store: { chain: 'docs', seq: 3 } } });
      // The heads go out with the run's log line too (anchoring outside the database).
      expect(deleted.stderr).toMatch(/"event":"run_completed".*"audit_chain":\{"control":\{"chain":"files"/);
      expect((await cli('restore', '--run', filesRun!.runId)).code).toBe(0);
      await seedFiles(files, [{ key: 'later.pdf', mtime: OLD }]);
      expect((await cli('run', '--all')).code).toBe(0);

      const intact = await cli('audit', 'verify', '--json');
      expect(intact.code, intact.stderr).toBe(0);
      const report = JSON.parse(intact.stdout) as VerifyReport;
      expect(report.problems).toEqual([]);
      expect(report.verified.batches).toBe(3);
      // bulk's 60 intents and the 25 + 1 of files, their restores among the events.
      expect(report.verified.records).toBeGreaterThanOrEqual(60 + 26 + 25);

      const victim = await newestRecord(embedded.url, 'files');
      await asOwner(embedded.url, 'retention.audit', `UPDATE retention.audit SET key = 'forged' WHERE id = ${victim}`);
      await asOwner(rows, 'retention.row_audit', "UPDATE retention.row_audit SET keys[1] = '0' WHERE seq = 2");
      const altered = await cli('audit', 'verify');
      expect(altered.code).toBe(5);
      expect(altered.stdout).toMatch(
        /^control store \(embedded PostgreSQL in .*\s+files\s+\d+\s+\d+\s+seq \d+ [0-9a-f]{12}/m,
      );
      expect(altered.stdout).toContain(`ALTERED: control store, policy files: record ${victim} (`);
      const json = JSON.parse((await cli('audit', 'verify', '--json')).stdout) as VerifyReport;
      expect(json).toMatchObject({ intact: false, problemCount: 2 });
      expect(json.problems.map((problem) => [problem.trail, problem.kind, problem.recordId ?? problem.seq])).toEqual([
        ['control store', 'changed', victim],
        ['retention.row_audit of docs', 'changed', 2],
      ]);
      // One policy at a time: bulk was not touched.
      expect((await cli('audit', 'verify', '--policy', 'bulk')).code).toBe(0);
    } finally {
      await embedded.release();
    }
  });
});
