import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import { PostgresControlStore } from '../../lib/control/postgres/store.ts';
import type { Store, SweepSession } from '../../lib/core/store.ts';
import type { Cutoffs, EligibleItem, Hold } from '../../lib/core/types.ts';
import { runPolicy } from '../../lib/engine/run.ts';
import { ConfigError } from '../../lib/errors.ts';
import { Logger } from '../../lib/observe/log.ts';
import { isEligible } from '../../lib/policy/classify.ts';
import { computeCutoffs } from '../../lib/policy/plan.ts';
import { readAuditTrail } from '../../lib/reports/auditTrail.ts';
import { createSqlClient, type SqlClient, type SqlDriver } from '../../lib/sql/client.ts';
import { sendGuarded } from '../../lib/stores/common.ts';
import { createFsStore, type FsStoreConfig } from '../../lib/stores/fs/store.ts';
import { createPostgresRowsStore, type PostgresRowsStore } from '../../lib/stores/postgres/rows.ts';
import type { RowsStoreConfig } from '../../lib/stores/postgres/schema.ts';
import { createPostgresTokensStore } from '../../lib/stores/postgres/tokens.ts';
import { type NeonProxy, routeNeonThroughProxy, startNeonProxy } from '../support/neonProxy.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres.ts';
import { contractCutoffs, type SeedItem, type StoreFixture, storeContract } from './store-contract.ts';

/**
 * The rows store against a real PostgreSQL, through node-postgres and through the real Neon
 * driver (WebSocket proxy): the Store contract, then what only rows have.
 */
let server: TestPostgres;
let proxy: NeonProxy;
const databases = new Map<SqlDriver, string>();
let admin: pg.Pool;
let tableCount = 0;

beforeAll(async () => {
  [server, proxy] = await Promise.all([startTestPostgres(), startNeonProxy()]);
  routeNeonThroughProxy(proxy);
  const url = await server.createDatabase('rows');
  databases.set('pg', url).set('neon', url);
  admin = new pg.Pool({ connectionString: url, max: 4 });
  admin.on('error', () => undefined);
});
afterAll(async () => {
  await admin?.end();
  await proxy?.close();
  await server?.stop();
});

const DAY = 86_400_000;
const exec = (text: string, params: unknown[] = []) => admin.query(text, params);
const rowsOf = async <R>(text: string, params: unknown[] = []): Promise<R[]> =>
  (await admin.query(text, params)).rows as R[];
function uniqueTable(prefix: string): string {
  tableCount += 1;
  return `${prefix}_${process.pid}_${tableCount}`;
}

/** A rows policy as the parsed config hands it to the store; tests override what they need. */
function rowsConfig(
  table: string,
  overrides: Partial<RowsStoreConfig<FsStoreConfig>> = {},
  driver: SqlDriver = 'pg',
): RowsStoreConfig<FsStoreConfig> {
  return {
    name: 'rows-test',
    retention: '30d',
    store: { kind: 'postgres', url: databases.get(driver)!, driver },
    table: `public.${table}`,
    timestamp: 'created_at',
    audit: true,
    allowSeqScan: false,
    pauseBetweenBatchesMs: 0,
    statementTimeout: '30s',
    lockTimeout: '5s',
    ...overrides,
  };
}

function rowsStore(
  table: string,
  overrides: Partial<RowsStoreConfig<FsStoreConfig>> = {},
  driver: SqlDriver = 'pg',
): PostgresRowsStore {
  return createPostgresRowsStore(rowsConfig(table, overrides, driver), {
    blobStoreFor: (config) => createFsStore(config),
  });
}

/** A table keyed by text (the contract's keys), indexed for keyset scans. */
async function keyedTable(prefix: string, timestampColumn = 'created_at', extraColumns = ''): Promise<string> {
  const table = uniqueTable(prefix);
  await exec(
    `CREATE TABLE public.${table} (key text PRIMARY KEY, ${timestampColumn} timestamptz, size bigint${extraColumns})`,
  );
  await exec(`CREATE INDEX ON public.${table} (${timestampColumn}, key)`);
  return table;
}

async function tableFixture(
  table: string,
  timestampColumn: string,
  createStore: () => PostgresRowsStore,
): Promise<StoreFixture> {
  await exec(`CREATE TABLE public.${table}_backup (LIKE public.${table})`);
  return {
    createStore,
    async seed(items: SeedItem[]) {
      for (const item of items)
        await exec(`INSERT INTO public.${table} (key, ${timestampColumn}, size) VALUES ($1, $2, $3)`, [
          item.key,
          item.timestamp,
          item.size ?? null,
        ]);
    },
    async exists(key: string) {
      return (await rowsOf(`SELECT 1 FROM public.${table} WHERE key = $1`, [key])).length > 0;
    },
    async touch(key: string, timestamp: Date) {
      await exec(`UPDATE public.${table} SET ${timestampColumn} = $2 WHERE key = $1`, [key, timestamp]);
    },
    backupTo: `public.${table}_backup`,
    teardown: async () => {
      await exec(`DROP TABLE public.${table}, public.${table}_backup`);
    },
  };
}

for (const driver of ['pg', 'neon'] as const) {
  storeContract(
    `postgres rows via ${driver}`,
    async () => {
      const table = await keyedTable('contract');
      return tableFixture(table, 'created_at', () => rowsStore(table, { size: 'size' }, driver));
    },
    { scansCandidatesOnly: true },
  );
}

storeContract(
  'postgres tokens via pg',
  async () => {
    const table = await keyedTable('tokens', 'expires_at');
    const store = () =>
      createPostgresTokensStore({
        name: 'tokens-test',
        retention: '30d',
        store: {
          kind: 'postgres',
          url: databases.get('pg')!,
          table: `public.${table}`,
          expiresAt: 'expires_at',
          size: 'size',
          audit: true,
          allowSeqScan: false,
          pauseBetweenBatchesMs: 0,
          statementTimeout: '30s',
          lockTimeout: '5s',
        },
      });
    return tableFixture(table, 'expires_at', store);
  },
  { backup: false, scansCandidatesOnly: true },
);

const quietLog = new Logger({ sink: { write: () => undefined } });
const now = Date.now();
const ago = (ms: number) => new Date(now - ms);

/** Items as a scan hands them to the engine, made eligible under `cutoffs` (fails if one is not). */
async function scanEligible(
  store: PostgresRowsStore,
  cutoffs: Cutoffs = contractCutoffs,
): Promise<Map<string, EligibleItem>> {
  const items = new Map<string, EligibleItem>();
  let cursor: string | undefined;
  for (;;) {
    const page = await store.scan({ cutoffs, limit: 100, ...(cursor === undefined ? {} : { cursor }) });
    for (const item of page.items) {
      const eligible = isEligible(item, cutoffs);
      if (eligible) items.set(item.key, eligible);
    }
    if (page.done) return items;
    cursor = page.cursor;
  }
}

/** The store's one-statement sweep for one run, as the engine begins it (one session per run). */
function sweepOf(store: PostgresRowsStore, runId: string, cutoffs: Cutoffs, holds: Hold[] = []): SweepSession {
  return store.sweep!.begin({ runId, actor: 'test:rows', trigger: 'manual' }, { cutoffs, holds });
}

/** `store` with `before` awaited ahead of each one-statement batch the engine sends. */
function beforeEachSweep(store: PostgresRowsStore, before: () => void | Promise<void>): PostgresRowsStore {
  const sweep = store.sweep!;
  return {
    ...store,
    sweep: {
      begin: (run, query) => {
        const session = sweep.begin(run, query);
        return { next: async (batch) => (await before(), session.next(batch)) };
      },
    },
  };
}

async function configError(store: PostgresRowsStore): Promise<ConfigError> {
  const error = await store.open().then(
    () => undefined,
    (caught: unknown) => caught,
  );
  await store.close?.();
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('rows policy', () => {
  it.each(['pg', 'neon'] as const)(
    'validates the documents policy of the issue exactly, and runs it per purpose code through the engine via %s',
    async (driver) => {
      const documents = {
        name: 'documents',
        class: 'rows',
        schedule: '0 2 * * *',
        store: { kind: 'postgres', url: 'postgres://user:pass@127.0.0.1:5432/app' },
        table: 'public.documents',
        timestamp: 'created_at',
        retention: {
          by: 'purpose_code',
          default: '30d',
          rules: { 'System Testing': '24h', General: '30d', Financial: '1y', Legal: '7y', Medical: '10y' },
        },
      };
      const parsedPolicy = parseConfig({ policies: [documents] }).policies[0]!;
      if (parsedPolicy.class !== 'rows') throw new Error('expected a rows policy');
      const parsed = parsedPolicy;
      expect(parsed).toMatchObject({
        table: 'public.documents',
        timestamp: 'created_at',
        audit: true,
        store: { kind: 'postgres' },
      });

      const url = await server.createDatabase(`documents_${driver}`);
      const database = new pg.Pool({ connectionString: url });
      database.on('error', () => undefined);
      await database.query(
        `CREATE TABLE public.documents (id bigint PRIMARY KEY, purpose_code text, created_at timestamptz NOT NULL)`,
      );
      await database.query(`CREATE INDEX ON public.documents (created_at, id)`);
      const HOUR = 3_600_000;
      const YEAR = 365 * DAY;
      const seeds: Array<[number, string | null, number, 'kept' | 'deleted']> = [
        [1, 'System Testing', 2 * HOUR, 'kept'],
        [2, 'System Testing', 30 * HOUR, 'deleted'],
        [3, 'General', 10 * DAY, 'kept'],
        [4, 'General', 40 * DAY, 'deleted'],
        [5, 'Financial', 200 * DAY, 'kept'],
        [6, 'Financial', 400 * DAY, 'deleted'],
        [7, 'Legal', 5 * YEAR, 'kept'],
        [8, 'Legal', 8 * YEAR, 'deleted'],
        [9, 'Medical', 9 * YEAR, 'kept'],
        [10, 'Medical', 11 * YEAR, 'deleted'],
        [11, 'Unknown purpose', 10 * DAY, 'kept'],
        [12, 'Unknown purpose', 40 * DAY, 'deleted'],
        [13, null, 40 * DAY, 'deleted'],
        [14, null, 1 * DAY, 'kept'],
        [15, 'General', 1 * DAY, 'kept'],
        [16, 'Legal', 1 * DAY, 'kept'],
      ];
      for (const [id, purpose, age] of seeds)
        await database.query('INSERT INTO public.documents VALUES ($1, $2, $3)', [id, purpose, ago(age)]);

      const policy = { ...parsed, store: { ...parsed.store, url, driver } };
      const store = createPostgresRowsStore(policy);
      const control = new PostgresControlStore(
        createSqlClient({ url: await server.createDatabase(`control_${driver}`), driver }),
      );
      await control.migrate();
      try {
        const report = await runPolicy(
          policy,
          { trigger: 'manual', dryRun: false, force: false, list: true },
          { control, store, clock: { now: () => new Date() }, log: quietLog, actor: 'test:rows' },
        );
        const expected = seeds
          .filter(([, , , fate]) => fate === 'deleted')
          .map(([id]) => String(id))
          .sort();
        expect(report).toMatchObject({ status: 'completed', deleted: expected.length, failed: 0, backlog: 0 });
        const left = (await database.query<{ id: string }>('SELECT id::text FROM public.documents')).rows.map(
          (row) => row.id,
        );
        expect(left.sort()).toEqual(
          seeds
            .filter(([, , , fate]) => fate === 'kept')
            .map(([id]) => String(id))
            .sort(),
        );
        // One-statement batches are recorded in the deleting transaction only; the trail reads them back.
        expect(await control.audit({ runId: report.runId, limit: 100 })).toEqual([]);
        const trail = await readAuditTrail(control, [store], { runId: report.runId, limit: 100 });
        expect(trail.map((record) => [record.key, record.status, record.actor]).sort()).toEqual(
          expected.map((key) => [key, 'deleted', 'test:rows']),
        );
        expect(trail.find((record) => record.key === '6')).toMatchObject({
          policy: 'documents',
          action: 'delete',
          rule: 'purpose_code=Financial: 1y',
          trigger: 'manual',
          source: expect.stringMatching(/^retention\.row_audit#\d+$/),
        });
        const inDatabase = await database.query<{ key: string; rule: string }>(
          `SELECT key, rule FROM retention.row_audit_entries WHERE policy = 'documents' ORDER BY key::int`,
        );
        expect(inDatabase.rows.map((row) => row.key).sort()).toEqual(expected);
        expect(inDatabase.rows.find((row) => row.key === '8')?.rule).toBe('purpose_code=Legal: 7y');
        expect(inDatabase.rows.find((row) => row.key === '13')?.rule).toBe('default: 30d');
        // The compliance report's counts: per rule, without expanding keys, as the entries say.
        const perRule = new Map<string, number>();
        for (const row of inDatabase.rows) perRule.set(row.rule, (perRule.get(row.rule) ?? 0) + 1);
        const counts = await store.audit!.counts({
          policy: 'documents',
          from: new Date(Date.now() - 3_600_000),
          to: new Date(Date.now() + 3_600_000),
        });
        expect(new Map(counts.map((count) => [count.rule, count.count]))).toEqual(perRule);
        expect(counts.every((count) => count.runId === report.runId && count.status === 'deleted')).toBe(true);
      } finally {
        await store.close?.();
        await control.close();
        await database.end();
      }
    },
  );

  it.each([
    ['a missing table', { table: 'public.no_such_table' }, 'table', /does not exist/],
    ['a missing schema', { table: 'nowhere.documents' }, 'table', /does not exist/],
    ['a missing timestamp column', { timestamp: 'createdAt' }, 'timestamp', /column "createdAt" does not exist/],
    ['a timestamp column that is not a timestamp', { timestamp: 'key' }, 'timestamp', /is text, not a timestamp/],
    [
      'a missing filter column',
      { filter: [{ column: 'stauts', op: '=', value: 'x' }] },
      'filter[0].column',
      /"stauts" does not exist/,
    ],
    [
      'a filter value of the wrong type',
      { filter: [{ column: 'size', op: '>', value: 'big' }] },
      'filter[0].value',
      /cannot be compared/,
    ],
    [
      'a missing purpose column',
      { retention: { by: 'purpose', rules: { a: '1d' } } },
      'retention.by',
      /"purpose" does not exist/,
    ],
    ['a missing key column', { key: ['nope'] }, 'key[0]', /does not exist/],
    ['a key no unique index covers', { key: ['size'] }, 'key[0]', /nullable/],
    [
      'a missing blob column',
      { blob: { column: 'path', store: { kind: 'fs', root: '/tmp', removeEmptyDirs: false } } },
      'blob.column',
      /"path" does not exist/,
    ],
    ['a missing archive table', { archive: { table: 'public.nope' } }, 'archive.table', /does not exist/],
    ['a time zone on a timestamptz column', { timeZone: 'UTC' }, 'timeZone', /carries its own zone/],
  ] as const)('refuses %s with a ConfigError naming the field', async (_, overrides, field, message) => {
    const table = await keyedTable('bad');
    const error = await configError(rowsStore(table, overrides as Partial<RowsStoreConfig<FsStoreConfig>>));
    expect(error.issues).toEqual([expect.objectContaining({ path: field, message: expect.stringMatching(message) })]);
    expect(error.context).toMatchObject({
      policy: 'rows-test',
      table: 'table' in overrides ? overrides.table : `public.${table}`,
    });
  });

  it('refuses a table without an index on the timestamp unless allowSeqScan', async () => {
    const table = uniqueTable('noindex');
    await exec(`CREATE TABLE public.${table} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)`);
    const error = await configError(rowsStore(table));
    expect(error.issues[0]).toMatchObject({
      path: 'timestamp',
      message: expect.stringMatching(/no index .* starts with "created_at"/),
      fix: expect.stringContaining(`CREATE INDEX CONCURRENTLY ON "public"."${table}" ("created_at", "id")`),
    });
    const allowed = rowsStore(table, { allowSeqScan: true });
    await expect(allowed.open()).resolves.toBeUndefined();
    await allowed.close?.();
  });

  it('checks a backup table at open, and prunes its copies older than keepFor', async () => {
    const table = await keyedTable('backed');
    const copies = `public.${table}_copies`;
    await exec(`CREATE TABLE ${copies} (LIKE public.${table})`);
    const backup = { to: copies, keepFor: '7d' };
    expect((await configError(rowsStore(table, { backup }))).issues[0]).toMatchObject({
      path: 'backup.to',
      message: expect.stringContaining('no retention_copied_at timestamptz column'),
      fix: `ALTER TABLE "public"."${table}_copies" ADD COLUMN retention_copied_at timestamptz NOT NULL DEFAULT now()`,
    });
    await exec(`ALTER TABLE ${copies} ADD COLUMN retention_copied_at timestamptz NOT NULL DEFAULT now()`);
    await exec(`INSERT INTO public.${table} (key, created_at) VALUES ('doc', $1)`, [ago(40 * DAY)]);
    const store = rowsStore(table, { backup });
    try {
      const [doc] = [...(await scanEligible(store, computeCutoffs('30d', new Date()))).values()];
      expect(await store.backups!.backup([doc!], { to: copies, policy: 'rows-test', runId: 'run-now' })).toEqual([
        { key: 'doc', ok: true },
      ]);
      await exec(`INSERT INTO ${copies} (key, created_at, retention_copied_at) VALUES ('old-copy', $1, $2)`, [
        ago(400 * DAY),
        ago(8 * DAY),
      ]);
      expect(await store.backups!.prune(copies, 'rows-test', ago(7 * DAY))).toBe(1);
      expect((await rowsOf<{ key: string }>(`SELECT key FROM ${copies}`)).map((row) => row.key)).toEqual(['doc']);
    } finally {
      await store.close?.();
    }
  });

  it('names fields under store for a tokens table', async () => {
    const table = uniqueTable('tokens_bad');
    await exec(`CREATE TABLE public.${table} (token text PRIMARY KEY, expires timestamptz)`);
    const store = createPostgresTokensStore({
      name: 'sessions',
      retention: '7d',
      store: {
        kind: 'postgres',
        url: databases.get('pg')!,
        table: `public.${table}`,
        expiresAt: 'expires_at',
        audit: false,
        allowSeqScan: true,
        pauseBetweenBatchesMs: 0,
        statementTimeout: '30s',
        lockTimeout: '5s',
      },
    });
    expect((await configError(store)).issues[0]).toMatchObject({ path: 'store.expiresAt' });
  });

  it('reports ON DELETE CASCADE foreign keys whose referencing column has no index', async () => {
    const table = await keyedTable('parent');
    await exec(
      `CREATE TABLE public.${table}_pages (id serial PRIMARY KEY, document text REFERENCES public.${table} (key) ON DELETE CASCADE)`,
    );
    await exec(
      `CREATE TABLE public.${table}_notes (id serial PRIMARY KEY, document text REFERENCES public.${table} (key) ON DELETE CASCADE)`,
    );
    await exec(`CREATE INDEX ON public.${table}_notes (document)`);
    const store = rowsStore(table);
    await store.open();
    await store.close?.();
    expect(store.warnings).toEqual([
      expect.objectContaining({
        code: 'cascade_without_index',
        message: expect.stringContaining(`${table}_pages(document)`),
        fix: `CREATE INDEX CONCURRENTLY ON ${table}_pages ("document")`,
      }),
    ]);
  });
});

describe('rows deletion', () => {
  const cutoffs30d = (): Cutoffs => computeCutoffs('30d', new Date());

  it('deletes explicit children first, in the same transaction as their rows', async () => {
    const table = await keyedTable('parents');
    // NO ACTION: deleting a parent before its pages would fail; a trigger fails the batch late.
    await exec(
      `CREATE TABLE public.${table}_pages (id serial PRIMARY KEY, parent text NOT NULL REFERENCES public.${table} (key))`,
    );
    await exec(`CREATE INDEX ON public.${table}_pages (parent)`);
    for (const key of ['a', 'b', 'boom']) {
      await exec(`INSERT INTO public.${table} (key, created_at) VALUES ($1, $2)`, [key, ago(40 * DAY)]);
      await exec(`INSERT INTO public.${table}_pages (parent) VALUES ($1), ($1)`, [key]);
    }
    await exec(`CREATE FUNCTION public.${table}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF OLD.key = 'boom' THEN RAISE EXCEPTION 'refused' USING ERRCODE = 'serialization_failure'; END IF; RETURN OLD; END $$`);
    await exec(
      `CREATE TRIGGER refuse BEFORE DELETE ON public.${table} FOR EACH ROW EXECUTE FUNCTION public.${table}_refuse()`,
    );
    const store = rowsStore(table, { children: [{ table: `public.${table}_pages`, column: 'parent' }] });
    try {
      const items = await scanEligible(store, cutoffs30d());
      const failed = await store.delete([items.get('a')!, items.get('boom')!]);
      expect(failed.map((outcome) => outcome.status)).toEqual(['failed', 'failed']);
      expect(failed[0]?.error).toMatch(/serialization failure/);
      // Rolled back together: the pages deleted before the failing parent are back.
      expect((await rowsOf(`SELECT count(*)::int AS n FROM public.${table}_pages`))[0]).toEqual({ n: 6 });

      const outcomes = await store.delete([items.get('a')!, items.get('b')!]);
      expect(outcomes.map(({ key, status }) => ({ key, status }))).toEqual([
        { key: 'a', status: 'deleted' },
        { key: 'b', status: 'deleted' },
      ]);
      expect(await rowsOf(`SELECT parent FROM public.${table}_pages ORDER BY parent`)).toEqual([
        { parent: 'boom' },
        { parent: 'boom' },
      ]);
      expect(await rowsOf(`SELECT key FROM public.${table} ORDER BY key`)).toEqual([{ key: 'boom' }]);
    } finally {
      await store.close?.();
    }
  });

  it('deletes the linked file before its row, and keeps the row when the file cannot go', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'rows-blob-'));
    const table = await keyedTable('linked', 'created_at', ', file text');
    const old = ago(40 * DAY);
    await writeFile(path.join(root, 'a.pdf'), 'aaaa');
    await utimes(path.join(root, 'a.pdf'), old, old);
    await mkdir(path.join(root, 'not-a-file.pdf'));
    const rows: Array<[string, string | null]> = [
      ['with-file', 'a.pdf'],
      ['file-gone', 'gone.pdf'],
      ['undeletable', 'not-a-file.pdf'],
      ['no-file', null],
    ];
    for (const [key, file] of rows)
      await exec(`INSERT INTO public.${table} (key, created_at, file) VALUES ($1, $2, $3)`, [key, old, file]);
    const store = rowsStore(table, { blob: { column: 'file', store: { kind: 'fs', root, removeEmptyDirs: false } } });
    try {
      const items = [...(await scanEligible(store, cutoffs30d())).values()];
      const outcomes = await store.delete(items);
      const status = Object.fromEntries(outcomes.map((outcome) => [outcome.key, outcome.status]));
      expect(status).toEqual({
        'with-file': 'deleted',
        'file-gone': 'deleted',
        undeletable: 'failed',
        'no-file': 'deleted',
      });
      expect(outcomes.find((outcome) => outcome.key === 'undeletable')?.error).toMatch(
        /linked file not-a-file.pdf could not be deleted, row kept: refused: not a regular file/,
      );
      await expect(stat(path.join(root, 'a.pdf'))).rejects.toThrow();
      expect(await rowsOf(`SELECT key FROM public.${table}`)).toEqual([{ key: 'undeletable' }]);
      expect(
        await rowsOf(
          `SELECT key, linked_file, linked_file_status FROM retention.row_audit_entries WHERE store = $1 ORDER BY key`,
          [store.location],
        ),
      ).toEqual([
        { key: 'file-gone', linked_file: 'gone.pdf', linked_file_status: 'missing' },
        { key: 'no-file', linked_file: null, linked_file_status: null },
        { key: 'with-file', linked_file: 'a.pdf', linked_file_status: 'deleted' },
      ]);
    } finally {
      await store.close?.();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('backs up linked files with their rows and restores both; a file already gone at deletion is not looked for', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'rows-blob-'));
    const backupTo = `${root}-backups`;
    const table = await keyedTable('linked_backup', 'created_at', ', file text');
    await exec(
      `CREATE TABLE public.${table}_backup (LIKE public.${table}, retention_copied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const old = ago(40 * DAY);
    await writeFile(path.join(root, 'a.pdf'), 'aaaa');
    await utimes(path.join(root, 'a.pdf'), old, old);
    for (const [key, file] of [
      ['with-file', 'a.pdf'],
      ['file-gone', 'gone.pdf'],
      ['no-file', null],
    ] as const) {
      await exec(`INSERT INTO public.${table} (key, created_at, file) VALUES ($1, $2, $3)`, [key, old, file]);
    }
    const backup = { to: `public.${table}_backup`, keepFor: '7d' };
    const store = rowsStore(table, {
      backup,
      blob: { column: 'file', store: { kind: 'fs', root, removeEmptyDirs: false }, backupTo },
    });
    const ref = { to: backup.to, policy: 'rows-test', runId: 'run-1' };
    try {
      const items = [...(await scanEligible(store, cutoffs30d())).values()];
      expect(items.find((item) => item.key === 'with-file')?.linkedKey).toBe('a.pdf');
      expect((await store.backups!.backup(items, ref)).every((outcome) => outcome.ok)).toBe(true);
      expect((await stat(path.join(backupTo, 'rows-test', 'run-1', 'a.pdf'))).mtime).toEqual(old);
      expect(
        (await store.delete(items, { run: { runId: 'run-1', actor: 'test', trigger: 'manual' } }))
          .map((outcome) => outcome.status)
          .sort(),
      ).toEqual(['deleted', 'deleted', 'deleted']);

      const restored = await store.backups!.restore(ref, ['with-file', 'file-gone', 'no-file']);
      expect(restored.map(({ key, status }) => [key, status]).sort()).toEqual([
        ['file-gone', 'restored'],
        ['no-file', 'restored'],
        ['with-file', 'restored'],
      ]);
      expect((await stat(path.join(root, 'a.pdf'))).mtime).toEqual(old);
      expect(await rowsOf(`SELECT key FROM public.${table} ORDER BY key`)).toEqual([
        { key: 'file-gone' },
        { key: 'no-file' },
        { key: 'with-file' },
      ]);
    } finally {
      await store.close?.();
      await rm(root, { recursive: true, force: true });
      await rm(backupTo, { recursive: true, force: true });
    }
  });

  it('stops between linked-file requests when the lease check throws: rows whose file was not sent stay, with no outcome', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'rows-blob-'));
    const table = await keyedTable('stopped', 'created_at', ', file text');
    const old = ago(40 * DAY);
    for (const key of ['a', 'b', 'c']) {
      await writeFile(path.join(root, `${key}.pdf`), key);
      await utimes(path.join(root, `${key}.pdf`), old, old);
      await exec(`INSERT INTO public.${table} (key, created_at, file) VALUES ($1, $2, $3)`, [key, old, `${key}.pdf`]);
    }
    // One request per file, each behind the lease check, as the blob stores send them.
    const oneFileAtATime = (config: FsStoreConfig): Store => {
      const files = createFsStore(config);
      return {
        ...files,
        delete: (items, options) =>
          sendGuarded(
            items.map((item) => [item]),
            1,
            options?.beforeRequest,
            (group) => files.delete(group),
          ),
      };
    };
    const store = createPostgresRowsStore(
      rowsConfig(table, { blob: { column: 'file', store: { kind: 'fs', root, removeEmptyDirs: false } } }),
      { blobStoreFor: oneFileAtATime },
    );
    try {
      const items = [...(await scanEligible(store, cutoffs30d())).values()];
      const leaseLost = () => {
        throw new Error('lease lost');
      };
      expect(await store.delete(items, { beforeRequest: leaseLost })).toEqual([]);
      expect(await rowsOf(`SELECT count(*)::int AS n FROM public.${table}`)).toEqual([{ n: 3 }]);

      let checks = 0;
      // The transaction's check and the first file's pass; the second file's throws.
      const outcomes = await store.delete(items, { beforeRequest: () => (++checks > 2 ? leaseLost() : undefined) });
      expect(outcomes).toHaveLength(1);
      expect(outcomes[0]!.status).toBe('deleted');
      const left = await rowsOf<{ key: string; file: string }>(`SELECT key, file FROM public.${table} ORDER BY key`);
      expect(left).toHaveLength(2);
      for (const row of left) await expect(stat(path.join(root, row.file))).resolves.toBeDefined();
      await expect(stat(path.join(root, `${outcomes[0]!.key}.pdf`))).rejects.toThrow();
    } finally {
      await store.close?.();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('keeps a row whose linked file changed since the scan (holds were matched against the file the scan saw)', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'rows-blob-'));
    const table = await keyedTable('relinked', 'created_at', ', file text');
    const old = ago(40 * DAY);
    for (const name of ['a.pdf', 'held.pdf']) {
      await writeFile(path.join(root, name), name);
      await utimes(path.join(root, name), old, old);
    }
    await exec(`INSERT INTO public.${table} (key, created_at, file) VALUES ('r', $1, 'a.pdf')`, [old]);
    const store = rowsStore(table, { blob: { column: 'file', store: { kind: 'fs', root, removeEmptyDirs: false } } });
    try {
      const items = [...(await scanEligible(store, cutoffs30d())).values()];
      await exec(`UPDATE public.${table} SET file = 'held.pdf'`);
      expect(await store.delete(items)).toEqual([
        { key: 'r', status: 'kept', error: 'linked file changed since the scan (a.pdf → held.pdf); retried next run' },
      ]);
      expect(await rowsOf(`SELECT key FROM public.${table}`)).toEqual([{ key: 'r' }]);
      await expect(stat(path.join(root, 'held.pdf'))).resolves.toBeDefined();
      await expect(stat(path.join(root, 'a.pdf'))).resolves.toBeDefined();
    } finally {
      await store.close?.();
      await rm(root, { recursive: true, force: true });
    }
  });

  it.each(['pg', 'neon'] as const)(
    'skips a row locked by another transaction and deletes it on a later call (%s)',
    async (driver) => {
      const table = await keyedTable('locked');
      for (const key of ['locked', 'free'])
        await exec(`INSERT INTO public.${table} (key, created_at) VALUES ($1, $2)`, [key, ago(40 * DAY)]);
      const store = rowsStore(table, {}, driver);
      const holder = await admin.connect();
      try {
        const items = [...(await scanEligible(store, cutoffs30d())).values()];
        await holder.query('BEGIN');
        await holder.query(`SELECT 1 FROM public.${table} WHERE key = 'locked' FOR UPDATE`);
        const first = await store.delete(items);
        expect(first).toEqual(
          expect.arrayContaining([
            { key: 'free', status: 'deleted' },
            { key: 'locked', status: 'kept', error: 'locked by another transaction; retried next run' },
          ]),
        );
        await holder.query('COMMIT');
        expect(await store.delete(items)).toEqual(
          expect.arrayContaining([
            { key: 'free', status: 'missing' },
            { key: 'locked', status: 'deleted' },
          ]),
        );
      } finally {
        holder.release();
        await store.close?.();
      }
    },
  );

  it('keeps a row whose timestamp or purpose changed after the scan', async () => {
    const table = await keyedTable('changed', 'created_at', ', purpose text');
    for (const key of ['moved', 'repurposed', 'unchanged'])
      await exec(`INSERT INTO public.${table} (key, created_at, purpose) VALUES ($1, $2, 'General')`, [
        key,
        ago(40 * DAY),
      ]);
    const store = rowsStore(table, { retention: { by: 'purpose', rules: { General: '30d', Legal: '7y' } } });
    try {
      const cutoffs = computeCutoffs({ by: 'purpose', rules: { General: '30d', Legal: '7y' } }, new Date());
      const items = [...(await scanEligible(store, cutoffs)).values()];
      expect(items.map((item) => item.attributes)).toEqual([
        { purpose: 'General' },
        { purpose: 'General' },
        { purpose: 'General' },
      ]);
      await exec(`UPDATE public.${table} SET created_at = now() WHERE key = 'moved'`);
      await exec(`UPDATE public.${table} SET purpose = 'Legal' WHERE key = 'repurposed'`);
      const status = Object.fromEntries((await store.delete(items)).map((outcome) => [outcome.key, outcome.status]));
      expect(status).toEqual({ moved: 'kept', repurposed: 'kept', unchanged: 'deleted' });
    } finally {
      await store.close?.();
    }
  });

  it('moves rows to the archive in the deleting statement, and restores them once', async () => {
    const table = await keyedTable('archived', 'created_at', ', body text');
    await exec(
      `CREATE TABLE public.${table}_archive (LIKE public.${table}, archived_at timestamptz NOT NULL DEFAULT now())`,
    );
    for (const key of ['x', 'y'])
      await exec(`INSERT INTO public.${table} (key, created_at, body) VALUES ($1, $2, $3)`, [
        key,
        ago(40 * DAY),
        `body of ${key}`,
      ]);
    const store = rowsStore(table, { archive: { table: `public.${table}_archive` } });
    try {
      const items = [...(await scanEligible(store, cutoffs30d())).values()];
      expect((await store.delete(items)).map((outcome) => outcome.status)).toEqual(['deleted', 'deleted']);
      expect(await rowsOf(`SELECT key, body FROM public.${table}_archive ORDER BY key`)).toEqual([
        { key: 'x', body: 'body of x' },
        { key: 'y', body: 'body of y' },
      ]);
      expect(
        await rowsOf(
          `SELECT count(*)::int AS n FROM retention.row_audit_entries WHERE store = $1 AND archived_to = $2`,
          [store.location, `public.${table}_archive`],
        ),
      ).toEqual([{ n: 2 }]);

      const ref = { to: `public.${table}_archive`, policy: 'rows-test', runId: 'run-1' };
      const restored = await store.backups!.restore(ref, ['x', 'never']);
      expect(restored).toEqual(
        expect.arrayContaining([
          { key: 'x', status: 'restored' },
          { key: 'never', status: 'no_backup' },
        ]),
      );
      expect(await rowsOf(`SELECT key, body FROM public.${table}`)).toEqual([{ key: 'x', body: 'body of x' }]);
      expect(await store.backups!.restore(ref, ['x'])).toEqual([{ key: 'x', status: 'exists' }]);
      expect(
        await rowsOf(
          `SELECT action, status FROM retention.row_audit_entries WHERE store = $1 AND key = 'x' ORDER BY batch_id`,
          [store.location],
        ),
      ).toEqual([
        { action: 'delete', status: 'deleted' },
        { action: 'restore', status: 'restored' },
      ]);
    } finally {
      await store.close?.();
    }
  });

  it('reads a timestamp without time zone in the configured zone, and pages a composite key', async () => {
    const table = uniqueTable('local');
    await exec(
      `CREATE TABLE public.${table} (tenant text, id int, created_at timestamp NOT NULL, PRIMARY KEY (tenant, id))`,
    );
    await exec(`CREATE INDEX ON public.${table} (created_at, tenant, id)`);
    // 2024-01-01 12:00 in Paris is 11:00 UTC.
    for (const [tenant, id] of [
      ['acme', 1],
      ['acme', 2],
      ['zeta', 1],
    ] as const)
      await exec(`INSERT INTO public.${table} VALUES ($1, $2, '2024-01-01 12:00:00')`, [tenant, id]);
    const store = rowsStore(table, { timeZone: 'Europe/Paris' });
    try {
      const cutoffs = computeCutoffs('30d', new Date('2024-02-15T00:00:00Z'));
      const pages = [await store.scan({ cutoffs, limit: 2 })];
      pages.push(await store.scan({ cutoffs, limit: 2, cursor: pages[0]!.cursor! }));
      const items = pages.flatMap((page) => page.items);
      expect(items.map((item) => [item.key, item.timestamp.toISOString()])).toEqual([
        ['["acme", "1"]', '2024-01-01T11:00:00.000Z'],
        ['["acme", "2"]', '2024-01-01T11:00:00.000Z'],
        ['["zeta", "1"]', '2024-01-01T11:00:00.000Z'],
      ]);
      expect(pages.map((page) => page.done)).toEqual([false, true]);
      expect(await store.present(['["acme", "2"]', '["acme", "3"]', 'not json'])).toEqual(new Set(['["acme", "2"]']));
      const outcomes = await store.delete(items.slice(0, 2).map((item) => isEligible(item, cutoffs)!));
      expect(outcomes.map((outcome) => outcome.status)).toEqual(['deleted', 'deleted']);
      expect(await rowsOf(`SELECT tenant, id FROM public.${table}`)).toEqual([{ tenant: 'zeta', id: 1 }]);
    } finally {
      await store.close?.();
    }
  });

  it('deletes a batch in one statement inside its transaction, and reads the database clock', async () => {
    const table = await keyedTable('counted');
    for (let index = 0; index < 50; index += 1)
      await exec(`INSERT INTO public.${table} (key, created_at) VALUES ($1, $2)`, [`k${index}`, ago(40 * DAY)]);
    const statements: string[] = [];
    const sql = recordingClient(createSqlClient({ url: databases.get('pg')! }), statements);
    const store = createPostgresRowsStore(rowsConfig(table), { sql });
    try {
      const items = [...(await scanEligible(store, cutoffs30d())).values()];
      statements.length = 0;
      expect((await store.delete(items)).every((outcome) => outcome.status === 'deleted')).toBe(true);
      expect(statements.map((text) => text.replace(/\s+/g, ' ').slice(0, 20))).toEqual([
        'BEGIN',
        "SELECT set_config('s",
        'WITH input AS (SELEC',
        'COMMIT',
      ]);
      const databaseNow = await store.clock.now();
      expect(Math.abs(databaseNow.getTime() - Date.now())).toBeLessThan(60_000);
    } finally {
      await store.close?.();
      await sql.close();
    }
  });
});

describe('fused sweep (sweepExpired)', () => {
  it.each(['pg', 'neon'] as const)(
    'deletes eligible, unheld rows per purpose in one statement per batch, resuming by cursor (%s)',
    async (driver) => {
      const table = await keyedTable('swept', 'created_at', ', purpose text');
      const seeds: Array<[string, string | null, number]> = [
        ['general-old', 'General', 40],
        ['general-young', 'General', 10],
        ['legal-old', 'Legal', 400],
        ['held-old', 'General', 50],
        ['unknown-old', 'Other', 41],
        ['null-old', null, 45],
        ['general-older', 'General', 60],
        ['locked-old', 'General', 70],
      ];
      for (const [key, purpose, days] of seeds)
        await exec(`INSERT INTO public.${table} (key, created_at, purpose) VALUES ($1, $2, $3)`, [
          key,
          ago(days * DAY),
          purpose,
        ]);
      const retention = { by: 'purpose', rules: { General: '30d', Legal: '7y' }, default: '30d' };
      const cutoffs = computeCutoffs(retention, new Date());
      const holds: Hold[] = [
        {
          id: 1,
          policy: null,
          key: 'held-',
          prefix: true,
          reason: 'litigation',
          createdBy: 'test',
          createdAt: new Date(),
        },
      ];
      const store = rowsStore(table, { retention }, driver);
      const sweep = sweepOf(store, `run-swept-${driver}`, cutoffs, holds);
      const holder = await admin.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(`SELECT 1 FROM public.${table} WHERE key = 'locked-old' FOR UPDATE`);
        const first = await sweep.next({ limit: 2, detail: 'rows' });
        // The key range up to the batch's last row holds the locked row: the batch is rolled back and redone skipping it.
        expect(first).toMatchObject({ deleted: 2, done: false, mode: 'skip_locked' });
        // Oldest first, the locked row skipped (left for a later run), its key and rule as the engine writes them.
        expect(first.rows!.map((row) => [row.key, row.rule, row.attributes])).toEqual([
          ['general-older', 'purpose=General: 30d', { purpose: 'General' }],
          ['null-old', 'default: 30d', { purpose: null }],
        ]);
        const second = await sweep.next({ limit: 2, detail: 'summary', cursor: first.cursor! });
        expect(second).toMatchObject({ deleted: 2, done: false, mode: 'skip_locked' });
        const third = await sweep.next({ limit: 2, detail: 'summary', cursor: second.cursor! });
        expect(third).toMatchObject({ deleted: 0, done: true, cursor: second.cursor });
        await holder.query('ROLLBACK');
        expect(
          (await rowsOf<{ key: string }>(`SELECT key FROM public.${table} ORDER BY key`)).map((row) => row.key),
        ).toEqual(['general-young', 'held-old', 'legal-old', 'locked-old']);
        expect(
          await rowsOf(
            `SELECT run_id, key, rule FROM retention.row_audit_entries WHERE store = $1 ORDER BY item_timestamp`,
            [store.location],
          ),
        ).toEqual([
          { run_id: `run-swept-${driver}`, key: 'general-older', rule: 'purpose=General: 30d' },
          { run_id: `run-swept-${driver}`, key: 'null-old', rule: 'default: 30d' },
          { run_id: `run-swept-${driver}`, key: 'unknown-old', rule: 'default: 30d' },
          { run_id: `run-swept-${driver}`, key: 'general-old', rule: 'purpose=General: 30d' },
        ]);
        // Read back as audit records, newest first, by run, key or policy.
        expect(
          (await store.audit!.trail({ runId: `run-swept-${driver}`, limit: 3 })).map((record) => record.key),
        ).toEqual(['general-old', 'unknown-old', 'null-old']);
        expect(
          (await store.audit!.trail({ runId: `run-swept-${driver}`, key: 'null-old', limit: 10 })).map((record) => [
            record.runId,
            record.action,
            record.status,
            record.actor,
            record.trigger,
            record.rule,
          ]),
        ).toEqual([[`run-swept-${driver}`, 'delete', 'deleted', 'test:rows', 'manual', 'default: 30d']]);
        expect(await store.audit!.trail({ runId: 'another-run', limit: 10 })).toEqual([]);
        expect(await store.audit!.trail({ policy: 'another-policy', limit: 10 })).toEqual([]);
      } finally {
        holder.release();
        await store.close?.();
      }
    },
  );

  it('deletes by key range while no row is in use, and keeps a row made young by a transaction committing meanwhile', async () => {
    const table = await keyedTable('ranged');
    for (let day = 31; day <= 40; day += 1)
      await exec(`INSERT INTO public.${table} (key, created_at, size) VALUES ($1, $2, 10)`, [
        `d${day}`,
        ago(day * DAY),
      ]);
    await exec(`INSERT INTO public.${table} (key, created_at) VALUES ('young', $1)`, [ago(DAY)]);
    const cutoffs = computeCutoffs('30d', new Date());
    const store = rowsStore(table, { size: 'size' });
    const sweep = sweepOf(store, 'run-ranged', cutoffs);
    const holder = await admin.connect();
    try {
      const first = await sweep.next({ limit: 4, detail: 'rows' });
      expect(first).toMatchObject({ deleted: 4, bytes: 40, done: false, mode: 'range' });
      expect(first.rows!.map((row) => row.key)).toEqual(['d40', 'd39', 'd38', 'd37']);
      // d36 is updated to now by a transaction that commits while the range statement waits for it.
      await holder.query('BEGIN');
      await holder.query(`UPDATE public.${table} SET created_at = now() WHERE key = 'd36'`);
      const sweeping = sweep.next({ limit: 4, detail: 'summary', cursor: first.cursor! });
      // Commit once the batch waits for d36 (within its short lock wait, it then re-checks d36's new version).
      for (let polls = 0; polls < 200; polls += 1) {
        const waiting = await rowsOf(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%DELETE%${table}%'`,
        );
        if (waiting.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await holder.query('COMMIT');
      const second = await sweeping;
      const third = await sweep.next({ limit: 4, detail: 'summary', cursor: second.cursor! });
      expect(third.done).toBe(true);
      expect(first.deleted + second.deleted + third.deleted).toBe(9);
      expect(
        (await rowsOf<{ key: string }>(`SELECT key FROM public.${table} ORDER BY key`)).map((row) => row.key),
      ).toEqual(['d36', 'young']);
      expect(
        await rowsOf(
          `SELECT count(*)::int AS n, count(DISTINCT key)::int AS keys FROM retention.row_audit_entries WHERE run_id = 'run-ranged'`,
        ),
      ).toEqual([{ n: 9, keys: 9 }]);
    } finally {
      holder.release();
      await store.close?.();
    }
  });

  it('sweeps a timestamp without time zone with a composite key by key ranges, to the last row', async () => {
    const table = uniqueTable('local_swept');
    await exec(
      `CREATE TABLE public.${table} (tenant text, id int, created_at timestamp NOT NULL, PRIMARY KEY (tenant, id))`,
    );
    await exec(`CREATE INDEX ON public.${table} (created_at, tenant, id)`);
    // Equal timestamps (the key decides the order), microseconds, and one row young in Paris time.
    const rows: Array<[string, number, string]> = [
      ['acme', 1, '2024-01-01 12:00:00'],
      ['acme', 2, '2024-01-01 12:00:00'],
      ['zeta', 1, '2024-01-01 12:00:00'],
      ['beta', 7, '2024-01-02 08:30:00.123456'],
      ['acme', 3, '2024-01-03 00:00:00'],
      ['young', 1, '2024-02-14 23:30:00'],
    ];
    for (const row of rows) await exec(`INSERT INTO public.${table} VALUES ($1, $2, $3)`, row);
    const store = rowsStore(table, { timeZone: 'Europe/Paris' });
    try {
      // 2024-02-14 23:30 in Paris is 22:30 UTC: not yet 1 day old at 2024-02-15T00:00Z.
      const cutoffs = computeCutoffs('1d', new Date('2024-02-15T00:00:00Z'));
      const sweep = sweepOf(store, 'run-local', cutoffs);
      const batches = [await sweep.next({ limit: 2, detail: 'rows' })];
      while (!batches.at(-1)!.done)
        batches.push(await sweep.next({ limit: 2, detail: 'rows', cursor: batches.at(-1)!.cursor! }));
      expect(batches.map((batch) => [batch.mode, batch.rows!.map((row) => row.key)])).toEqual([
        ['range', ['["acme", "1"]', '["acme", "2"]']],
        ['range', ['["zeta", "1"]', '["beta", "7"]']],
        ['range', ['["acme", "3"]']],
      ]);
      expect(batches[1]!.rows![1]!.timestamp.toISOString()).toBe('2024-01-02T07:30:00.123Z');
      expect(await rowsOf(`SELECT tenant, id FROM public.${table}`)).toEqual([{ tenant: 'young', id: 1 }]);
      expect(
        await rowsOf(
          `SELECT count(*)::int AS n FROM retention.row_audit_entries WHERE run_id = 'run-local' AND rule = 'retention: 1d'`,
        ),
      ).toEqual([{ n: 5 }]);
    } finally {
      await store.close?.();
    }
  });

  it('walks at most a bounded stretch of the index per statement when few rows are eligible', async () => {
    const table = await keyedTable('sparse', 'created_at', ', purpose text');
    // 3,000 old rows, all Legal (kept 7 years) but two, which are General (30 days).
    await exec(`INSERT INTO public.${table} (key, created_at, purpose)
                SELECT lpad(g::text, 5, '0'), now() - interval '400 days' + g * interval '1 minute', CASE WHEN g IN (300, 2800) THEN 'General' ELSE 'Legal' END
                  FROM generate_series(1, 3000) AS g`);
    const retention = { by: 'purpose', rules: { General: '30d', Legal: '7y' } };
    const cutoffs = computeCutoffs(retention, new Date());
    const store = rowsStore(table, { retention });
    let sweep = sweepOf(store, 'run-sparse', cutoffs);
    try {
      // Batches of 2 look at most 1,000 entries each (the minimum walk): a stretch without eligible rows ends a short batch, not the run.
      const expected = ['00300', '02800'];
      const pages = [await store.scan({ cutoffs, limit: 2 })];
      while (!pages.at(-1)!.done) pages.push(await store.scan({ cutoffs, limit: 2, cursor: pages.at(-1)!.cursor! }));
      expect(pages.flatMap((page) => page.items.map((item) => item.key))).toEqual(expected);
      expect(pages.length).toBeGreaterThanOrEqual(3);
      expect(pages.every((page) => page.items.length <= 2)).toBe(true);

      for (const mode of ['range', 'skip_locked'] as const) {
        const holder = await admin.connect();
        try {
          // An eligible row in use makes the range statement fall back; the walk bounds both statements.
          if (mode === 'skip_locked') {
            await holder.query('BEGIN');
            await holder.query(`SELECT 1 FROM public.${table} WHERE key = '00750b' FOR UPDATE`);
          }
          const batches = [await sweep.next({ limit: 2, detail: 'rows' })];
          while (!batches.at(-1)!.done)
            batches.push(await sweep.next({ limit: 2, detail: 'rows', cursor: batches.at(-1)!.cursor! }));
          if (mode === 'range') {
            expect(batches.flatMap((batch) => batch.rows!.map((row) => row.key))).toEqual(expected);
            expect(batches.some((batch) => batch.deleted === 0 && !batch.done)).toBe(true);
            expect(batches.every((batch) => batch.mode === 'range')).toBe(true);
            await exec(
              `INSERT INTO public.${table} (key, created_at, purpose) VALUES ('00750b', now() - interval '100 days', 'General'), ('02750b', now() - interval '50 days', 'General')`,
            );
          } else {
            expect(batches.flatMap((batch) => batch.rows!.map((row) => row.key))).toEqual(['02750b']);
            expect(batches.at(-1)!.mode).toBe('skip_locked');
          }
          sweep = sweepOf(store, 'run-sparse-2', cutoffs);
        } finally {
          if (mode === 'skip_locked') await holder.query('ROLLBACK');
          holder.release();
        }
      }
      expect(await rowsOf(`SELECT key FROM public.${table} WHERE purpose = 'General'`)).toEqual([{ key: '00750b' }]);
    } finally {
      await store.close?.();
    }
  });

  it('sweeps and counts one purpose at a time when an index starts with (purpose, timestamp)', async () => {
    const table = await keyedTable('segmented', 'created_at', ', purpose text');
    await exec(`CREATE INDEX ON public.${table} (purpose, created_at, key)`);
    const seeds: Array<[string, string | null, number]> = [
      ['null-old', null, 90],
      ['other-old', 'Other', 80],
      ['legal-ancient', 'Legal', 3000],
      ['general-old-1', 'General', 70],
      ['general-old-2', 'General', 60],
      ['general-old-3', 'General', 50],
      ['general-young', 'General', 5],
      ['other-young', 'Other', 5],
      ['held-old', 'General', 65],
    ];
    for (const [key, purpose, days] of seeds)
      await exec(`INSERT INTO public.${table} (key, created_at, purpose) VALUES ($1, $2, $3)`, [
        key,
        ago(days * DAY),
        purpose,
      ]);
    // 2,000 Legal rows kept for years: the timestamp walk would read them all, the purpose ranges never do.
    await exec(
      `INSERT INTO public.${table} (key, created_at, purpose) SELECT 'legal-' || g, now() - interval '400 days' + g * interval '1 minute', 'Legal' FROM generate_series(1, 2000) AS g`,
    );
    const retention = { by: 'purpose', default: '30d', rules: { General: '30d', Legal: '7y' } };
    const cutoffs = computeCutoffs(retention, new Date());
    const holds: Hold[] = [
      {
        id: 1,
        policy: null,
        key: 'held-old',
        prefix: false,
        reason: 'litigation',
        createdBy: 'test',
        createdAt: new Date(),
      },
    ];
    const store = rowsStore(table, { retention });
    const sweep = sweepOf(store, 'run-segmented', cutoffs, holds);
    try {
      await store.open();
      expect(store.warnings.map((warning) => warning.code)).not.toContain('purpose_without_index');
      expect(await store.census({ cutoffs, holds })).toMatchObject({ eligible: 6, held: 1, exact: true });

      const batches = [await sweep.next({ limit: 2, detail: 'rows' })];
      while (!batches.at(-1)!.done)
        batches.push(await sweep.next({ limit: 2, detail: 'rows', cursor: batches.at(-1)!.cursor! }));
      // Purpose by purpose (NULL last), oldest first within each: not the timestamp order of the table.
      expect(batches.map((batch) => batch.rows!.map((row) => row.key))).toEqual([
        ['general-old-1', 'general-old-2'],
        ['general-old-3'],
        ['legal-ancient'],
        ['other-old'],
        ['null-old'],
      ]);
      expect(JSON.parse(batches[0]!.cursor!)).toMatchObject({ purpose: 'General' });
      expect(
        await rowsOf(`SELECT key, rule FROM retention.row_audit_entries WHERE run_id = 'run-segmented' ORDER BY key`),
      ).toEqual([
        { key: 'general-old-1', rule: 'purpose=General: 30d' },
        { key: 'general-old-2', rule: 'purpose=General: 30d' },
        { key: 'general-old-3', rule: 'purpose=General: 30d' },
        { key: 'legal-ancient', rule: 'purpose=Legal: 7y' },
        { key: 'null-old', rule: 'default: 30d' },
        { key: 'other-old', rule: 'default: 30d' },
      ]);
      expect(await store.census({ cutoffs, holds })).toMatchObject({ eligible: 0, held: 1 });
      // A checkpoint along the timestamp index (taken before the index existed) starts the purposes over.
      const resumed = await sweep.next({
        limit: 2,
        detail: 'summary',
        cursor: JSON.stringify({ ts: ago(DAY).toISOString(), key: ['x'] }),
      });
      expect(resumed).toMatchObject({ deleted: 0, done: false });
      expect(JSON.parse(resumed.cursor!)).toEqual({ purpose: 'Legal' });
    } finally {
      await store.close?.();
    }
    // Without that index the store says what it costs and how to fix it.
    const unindexed = await keyedTable('unsegmented', 'created_at', ', purpose text');
    const plain = rowsStore(unindexed, { retention });
    await plain.open();
    await plain.close?.();
    expect(plain.warnings).toContainEqual(
      expect.objectContaining({
        code: 'purpose_without_index',
        fix: `CREATE INDEX CONCURRENTLY ON "public"."${unindexed}" ("purpose", "created_at", "key"): each purpose is then swept over its own due rows`,
      }),
    );
  });

  it('goes back to key ranges for the next run after a run met rows in use', async () => {
    const table = await keyedTable('contended');
    for (let day = 31; day <= 36; day += 1)
      await exec(`INSERT INTO public.${table} (key, created_at) VALUES ($1, $2)`, [`d${day}`, ago(day * DAY)]);
    const cutoffs = computeCutoffs('30d', new Date());
    const store = rowsStore(table);
    const holder = await admin.connect();
    try {
      const firstRun = sweepOf(store, 'run-contended-1', cutoffs);
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM public.${table} WHERE key = 'd36' FOR UPDATE`);
      const first = await firstRun.next({ limit: 2, detail: 'summary' });
      const second = await firstRun.next({ limit: 2, detail: 'summary', cursor: first.cursor! });
      expect([first.mode, second.mode]).toEqual(['skip_locked', 'skip_locked']);
      await holder.query('ROLLBACK');
      const next = await sweepOf(store, 'run-contended-2', cutoffs).next({ limit: 10, detail: 'summary' });
      expect(next).toMatchObject({ mode: 'range', deleted: 2, done: true });
      expect(
        await rowsOf(
          `SELECT key, run_id FROM retention.row_audit_entries WHERE run_id LIKE 'run-contended-%' ORDER BY item_timestamp`,
        ),
      ).toEqual([
        { key: 'd36', run_id: 'run-contended-2' },
        { key: 'd35', run_id: 'run-contended-1' },
        { key: 'd34', run_id: 'run-contended-1' },
        { key: 'd33', run_id: 'run-contended-1' },
        { key: 'd32', run_id: 'run-contended-1' },
        { key: 'd31', run_id: 'run-contended-2' },
      ]);
    } finally {
      holder.release();
      await store.close?.();
    }
  });

  it('fences one-statement batches with the previous checkpoint write, and stops right after a lease takeover', async () => {
    const table = await keyedTable('engine_fenced');
    for (let day = 31; day <= 39; day += 1)
      await exec(`INSERT INTO public.${table} (key, created_at) VALUES ($1, $2)`, [`d${day}`, ago(day * DAY)]);
    const policy = parseConfig({
      policies: [
        {
          name: 'engine-fenced',
          class: 'rows',
          schedule: '0 2 * * *',
          store: { kind: 'postgres', url: databases.get('pg')! },
          table: `public.${table}`,
          timestamp: 'created_at',
          retention: '30d',
          batchSize: 3,
          limits: { maxDeleteFraction: 1 },
        },
      ],
    }).policies[0]!;
    if (policy.class !== 'rows') throw new Error('expected a rows policy');
    const control = new PostgresControlStore(createSqlClient({ url: await server.createDatabase('control_fenced') }));
    await control.migrate();
    const renewals = vi.spyOn(control, 'renewLease');
    const run = async (breakOnCall?: number) => {
      let calls = 0;
      const store = beforeEachSweep(createPostgresRowsStore(policy), async () => {
        calls += 1;
        // Another holder takes over while this batch runs: its checkpoint write fails, and no batch follows.
        if (calls === breakOnCall) await control.breakLease('engine-fenced');
      });
      try {
        return {
          report: await runPolicy(
            policy,
            { trigger: 'scheduled', dryRun: false, force: false, list: false },
            { control, store, clock: { now: () => new Date() }, log: quietLog, actor: 'test:engine' },
          ),
          calls,
        };
      } finally {
        await store.close?.();
      }
    };
    try {
      const broken = await run(2);
      expect(broken.report).toMatchObject({ status: 'partial', stopReason: 'lease_lost', deleted: 6 });
      expect(broken.calls).toBe(2);
      renewals.mockClear();
      const clean = await run();
      expect(clean.report).toMatchObject({ status: 'completed', deleted: 3 });
      // One lease round trip before the first statement; each later one follows a fenced checkpoint write.
      expect(renewals).toHaveBeenCalledTimes(1);
    } finally {
      await control.close();
    }
  });

  it('waits pauseBetweenBatchesMs before its lease check, never between the check and the statement', async () => {
    const table = await keyedTable('engine_paced');
    for (let day = 31; day <= 36; day += 1)
      await exec(`INSERT INTO public.${table} (key, created_at) VALUES ($1, $2)`, [`p${day}`, ago(day * DAY)]);
    const policy = parseConfig({
      policies: [
        {
          name: 'engine-paced',
          class: 'rows',
          schedule: '0 2 * * *',
          store: { kind: 'postgres', url: databases.get('pg')! },
          table: `public.${table}`,
          timestamp: 'created_at',
          retention: '30d',
          batchSize: 2,
          pauseBetweenBatchesMs: 300,
          limits: { maxDeleteFraction: 1 },
        },
      ],
    }).policies[0]!;
    if (policy.class !== 'rows') throw new Error('expected a rows policy');
    const control = new PostgresControlStore(createSqlClient({ url: await server.createDatabase('control_paced') }));
    await control.migrate();
    const events: Array<{ event: 'renew' | 'sweep'; at: number }> = [];
    const renewLease = control.renewLease.bind(control);
    control.renewLease = async (lease, ttl) => {
      events.push({ event: 'renew', at: performance.now() });
      return renewLease(lease, ttl);
    };
    const store = beforeEachSweep(createPostgresRowsStore(policy), () => {
      events.push({ event: 'sweep', at: performance.now() });
    });
    try {
      const report = await runPolicy(
        policy,
        { trigger: 'scheduled', dryRun: false, force: false, list: false },
        { control, store, clock: { now: () => new Date() }, log: quietLog, actor: 'test:engine' },
      );
      expect(report).toMatchObject({ status: 'completed', deleted: 6 });
      const sweeps = events.flatMap((entry, index) => (entry.event === 'sweep' ? [index] : []));
      expect(sweeps.length).toBeGreaterThanOrEqual(3);
      for (const index of sweeps) {
        // Every statement directly follows a lease round trip, made after the pause.
        expect(events[index - 1]?.event).toBe('renew');
        expect(events[index]!.at - events[index - 1]!.at).toBeLessThan(250);
      }
      for (const [previous, next] of sweeps.slice(0, -1).map((index, position) => [index, sweeps[position + 1]!])) {
        expect(events[next!]!.at - events[previous!]!.at).toBeGreaterThanOrEqual(300);
      }
    } finally {
      await store.close?.();
      await control.close();
    }
  });

  it('reports rows left in use as backlog, measured by a second census only when a batch skipped rows', async () => {
    const table = await keyedTable('engine_backlog');
    for (let day = 31; day <= 35; day += 1)
      await exec(`INSERT INTO public.${table} (key, created_at) VALUES ($1, $2)`, [`d${day}`, ago(day * DAY)]);
    const policy = parseConfig({
      policies: [
        {
          name: 'engine-backlog',
          class: 'rows',
          schedule: '0 2 * * *',
          store: { kind: 'postgres', url: databases.get('pg')! },
          table: `public.${table}`,
          timestamp: 'created_at',
          retention: '30d',
          limits: { maxDeleteFraction: 1 },
        },
      ],
    }).policies[0]!;
    if (policy.class !== 'rows') throw new Error('expected a rows policy');
    const control = new PostgresControlStore(createSqlClient({ url: await server.createDatabase('control_backlog') }));
    await control.migrate();
    const holder = await admin.connect();
    const run = async () => {
      const store = createPostgresRowsStore(policy);
      const census = vi.spyOn(store, 'census');
      try {
        const report = await runPolicy(
          policy,
          { trigger: 'scheduled', dryRun: false, force: false, list: false },
          { control, store, clock: { now: () => new Date() }, log: quietLog, actor: 'test:engine' },
        );
        return { report, censuses: census.mock.calls.length };
      } finally {
        await store.close?.();
      }
    };
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM public.${table} WHERE key = 'd33' FOR UPDATE`);
      const contended = await run();
      expect(contended.report).toMatchObject({ status: 'completed', deleted: 4, backlog: 1 });
      expect(contended.censuses).toBe(2);
      await holder.query('ROLLBACK');
      const clean = await run();
      expect(clean.report).toMatchObject({ status: 'completed', deleted: 1, backlog: 0, oldestOverdueSeconds: 0 });
      expect(clean.censuses).toBe(1);
    } finally {
      holder.release();
      await control.close();
    }
  });

  it.each([true, false])(
    'runs through the engine with audit %s: counts from a summary, or a control-store record per row',
    async (audit) => {
      const table = await keyedTable(`engine_audit_${audit}`);
      for (const [key, days, size] of [
        ['old-1', 40, 100],
        ['old-2', 50, 20],
        ['held-old', 45, 5],
        ['young', 5, 7],
      ] as const) {
        await exec(`INSERT INTO public.${table} (key, created_at, size) VALUES ($1, $2, $3)`, [
          key,
          ago(days * DAY),
          size,
        ]);
      }
      const policy = parseConfig({
        policies: [
          {
            name: `engine-audit-${audit}`,
            class: 'rows',
            schedule: '0 2 * * *',
            store: { kind: 'postgres', url: databases.get('pg')! },
            table: `public.${table}`,
            timestamp: 'created_at',
            size: 'size',
            retention: '30d',
            audit,
            limits: { maxDeleteFraction: 1 },
          },
        ],
      }).policies[0]!;
      if (policy.class !== 'rows') throw new Error('expected a rows policy');
      const store = createPostgresRowsStore(policy);
      const control = new PostgresControlStore(
        createSqlClient({ url: await server.createDatabase(`control_audit_${audit}`) }),
      );
      await control.migrate();
      try {
        await control.addHold({
          policy: null,
          key: 'held-old',
          prefix: false,
          reason: 'litigation',
          createdBy: 'test',
        });
        const report = await runPolicy(
          policy,
          { trigger: 'scheduled', dryRun: false, force: false, list: false },
          { control, store, clock: { now: () => new Date() }, log: quietLog, actor: 'test:engine' },
        );
        // Both paths report the same: held rows counted (by the census when swept in one statement).
        expect(report).toMatchObject({
          status: 'completed',
          deleted: 2,
          eligible: 3,
          held: 1,
          failed: 0,
          bytesFreed: 120,
          backlog: 0,
        });
        expect(
          (await rowsOf<{ key: string }>(`SELECT key FROM public.${table} ORDER BY key`)).map((row) => row.key),
        ).toEqual(['held-old', 'young']);
        const inControl = (await control.audit({ runId: report.runId, limit: 10 })).filter(
          (record) => record.action === 'delete',
        );
        const trail = (await readAuditTrail(control, [store], { runId: report.runId, limit: 10 })).filter(
          (record) => record.action === 'delete',
        );
        expect(trail.map((record) => [record.key, record.status, record.actor]).sort()).toEqual([
          ['old-1', 'deleted', 'test:engine'],
          ['old-2', 'deleted', 'test:engine'],
        ]);
        expect(inControl).toHaveLength(audit ? 0 : 2);
        expect(trail.every((record) => (record.source !== undefined) === audit)).toBe(true);
      } finally {
        await store.close?.();
        await control.close();
      }
    },
  );

  it('counts the census per purpose rule, holds excluded', async () => {
    const table = await keyedTable('census', 'created_at', ', purpose text');
    for (const [key, purpose, days] of [
      ['a', 'General', 40],
      ['b', 'Legal', 400],
      ['c', 'General', 100],
      ['d', null, 5],
    ] as const) {
      await exec(`INSERT INTO public.${table} (key, created_at, purpose) VALUES ($1, $2, $3)`, [
        key,
        ago(days * DAY),
        purpose,
      ]);
    }
    const retention = { by: 'purpose', rules: { General: '30d', Legal: '7y' } };
    const store = rowsStore(table, { retention });
    try {
      const cutoffs = computeCutoffs(retention, new Date(now));
      const census = await store.census({
        cutoffs,
        holds: [{ id: 1, policy: null, key: 'a', prefix: false, reason: 'r', createdBy: 't', createdAt: new Date() }],
      });
      expect(census).toMatchObject({ total: 4, eligible: 1, held: 1, exact: true });
      expect(census.oldestOverdueSeconds).toBeCloseTo(70 * 86_400, -2);
    } finally {
      await store.close?.();
    }
  });
});

describe('partition pushdown', () => {
  it('drops partitions entirely past the cutoffs, skips those with kept rows, and returns their row counts', async () => {
    const table = uniqueTable('events');
    await exec(
      `CREATE TABLE public.${table} (id bigint, created_at timestamptz NOT NULL, purpose text, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)`,
    );
    await exec(`CREATE INDEX ON public.${table} (created_at, id)`);
    const day = (n: number) => new Date(Date.UTC(2024, 2, n));
    for (let n = 1; n <= 10; n += 1) {
      await exec(
        `CREATE TABLE public.${table}_d${n} PARTITION OF public.${table} FOR VALUES FROM ('${day(n).toISOString()}') TO ('${day(n + 1).toISOString()}')`,
      );
      for (let row = 0; row < 3; row += 1)
        await exec(`INSERT INTO public.${table} VALUES ($1, $2, 'General')`, [
          n * 10 + row,
          new Date(day(n).getTime() + row * 3_600_000),
        ]);
    }
    await exec(`INSERT INTO public.${table} VALUES (39, $1, 'Legal')`, [day(3)]);
    const retention = { by: 'purpose', rules: { General: '3d', Legal: '7y' }, default: '3d' };
    const cutoffs = computeCutoffs(retention, day(11));
    const holds: Hold[] = [
      {
        id: 1,
        policy: null,
        key: '["51", ',
        prefix: true,
        reason: 'litigation',
        createdBy: 'test',
        createdAt: day(11),
      },
    ];
    const store = rowsStore(table, { retention });
    try {
      const planned = await store.partitions.dropExpired(cutoffs, holds, { dryRun: true });
      expect(
        planned.map((outcome) => [outcome.partition.replace(`public.${table}_`, ''), outcome.status, outcome.rows]),
      ).toEqual([
        ['d1', 'would_drop', 3],
        ['d2', 'would_drop', 3],
        ['d3', 'skipped', 0],
        ['d4', 'would_drop', 3],
        ['d5', 'skipped', 0],
        ['d6', 'would_drop', 3],
        ['d7', 'would_drop', 3],
      ]);
      expect((await rowsOf(`SELECT count(*)::int AS n FROM public.${table}`))[0]).toEqual({ n: 31 });

      // The engine's fence and budget are asked before each partition: false stops there.
      let allowed = 1;
      const stopped = await store.partitions.dropExpired(cutoffs, holds, { beforeEach: async () => allowed-- > 0 });
      expect(stopped.map((outcome) => [outcome.partition, outcome.status])).toEqual([
        [`public.${table}_d1`, 'dropped'],
      ]);

      const dropped = [...stopped, ...(await store.partitions.dropExpired(cutoffs, holds))];
      expect(
        dropped
          .filter((outcome) => outcome.status === 'dropped')
          .map((outcome) => [outcome.partition, outcome.rows, outcome.upperBound.toISOString()]),
      ).toEqual([1, 2, 4, 6, 7].map((n) => [`public.${table}_d${n}`, 3, day(n + 1).toISOString()]));
      expect(await rowsOf(`SELECT to_regclass($1) AS gone`, [`public.${table}_d1`])).toEqual([{ gone: null }]);
      expect(
        await rowsOf(
          `SELECT keys[1] AS key, row_count::int, action FROM retention.row_audit WHERE store = $1 ORDER BY id`,
          [store.location],
        ),
      ).toEqual([1, 2, 4, 6, 7].map((n) => ({ key: `public.${table}_d${n}`, row_count: 3, action: 'partition_drop' })));

      // The rest goes row by row: expired General rows of the kept partitions, not Legal, not held.
      const items = [...(await scanEligible(store, cutoffs)).values()].filter(
        (item) => !item.key.startsWith('["51", '),
      );
      const outcomes = await store.delete(items);
      expect(outcomes.map((outcome) => outcome.key).sort()).toEqual([
        '["30", "2024-03-03T00:00:00.000000Z"]',
        '["31", "2024-03-03T01:00:00.000000Z"]',
        '["32", "2024-03-03T02:00:00.000000Z"]',
        '["50", "2024-03-05T00:00:00.000000Z"]',
        '["52", "2024-03-05T02:00:00.000000Z"]',
      ]);
      expect(outcomes.every((outcome) => outcome.status === 'deleted')).toBe(true);
    } finally {
      await store.close?.();
    }
  });
});

/** Records every statement text sent, inside transactions too. */
function recordingClient(inner: SqlClient, statements: string[]): SqlClient {
  return {
    driver: inner.driver,
    query: (text, params) => {
      statements.push(text);
      return inner.query(text, params);
    },
    transaction: (fn) =>
      inner.transaction((tx) => {
        statements.push('BEGIN');
        return fn({ query: (text, params) => (statements.push(text), tx.query(text, params)) }).then(
          (result) => (statements.push('COMMIT'), result),
        );
      }),
    close: () => inner.close(),
  } as SqlClient;
}
