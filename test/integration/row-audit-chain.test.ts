import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import type { PolicyConfig } from '../../lib/config/schema.ts';
import { PostgresControlStore } from '../../lib/control/postgres/store.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { restoreRun } from '../../lib/engine/restore.ts';
import { runPolicy } from '../../lib/engine/run.ts';
import { Logger } from '../../lib/observe/log.ts';
import { verifyAuditTrails } from '../../lib/reports/auditVerify.ts';
import { createSqlClient } from '../../lib/sql/client.ts';
import { createPostgresRowsStore, type PostgresRowsStore } from '../../lib/stores/postgres/rows.ts';
import { createStore } from '../../lib/stores/registry.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres.ts';

/**
 * Invariant 13 for the rows store's own trail: every `retention.row_audit` batch is chained by
 * the statement that writes it (one-statement sweeps, scan + delete, restores), the hash SQL
 * computed is the one verify renders in JavaScript (keys, actor and microsecond timestamps chosen
 * to need escaping), and a batch changed, removed or reordered behind the tool's back is named.
 */
let server: TestPostgres;
let admin: pg.Pool;
let rowsUrl: string;
let control: PostgresControlStore;
let tables = 0;
const quietLog = new Logger({ sink: { write: () => undefined } });

/** Keys a JSON encoder must escape or keep as they are, each its own row. */
const AWKWARD_KEYS = [
  'plain',
  'q"uote',
  'back\\slash',
  'new\nline',
  'tab\tx',
  'é漢字😀',
  '\u0001ctl',
  "it's",
  '{a,b}',
  'NULL',
];
const ACTOR = 'cli:"quoted" actor\\@host';

beforeAll(async () => {
  server = await startTestPostgres();
  rowsUrl = await server.createDatabase('row_chain');
  admin = new pg.Pool({ connectionString: rowsUrl, max: 2 });
  // pool.end() resolves before its idle connections have closed: the server's stop right after
  // can reach one (57P01), and a pool without a listener throws that as an uncaught exception.
  admin.on('error', () => undefined);
  control = new PostgresControlStore(createSqlClient({ url: await server.createDatabase('row_chain_control') }));
  await control.migrate();
});
afterAll(async () => {
  await control?.close();
  await admin?.end();
  await server?.stop();
});

/** A table of the awkward keys, 40 days old give or take some microseconds, and its backup table. */
async function awkwardTable(): Promise<string> {
  tables += 1;
  const table = `docs_${tables}`;
  await admin.query(`CREATE TABLE public.${table} (key text PRIMARY KEY, created_at timestamptz NOT NULL)`);
  await admin.query(`CREATE INDEX ON public.${table} (created_at, key)`);
  await admin.query(
    `CREATE TABLE public.${table}_backup (LIKE public.${table}, retention_copied_at timestamptz NOT NULL DEFAULT now())`,
  );
  await admin.query(
    `INSERT INTO public.${table} SELECT key, now() - interval '40 days' - ord * interval '1.000001 seconds'
       FROM unnest($1::text[]) WITH ORDINALITY AS k (key, ord)`,
    [AWKWARD_KEYS],
  );
  return table;
}

function rowsPolicy(table: string, extra: Record<string, unknown> = {}): PolicyConfig {
  return parseConfig({
    policies: [
      {
        name: table.replaceAll('_', '-'),
        class: 'rows',
        schedule: '0 2 * * *',
        store: { kind: 'postgres', url: rowsUrl },
        table: `public.${table}`,
        timestamp: 'created_at',
        retention: '30d',
        batchSize: 3,
        limits: { maxDeleteFraction: 1 },
        ...extra,
      },
    ],
  }).policies[0]!;
}

async function withStore<T>(policy: PolicyConfig, use: (store: PostgresRowsStore) => Promise<T>): Promise<T> {
  if (policy.class !== 'rows') throw new Error('expected a rows policy');
  const store = createPostgresRowsStore(policy);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

const run = (policy: PolicyConfig): Promise<RunReport> =>
  withStore(policy, (store) =>
    runPolicy(
      policy,
      { trigger: 'manual', dryRun: false, force: false, list: false },
      { control, store, clock: { now: () => new Date() }, log: quietLog, actor: ACTOR },
    ),
  );

const verify = (policy: PolicyConfig) =>
  withStore(policy, (store) =>
    verifyAuditTrails(control, [{ policy: policy.name, chain: store.audit!.chain! }], { policies: [policy.name] }),
  );

/** As the table's owner, the append-only trigger disabled for the statement, as an intruder would. */
async function tamper(statement: string, params: unknown[] = []): Promise<void> {
  const client = await admin.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE retention.row_audit DISABLE TRIGGER append_only');
    await client.query(statement, params);
    await client.query('ALTER TABLE retention.row_audit ENABLE ALWAYS TRIGGER append_only');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}

describe('the chain of retention.row_audit', () => {
  it('chains every batch, swept in one statement or scanned, deleted and restored: the trail verifies', async () => {
    const swept = rowsPolicy(await awkwardTable());
    const first = await run(swept);
    expect(first).toMatchObject({ status: 'completed', deleted: AWKWARD_KEYS.length });
    expect(first.auditChain?.store).toMatchObject({ chain: swept.name, seq: 4 });
    await run(swept);
    const sweptReport = await verify(swept);
    expect(sweptReport.problems).toEqual([]);
    expect(sweptReport).toMatchObject({ intact: true, verified: { batches: 4 } });

    const backedUp = await awkwardTable();
    const scanned = rowsPolicy(backedUp, { backup: { to: `public.${backedUp}_backup`, keepFor: '30d' } });
    const deleted = await run(scanned);
    expect(deleted.deleted).toBe(AWKWARD_KEYS.length);
    const restored = await restoreRun(
      { runId: deleted.runId },
      {
        control,
        policies: [scanned],
        storeFor: (policy) => createStore(policy),
        actor: ACTOR,
        log: quietLog,
      },
    );
    expect(restored.outcomes.every((outcome) => outcome.status === 'restored')).toBe(true);
    const scannedReport = await verify(scanned);
    expect(scannedReport.problems).toEqual([]);
    // Four delete batches and the restore's; the control store chained the run's intents and the restores too.
    expect(scannedReport.verified.batches).toBe(5);
    expect(scannedReport.verified.records).toBeGreaterThanOrEqual(2 * AWKWARD_KEYS.length);
  });

  it('chains batches written at the same time by several transactions, each seq once', async () => {
    const policy = rowsPolicy(await awkwardTable());
    await withStore(policy, async (store) => {
      await store.open();
      const cutoff = new Date();
      const context = { runId: 'concurrent', actor: ACTOR, trigger: 'manual' as const };
      await Promise.all(
        AWKWARD_KEYS.map((key) =>
          store.delete([{ key, timestamp: new Date(0), cutoff, rule: 'retention: 30d' }], { run: context }),
        ),
      );
    });
    const report = await verify(policy);
    expect(report.problems).toEqual([]);
    expect(report.verified.batches).toBe(AWKWARD_KEYS.length);
  });

  it('refuses to change or remove batches and to move a head back', async () => {
    const policy = rowsPolicy(await awkwardTable());
    await run(policy);
    for (const statement of [
      `UPDATE retention.row_audit SET keys = '{}' WHERE policy = '${policy.name}'`,
      `DELETE FROM retention.row_audit WHERE policy = '${policy.name}'`,
      'TRUNCATE retention.row_audit',
      `UPDATE retention.row_audit_heads SET seq = 1 WHERE policy = '${policy.name}'`,
      `DELETE FROM retention.row_audit_heads WHERE policy = '${policy.name}'`,
    ]) {
      await expect(admin.query(statement), statement).rejects.toThrow(/append-only|only moves forward/);
    }
  });

  it.each([
    [
      'a key of a batch changed',
      "UPDATE retention.row_audit SET keys[1] = 'forged' WHERE policy = $1 AND seq = 2",
      'changed',
      2,
      'retention.row_audit#',
    ],
    [
      'the rule of a batch changed',
      "UPDATE retention.row_audit SET rules = '{forever}' WHERE policy = $1 AND seq = 3",
      'changed',
      3,
      'retention.row_audit#',
    ],
    ['a batch removed', 'DELETE FROM retention.row_audit WHERE policy = $1 AND seq = 2', 'removed', 3, 'seq 2 missing'],
    [
      'two batches reordered',
      'UPDATE retention.row_audit SET seq = CASE seq WHEN 2 THEN 3 ELSE 2 END WHERE policy = $1 AND seq IN (2, 3)',
      'reordered',
      2,
      'does not follow seq 1',
    ],
    [
      'the last batch removed',
      'DELETE FROM retention.row_audit WHERE policy = $1 AND seq = 4',
      'removed',
      4,
      'ends at 3',
    ],
  ])('names %s', async (_name, statement, kind, seq, message) => {
    const policy = rowsPolicy(await awkwardTable());
    await run(policy);
    expect((await verify(policy)).intact).toBe(true);
    // The unique (policy, seq) index is checked per row: make room before swapping.
    if (kind === 'reordered') await tamper('DROP INDEX retention.row_audit_chain');
    await tamper(statement, [policy.name]);
    if (kind === 'reordered')
      await tamper('CREATE UNIQUE INDEX row_audit_chain ON retention.row_audit (policy, seq) WHERE seq IS NOT NULL');
    const report = await verify(policy);
    expect(report.intact).toBe(false);
    expect(report.problems[0]).toMatchObject({ kind, seq, chain: policy.name });
    expect(report.problems[0]!.message).toContain(message);
  });
});

describe('a trail from before the chain', () => {
  it('counts its batches apart and chains what follows', async () => {
    const database = await server.createDatabase('row_chain_legacy');
    const legacy = new pg.Client({ connectionString: database });
    await legacy.connect();
    try {
      // The table as it was before chains, with one batch in it.
      await legacy.query('CREATE SCHEMA retention');
      await legacy.query(`CREATE TABLE retention.row_audit (
        id bigserial PRIMARY KEY, run_id text, policy text NOT NULL, store text NOT NULL, actor text NOT NULL,
        trigger text, action text NOT NULL, status text NOT NULL, row_count bigint NOT NULL, keys text[] NOT NULL,
        item_timestamps timestamptz[] NOT NULL, rules text[] NOT NULL, cutoffs timestamptz[] NOT NULL, archived_to text,
        linked_files text[], linked_file_statuses text[], txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
        created_at timestamptz NOT NULL DEFAULT now())`);
      await legacy.query(`CREATE TABLE public.old (key text PRIMARY KEY, created_at timestamptz NOT NULL)`);
      await legacy.query(`CREATE INDEX ON public.old (created_at, key)`);
      await legacy.query(
        `INSERT INTO public.old SELECT 'k' || i, now() - interval '40 days' FROM generate_series(1, 4) i`,
      );
      await legacy.query(`INSERT INTO retention.row_audit (run_id, policy, store, actor, action, status, row_count, keys,
        item_timestamps, rules, cutoffs) VALUES ('before', 'old', 's', 'a', 'delete', 'deleted', 1, '{x}', '{2020-01-01}', '{r}', '{2020-02-01}')`);
    } finally {
      await legacy.end();
    }
    const policy = parseConfig({
      policies: [
        {
          name: 'old',
          class: 'rows',
          schedule: '0 2 * * *',
          store: { kind: 'postgres', url: database },
          table: 'public.old',
          timestamp: 'created_at',
          retention: '30d',
          batchSize: 3,
          limits: { maxDeleteFraction: 1 },
        },
      ],
    }).policies[0]!;
    await run(policy);
    const report = await verify(policy);
    expect(report).toMatchObject({ intact: true, verified: { batches: 2 }, unchained: { batches: 1 } });
  });
});
