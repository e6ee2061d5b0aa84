import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import { PostgresControlStore } from '../../lib/control/postgres/store.ts';
import { sweptSteps } from '../../lib/engine/batches.ts';
import { AdaptiveBatchSize } from '../../lib/engine/batchSize.ts';
import type { Fence } from '../../lib/engine/fence.ts';
import { runPolicy } from '../../lib/engine/run.ts';
import { Logger } from '../../lib/observe/log.ts';
import { computeCutoffs } from '../../lib/policy/plan.ts';
import { createSqlClient } from '../../lib/sql/client.ts';
import { createStore } from '../../lib/stores/registry.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres.ts';

/**
 * A rows policy without `batchSize` against a real PostgreSQL: its one-statement batches are
 * sized by how long they take (engine/batchSize.ts), and whatever sizes they take, every row
 * deleted has exactly one row-audit entry and no kept row goes.
 */
let server: TestPostgres;
const DUE = 9_000;
const KEPT = 300;

beforeAll(async () => {
  server = await startTestPostgres();
});
afterAll(async () => {
  await server?.stop();
});

/** A table of DUE rows past 30 days and KEPT younger ones, and the default policy over it. */
async function seeded() {
  const url = await server.createDatabase('adaptive');
  const database = new pg.Client({ connectionString: url });
  await database.connect();
  await database.query('CREATE TABLE documents (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)');
  await database.query(
    `INSERT INTO documents SELECT g, now() - interval '40 days' + g * interval '1 second'
       FROM generate_series(1, $1) AS g`,
    [DUE],
  );
  await database.query(
    `INSERT INTO documents SELECT $1 + g, now() - interval '1 day' FROM generate_series(1, $2) AS g`,
    [DUE, KEPT],
  );
  await database.query('CREATE INDEX ON documents (created_at, id)');
  const [policy] = parseConfig({
    policies: [
      {
        name: 'documents',
        class: 'rows',
        schedule: '0 * * * *',
        store: { kind: 'postgres', url, driver: 'pg' },
        table: 'public.documents',
        timestamp: 'created_at',
        retention: '30d',
        limits: { maxDeletesPerRun: 1_000_000, maxDeleteFraction: 1 },
      },
    ],
  }).policies;
  const store = await createStore(policy!);
  const auditEntries = async (): Promise<Array<{ key: string; entries: number }>> =>
    (
      await database.query<{ key: string; entries: number }>(
        `SELECT key, count(*)::int AS entries FROM retention.row_audit_entries WHERE policy = 'documents' GROUP BY key`,
      )
    ).rows;
  const left = async (): Promise<number[]> =>
    (await database.query<{ id: string }>('SELECT id FROM documents ORDER BY id')).rows.map((row) => Number(row.id));
  const close = async () => {
    await store.close();
    await database.end();
  };
  return { policy: policy!, store, auditEntries, left, close };
}

const keptIds = Array.from({ length: KEPT }, (_, index) => DUE + index + 1);

describe('rows: adaptive batch size (no batchSize in the policy)', () => {
  it('grows its statements while they stay fast, and audits every deleted row exactly once', async () => {
    const { store, auditEntries, left, close } = await seeded();
    try {
      await store.open();
      const cutoffs = computeCutoffs('30d', await store.clock!.now());
      const session = store.sweep!.begin(
        { runId: 'adaptive', actor: 'test', trigger: 'manual' },
        { cutoffs, holds: [] },
      );
      // Time as the test says (1 ms a statement), so the sizes do not depend on this machine's load.
      let clock = 0;
      const asked: number[] = [];
      const recording = {
        next: (batch: Parameters<typeof session.next>[0]) => {
          asked.push(batch.limit);
          clock += 1;
          return session.next(batch);
        },
      };
      const steps = sweptSteps({
        session: recording,
        detail: 'summary',
        sizing: new AdaptiveBatchSize(),
        fence: { check: async () => undefined, checkBeforeNext: async () => undefined } as unknown as Fence,
        pacingMs: 0,
        allowance: () => Number.POSITIVE_INFINITY,
        now: () => clock,
      });
      const deleted: number[] = [];
      for await (const step of steps) deleted.push(step.swept!.deleted);
      expect(asked).toEqual([500, 1_000, 2_000, 4_000, 8_000]);
      expect(deleted).toEqual([500, 1_000, 2_000, 4_000, 1_500]);
      const entries = await auditEntries();
      expect(entries).toHaveLength(DUE);
      expect(entries.every((entry) => entry.entries === 1)).toBe(true);
      expect(await left()).toEqual(keptIds);
    } finally {
      await close();
    }
  });

  it('through the engine: everything due deleted in statements of its own sizing, each row audited once', async () => {
    const { policy, store, auditEntries, left, close } = await seeded();
    const control = new PostgresControlStore(createSqlClient({ url: await server.createDatabase('control') }));
    await control.migrate();
    const batches: number[] = [];
    const log = new Logger({
      sink: {
        write: (line) => {
          const event = JSON.parse(line) as { event?: string; batch_size?: number };
          if (event.event === 'batch_deleted') batches.push(event.batch_size!);
        },
      },
    });
    try {
      const report = await runPolicy(
        policy,
        { trigger: 'manual', dryRun: false, force: false, list: false },
        { control, store, clock: { now: () => new Date() }, log, actor: 'test:adaptive' },
      );
      expect(report).toMatchObject({ status: 'completed', deleted: DUE, failed: 0 });
      // The first statement takes the starting size; the rest whatever their times said, within bounds.
      expect(batches[0]).toBe(500);
      expect(batches.reduce((sum, size) => sum + size, 0)).toBe(DUE);
      expect(batches.every((size) => size >= 1 && size <= 25_000)).toBe(true);
      const entries = await auditEntries();
      expect(entries).toHaveLength(DUE);
      expect(entries.every((entry) => entry.entries === 1)).toBe(true);
      expect(await left()).toEqual(keptIds);
    } finally {
      await control.close();
      await close();
    }
  });
});
