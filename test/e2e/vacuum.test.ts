import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { runCli } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * Database care (issue 15): a rows run that deleted enough of its table vacuums it, outside the
 * deleting transactions and within the budget; below the share, or as a role that cannot, it does not.
 */
const shared = usePostgresAndScratch('retention-vacuum-');

/** `events`: `expired` rows 90 days old and `young` rows of today. */
async function eventsTable(expired: number, young: number): Promise<{ url: string; admin: pg.Client }> {
  const url = await shared.server.createDatabase('vacuum');
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  // Autovacuum would race the run for the dead tuples this test counts.
  await admin.query(
    'CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL) WITH (autovacuum_enabled = off)',
  );
  await admin.query('CREATE INDEX events_created_at ON events (created_at, id)');
  await admin.query(
    `INSERT INTO events (created_at)
     SELECT now() - interval '90 days' FROM generate_series(1, $1::int)
     UNION ALL SELECT now() FROM generate_series(1, $2::int)`,
    [expired, young],
  );
  return { url, admin };
}

async function run(url: string, extra: Record<string, unknown>): Promise<RunReport> {
  const configPath = path.join(shared.scratch, `vacuum-${Math.random()}.json`);
  const policy = {
    name: 'events',
    class: 'rows',
    schedule: '0 * * * *',
    store: { kind: 'postgres', url },
    table: 'events',
    timestamp: 'created_at',
    retention: '30d',
    limits: { maxDeleteFraction: 1 },
    ...extra,
  };
  await writeFile(configPath, JSON.stringify({ policies: [policy] }));
  const control = await shared.server.createDatabase('control');
  const ran = await runCli(['--config', configPath, 'run', '--json'], { env: { RETENTION_DATABASE_URL: control } });
  expect(ran.code, ran.stderr).toBe(0);
  return JSON.parse(ran.stdout) as RunReport;
}

/**
 * Dead tuples as the table's pages hold them (pgstattuple reads them: the statistics views lag the
 * deleting connections by up to a second), and how often it was vacuumed and analyzed.
 */
async function tableStats(admin: pg.Client): Promise<{ dead: number; vacuums: number; analyzes: number }> {
  await admin.query('CREATE EXTENSION IF NOT EXISTS pgstattuple');
  const { rows } = await admin.query<{ dead: string; vacuums: string; analyzes: string }>(
    `SELECT (SELECT dead_tuple_count FROM pgstattuple('events')) AS dead,
            vacuum_count AS vacuums, analyze_count AS analyzes
       FROM pg_stat_user_tables WHERE relname = 'events'`,
  );
  return { dead: Number(rows[0]!.dead), vacuums: Number(rows[0]!.vacuums), analyzes: Number(rows[0]!.analyzes) };
}

describe('VACUUM after a run that deleted enough of its table', () => {
  it('vacuums and analyzes the table once the share is reached; its dead tuples are gone', async () => {
    const { url, admin } = await eventsTable(4_000, 1_000);
    try {
      const report = await run(url, { vacuum: { minDeletedFraction: 0.5 } });
      expect(report.deleted).toBe(4_000);
      expect(report.maintenance).toMatchObject({
        action: 'vacuum',
        target: '"public"."events"',
        status: 'done',
        deadTuplesAfter: 0,
      });
      expect(report.maintenance!.deadTuplesBefore).toEqual(expect.any(Number));
      const stats = await tableStats(admin);
      expect(stats).toMatchObject({ dead: 0, vacuums: 1, analyzes: 1 });
    } finally {
      await admin.end();
    }
  });

  it('does nothing below the share, or when the policy does not ask for it', async () => {
    const { url, admin } = await eventsTable(1_000, 4_000);
    try {
      const below = await run(url, { vacuum: { minDeletedFraction: 0.5 } });
      expect(below.deleted).toBe(1_000);
      expect(below).not.toHaveProperty('maintenance');
      await admin.query(`UPDATE events SET created_at = now() - interval '90 days' WHERE id <= 3000`);
      const unasked = await run(url, {});
      expect(unasked.deleted).toBe(2_000);
      expect(unasked).not.toHaveProperty('maintenance');
      // Without a VACUUM deleted rows stay in the pages, dead (some pruned on access): what the first test's removes.
      const stats = await tableStats(admin);
      expect(stats.vacuums).toBe(0);
      expect(stats.dead).toBeGreaterThan(500);
    } finally {
      await admin.end();
    }
  });

  it('a role that does not own the table: skipped and said why (PostgreSQL would only warn and do nothing)', async () => {
    const { url, admin } = await eventsTable(4_000, 1_000);
    try {
      const role = `cleaner_${Math.random().toString(36).slice(2, 8)}`;
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'cleaner'`);
      await admin.query(`GRANT SELECT, UPDATE, DELETE ON events TO ${role}`);
      const asCleaner = new URL(url);
      asCleaner.username = role;
      asCleaner.password = 'cleaner';
      const report = await run(asCleaner.toString(), { audit: false, vacuum: { minDeletedFraction: 0.5 } });
      expect(report.deleted).toBe(4_000);
      expect(report.maintenance).toMatchObject({
        status: 'skipped',
        reason: expect.stringMatching(/not the table owner/),
      });
      expect((await tableStats(admin)).vacuums).toBe(0);
    } finally {
      await admin.end();
    }
  });

  it('a bad share is a config error naming the field (exit 2)', async () => {
    const configPath = path.join(shared.scratch, 'bad-vacuum.json');
    await writeFile(
      configPath,
      JSON.stringify({
        policies: [
          {
            name: 'events',
            class: 'rows',
            schedule: '0 * * * *',
            store: { kind: 'postgres', url: 'postgres://u:p@127.0.0.1:1/db' },
            table: 'events',
            timestamp: 'created_at',
            retention: '30d',
            vacuum: { minDeletedFraction: 2 },
          },
        ],
      }),
    );
    const checked = await runCli(['--config', configPath, 'plan']);
    expect(checked.code).toBe(2);
    expect(checked.stderr).toContain('policies[0].vacuum.minDeletedFraction');
  });
});
