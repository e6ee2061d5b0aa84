import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { runCli } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { proxyAddress, startNeonProxy } from '../support/neonProxy.ts';

/** The issue's `documents` policy, run through the CLI against a real table. */
const shared = usePostgresAndScratch('retention-rows-e2e-');

const documentsPolicy = (url: string, overrides: Record<string, unknown> = {}) => ({
  name: 'documents',
  class: 'rows',
  schedule: '0 2 * * *',
  store: { kind: 'postgres', url },
  table: 'public.documents',
  timestamp: 'created_at',
  retention: {
    by: 'purpose_code',
    default: '30d',
    rules: { 'System Testing': '24h', General: '30d', Financial: '1y', Legal: '7y', Medical: '10y' },
  },
  limits: { maxDeleteFraction: 1 },
  ...overrides,
});

async function documentsDatabase(options: { byPurpose?: boolean } = {}): Promise<string> {
  const url = await shared.server.createDatabase('documents');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE documents (id bigserial PRIMARY KEY, purpose_code text, created_at timestamptz NOT NULL, title text)`,
    );
    await client.query(`CREATE INDEX documents_created_at ON documents (created_at, id)`);
    if (options.byPurpose)
      await client.query(`CREATE INDEX documents_purpose ON documents (purpose_code, created_at, id)`);
    // (purpose, age in days): which of them are past their purpose's retention.
    await client.query(
      `INSERT INTO documents (purpose_code, created_at, title)
       SELECT purpose, now() - make_interval(days => age), purpose || ' ' || age
       FROM (VALUES ('System Testing', 2), ('System Testing', 0), ('General', 40), ('General', 10),
                    ('Financial', 400), ('Financial', 200), ('Legal', 3000), ('Legal', 2000),
                    ('Medical', 4000), ('Medical', 3000), ('Unknown', 40), (NULL, 40)) AS seed(purpose, age)`,
    );
  } finally {
    await client.end();
  }
  return url;
}

async function titles(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ title: string }>('SELECT title FROM documents ORDER BY title')).rows.map(
      (row) => row.title,
    );
  } finally {
    await client.end();
  }
}

async function cli(policy: Record<string, unknown>, ...args: string[]) {
  return cliWith(await shared.server.createDatabase('control'), policy, ...args);
}

async function cliWith(controlUrl: string, policy: Record<string, unknown>, ...args: string[]) {
  const configPath = path.join(shared.scratch, `rows-${Date.now()}-${Math.random()}.json`);
  await writeFile(configPath, JSON.stringify({ policies: [policy] }));
  return runCli(['--config', configPath, ...args], { env: { RETENTION_DATABASE_URL: controlUrl } });
}

describe('rows policy through the CLI', () => {
  it.each([false, true])(
    'deletes per purpose code exactly what the dry run listed, with database-clock cutoffs (purpose index: %s)',
    async (byPurpose) => {
      const url = await documentsDatabase({ byPurpose });
      const control = await shared.server.createDatabase('control');
      const plan = await cliWith(control, documentsPolicy(url), 'plan', '--list', '--json');
      expect(plan.code, plan.stderr).toBe(0);
      const planned = (JSON.parse(plan.stdout) as RunReport).items!.map((item) => item.key).sort();

      const run = await cliWith(control, documentsPolicy(url), 'run', '--list', '--json');
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as RunReport;
      expect(report).toMatchObject({ status: 'completed', dataClass: 'rows', deleted: 7 });
      expect(report.items!.map((item) => item.key).sort()).toEqual(planned);
      // Unknown and NULL purposes fall back to the 30d default.
      expect(await titles(url)).toEqual([
        'Financial 200',
        'General 10',
        'Legal 2000',
        'Medical 3000',
        'System Testing 0',
      ]);
      expect(run.stderr).toContain('"clock_skew_ms"');
      // Without the (purpose, timestamp) index every run reads all older rows: the run says so; with it, purposes are swept apart.
      expect(run.stderr.includes('purpose_without_index')).toBe(!byPurpose);
      // No linked files or children: each batch is one statement (select, lock, delete, audit).
      expect(run.stderr).toContain('"one_statement":true');
      const audit = await cliWith(control, documentsPolicy(url), 'audit', '--run', report.runId, '--json');
      expect(
        (JSON.parse(audit.stdout) as Array<{ key: string; status: string }>)
          .map((record) => [record.key, record.status])
          .sort(),
      ).toEqual(planned.map((key) => [key, 'deleted']));
    },
  );

  it('archives deleted rows in the deleting statement and restores a run from the archive', async () => {
    const url = await documentsDatabase();
    const control = await shared.server.createDatabase('control');
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query('CREATE TABLE documents_archive (LIKE documents)');
      const archived = documentsPolicy(url, { archive: { table: 'public.documents_archive' } });
      const run = await cliWith(control, archived, 'run', '--json');
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as RunReport;
      expect(report.deleted).toBe(7);
      expect((await admin.query('SELECT count(*)::int AS n FROM documents_archive')).rows[0].n).toBe(7);

      const restore = await cliWith(control, archived, 'restore', '--run', report.runId, '--json');
      expect(restore.code, restore.stderr).toBe(0);
      expect(await titles(url)).toHaveLength(12);
    } finally {
      await admin.end();
    }
  });

  it('drops whole expired partitions, audits each with its row count, and sweeps the boundary by rows', async () => {
    const url = await shared.server.createDatabase('events');
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(
        'CREATE TABLE events (id bigint, created_at timestamptz NOT NULL, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)',
      );
      await admin.query('CREATE INDEX ON events (created_at, id)');
      // Monthly partitions from 6 months ago to next month; 4 rows each, spread over the month.
      const month = (offset: number) => `date_trunc('month', now()) + interval '${offset} month'`;
      for (let offset = -6; offset <= 0; offset += 1) {
        const name = `events_m${offset + 6}`;
        await admin.query(
          `DO $$ BEGIN EXECUTE format('CREATE TABLE ${name} PARTITION OF events FOR VALUES FROM (%L) TO (%L)', ${month(offset)}, ${month(offset + 1)}); END $$`,
        );
        await admin.query(
          `INSERT INTO events SELECT ${(offset + 6) * 10} + g, ${month(offset)} + g * interval '6 days' FROM generate_series(0, 3) g WHERE ${month(offset)} + g * interval '6 days' < now()`,
        );
      }
      const total = (await admin.query('SELECT count(*)::int AS n FROM events')).rows[0].n as number;
      const control = await shared.server.createDatabase('control');
      const policy = {
        name: 'events',
        class: 'rows',
        schedule: '0 * * * *',
        store: { kind: 'postgres', url },
        table: 'public.events',
        timestamp: 'created_at',
        retention: '90d',
        limits: { maxDeleteFraction: 1 },
      };
      const expected = (
        await admin.query(`SELECT count(*)::int AS n FROM events WHERE created_at < now() - interval '90 days'`)
      ).rows[0].n as number;

      const run = await cliWith(control, policy, 'run', '--json');
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as RunReport;
      expect(report).toMatchObject({ status: 'completed', deleted: expected });
      expect((await admin.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(total - expected);
      expect(
        (await admin.query(`SELECT count(*)::int AS n FROM events WHERE created_at < now() - interval '90 days'`))
          .rows[0].n,
      ).toBe(0);

      const audit = await cliWith(control, policy, 'audit', '--run', report.runId, '--json');
      const records = JSON.parse(audit.stdout) as Array<{ action: string; key: string; rule: string }>;
      const partitions = records.filter((record) => record.action === 'partition_drop');
      expect(partitions.length).toBeGreaterThanOrEqual(2);
      expect(
        partitions.every(
          (record) => /^public\.events_m\d$/.test(record.key) && /^partition of 4 rows/.test(record.rule),
        ),
      ).toBe(true);
      const rowRecords = records.filter((record) => record.action === 'delete').length;
      expect(rowRecords + partitions.length * 4).toBe(expected);
    } finally {
      await admin.end();
    }
  });

  it('runs through the Neon serverless driver (via a local wsproxy) exactly as through node-postgres', async () => {
    const proxy = await startNeonProxy();
    try {
      const url = await documentsDatabase();
      const configPath = path.join(shared.scratch, `rows-neon-${Date.now()}.json`);
      const policy = documentsPolicy(url);
      await writeFile(
        configPath,
        JSON.stringify({
          control: { kind: 'postgres', url: await shared.server.createDatabase('control'), driver: 'neon' },
          policies: [{ ...policy, store: { ...policy.store, driver: 'neon' } }],
        }),
      );
      const run = await runCli(['--config', configPath, 'run', '--json'], {
        env: { RETENTION_NEON_WSPROXY: proxyAddress(proxy) },
      });
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout) as RunReport).toMatchObject({ status: 'completed', deleted: 7 });
      expect(await titles(url)).toEqual([
        'Financial 200',
        'General 10',
        'Legal 2000',
        'Medical 3000',
        'System Testing 0',
      ]);
      expect(proxy.connections).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it('a missing table or column is a config error naming it (exit 2), and nothing is touched', async () => {
    const url = await documentsDatabase();
    const badTable = await cli(documentsPolicy(url, { table: 'public.documentz' }), 'run');
    expect(badTable.code).toBe(2);
    expect(badTable.stderr).toMatch(/table.*documentz/);
    const badColumn = await cli(documentsPolicy(url, { timestamp: 'created' }), 'run');
    expect(badColumn.code).toBe(2);
    expect(badColumn.stderr).toMatch(/timestamp.*created/);
    expect(await titles(url)).toHaveLength(12);
  });
});
