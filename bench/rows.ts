import { parseArgs } from 'node:util';
import pg from 'pg';
import { parseConfig } from '../lib/config/load.ts';
import { PostgresControlStore } from '../lib/control/postgres/store.ts';
import { type Cutoffs, systemClock } from '../lib/core/types.ts';
import { runPolicy } from '../lib/engine/run.ts';
import { Logger } from '../lib/observe/log.ts';
import { computeCutoffs, selectPage } from '../lib/policy/plan.ts';
import { createSqlClient } from '../lib/sql/client.ts';
import { inspectRowsTable } from '../lib/stores/postgres/catalog.ts';
import { createPostgresRowsStore, type PostgresRowsStore } from '../lib/stores/postgres/rows.ts';
import type { Cursor } from '../lib/stores/postgres/sql.ts';
import { type SweepMode, sweepRows } from '../lib/stores/postgres/sweep.ts';
import { createStore } from '../lib/stores/registry.ts';
import { startTestPostgres, type TestPostgres } from '../test/support/postgres.ts';
import { batchGaps, cliWorkspace, median, runCli } from './cliRun.ts';

/**
 * The Performance section of issue 3, printed (not a timed test):
 *
 *   npx tsx bench/rows.ts [--rows 2000000] [--batch 5000] [--repeat 3] [--only sweeps,partitions,sparse]
 *
 * A table of `rows` documents, half of them past a 30-day retention, deleted several ways, each
 * with and without a long transaction open in another session (it holds back the xmin horizon,
 * so dead tuples cannot be cleaned up while the deletion runs):
 *   (e) the engine end to end (`runPolicy`: lease, census and limits, one statement per batch,
 *       checkpoints), which is what a scheduled run does,
 *   (a) this store's fused sweep (`sweepExpired`: select + delete + row audit in ONE statement
 *       per batch, by key range along the index, keyset cursor), returning a per-batch summary,
 *   (b) the same without the row-audit insert (its cost),
 *   (s) the same as (a) with one expired row locked by another session: the first batch meets
 *       it and is redone with FOR UPDATE SKIP LOCKED, as are the rest (the statement the issue
 *       names),
 *   (a2) the scan + delete path (scan page → engine selection → delete batch by key with
 *       per-item re-check), with row audit: what rows with linked files or children go through,
 *   (c) one unbatched DELETE (the baseline),
 *   (d) the naive loop `DELETE … WHERE id IN (SELECT id … LIMIT n)`,
 *   (r) reference: the bare recipe with the SKIP LOCKED the issue requires and nothing else
 *       (no keyset cursor, audit, results or timeouts).
 * Then 30 expired daily partitions holding half as many rows are dropped by the store, and
 * (p) a per-purpose table where few rows are due is counted and swept twice, without and with
 * an index on (purpose, timestamp).
 * Each scenario gets a fresh copy of the seeded database (CREATE DATABASE … TEMPLATE).
 */
const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '2000000' },
    batch: { type: 'string', default: '5000' },
    repeat: { type: 'string', default: '3' },
    only: { type: 'string', default: 'sweeps,partitions,sparse' },
    'batch-size': { type: 'string' },
    /** Only these of the sweeps' scenarios, by letter: `e,ea,a,c` (c, the baseline, always runs). */
    scenarios: { type: 'string' },
  },
});
const ROWS = Number(args.rows);
const BATCH = Number(args.batch);
/** Each scenario runs this many times (fresh copies); the run with the median time is reported. */
const REPEAT = Number(args.repeat);
/** Which parts run: `sweeps` (the tables), `partitions`, `sparse` ((p)), `cli` (a policy through the CLI). */
const ONLY = new Set(args.only.split(','));
const DAY_MS = 86_400_000;

interface Measure {
  name: string;
  deleted: number;
  seconds: number;
  batches: number[];
  peakRssMb: number;
  /** Seconds of every repetition. */
  spread?: number[];
}

let server: TestPostgres;
/** (e)'s time before its first batch, per run; printed after each table. */
const setupTimes: number[] = [];
const database = (name: string) => server.url(name);

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** 2 × rows spread evenly over 60 days: the older half is past a 30-day retention. */
async function seed(): Promise<void> {
  await withClient(database('postgres'), (client) => client.query('CREATE DATABASE bench_seed'));
  await withClient(database('bench_seed'), async (client) => {
    await client.query(
      `CREATE TABLE documents (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, purpose_code text, body text)`,
    );
    await client.query(
      `INSERT INTO documents SELECT g, now() - interval '60 days' + (g::float8 / $1) * interval '60 days',
              (ARRAY['General','Financial','Legal'])[1 + g % 3], repeat('x', 60) FROM generate_series(1, $1) AS g`,
      [ROWS],
    );
    await client.query('CREATE INDEX documents_created_at ON documents (created_at, id)');
    await client.query('VACUUM ANALYZE documents');
  });
}

let copies = 0;
async function dropCopy(name: string): Promise<void> {
  await withClient(database('postgres'), (client) => client.query(`DROP DATABASE ${name}`));
}

async function freshCopy(): Promise<string> {
  copies += 1;
  const name = `bench_run_${copies}`;
  // FILE_COPY: the default (WAL_LOG) writes the whole copy to the WAL, whose checkpoint would then
  // land inside the next scenario's timing. Every scenario starts right after a checkpoint.
  await withClient(database('postgres'), async (client) => {
    await client.query(`CREATE DATABASE ${name} TEMPLATE bench_seed STRATEGY FILE_COPY`);
    await client.query('CHECKPOINT');
  });
  return name;
}

/** Runs `run` while another session holds a transaction opened with `statements`. */
async function whileAnotherSession<T>(url: string, statements: string[], run: () => Promise<T>): Promise<T> {
  return withClient(url, async (holder) => {
    for (const statement of statements) await holder.query(statement);
    try {
      return await run();
    } finally {
      await holder.query('ROLLBACK');
    }
  });
}

/** Holds a snapshot (REPEATABLE READ + an xid) for the duration of `run`. */
function maybeLongTransaction<T>(url: string, open: boolean, run: () => Promise<T>): Promise<T> {
  return open
    ? whileAnotherSession(
        url,
        ['BEGIN ISOLATION LEVEL REPEATABLE READ', 'SELECT pg_current_xact_id(), count(*) FROM documents WHERE id = 1'],
        run,
      )
    : run();
}

/** Locks the oldest expired row in another session for the duration of `run`. */
function withRowInUse<T>(url: string, run: () => Promise<T>): Promise<T> {
  return whileAnotherSession(url, ['BEGIN', 'SELECT 1 FROM documents WHERE id = 1 FOR UPDATE'], run);
}

function rssTracker(): { sample(): void; peakMb(): number } {
  let peak = process.memoryUsage().rss;
  return { sample: () => (peak = Math.max(peak, process.memoryUsage().rss)), peakMb: () => Math.round(peak / 1e6) };
}

async function timed(
  name: string,
  loop: (batch: (work: () => Promise<number>) => Promise<number>) => Promise<void>,
): Promise<Measure> {
  const rss = rssTracker();
  const batches: number[] = [];
  let deleted = 0;
  const started = performance.now();
  await loop(async (work) => {
    const batchStarted = performance.now();
    const count = await work();
    batches.push(performance.now() - batchStarted);
    deleted += count;
    rss.sample();
    return count;
  });
  return { name, deleted, seconds: (performance.now() - started) / 1000, batches, peakRssMb: rss.peakMb() };
}

function benchStore(url: string): PostgresRowsStore {
  return createPostgresRowsStore({
    name: 'bench',
    retention: '30d',
    store: { kind: 'postgres', url, driver: 'pg' },
    table: 'public.documents',
    timestamp: 'created_at',
    audit: true,
    allowSeqScan: false,
    pauseBetweenBatchesMs: 0,
    statementTimeout: '60s',
    lockTimeout: '5s',
  });
}

/** Opens a store, fixes the cutoffs from the database clock (as a run would), runs `loop`. */
async function withStore(
  url: string,
  use: (store: PostgresRowsStore, cutoffs: Cutoffs) => Promise<Measure>,
): Promise<Measure> {
  const store = benchStore(url);
  await store.open();
  try {
    return await use(store, computeCutoffs('30d', await store.clock.now()));
  } finally {
    await store.close();
  }
}

/** One one-statement batch from `cursor` (absent: the start). */
type SweepBatch = (cursor: string | undefined) => Promise<{ deleted: number; cursor?: string; done: boolean }>;

/** One pass of one-statement batches from the start, each batch timed. */
function sweepToEnd(next: SweepBatch, name: string): Promise<Measure> {
  return timed(name, async (batch) => {
    let cursor: string | undefined;
    for (let done = false; !done; ) {
      await batch(async () => {
        const result = await next(cursor);
        ({ cursor, done } = result);
        return result.deleted;
      });
    }
  });
}

/** The store's one-statement batches, as one run of the engine sends them. */
function storeSweep(store: PostgresRowsStore, cutoffs: Cutoffs): SweepBatch {
  const session = store.sweep!.begin({ runId: 'bench', actor: 'bench', trigger: 'manual' }, { cutoffs, holds: [] });
  return (cursor) => session.next({ limit: BATCH, detail: 'summary', ...(cursor === undefined ? {} : { cursor }) });
}

function fusedSweep(url: string, name: string): Promise<Measure> {
  return withStore(url, (store, cutoffs) => sweepToEnd(storeSweep(store, cutoffs), name));
}

/**
 * (b): the store's statements without the row-audit insert. The store sweeps in one statement
 * only when the statement audits, so they are sent here directly, with the store's timeouts.
 */
async function unauditedSweep(url: string, name: string): Promise<Measure> {
  const sql = createSqlClient({ url, driver: 'pg' });
  try {
    const request = {
      table: 'public.documents',
      timestamp: 'created_at',
      filter: [],
      children: [],
      allowSeqScan: false,
      audit: false,
    };
    const { shape } = await inspectRowsTable(sql, request, (field) => field, {});
    const cutoffs = computeCutoffs('30d', (await sql.query<{ now: Date }>('SELECT now() AS now'))[0]!.now);
    let mode: SweepMode = 'range';
    return await sweepToEnd(async (cursor) => {
      const query = {
        cutoffs,
        holds: [],
        limit: BATCH,
        detail: 'summary' as const,
        ...(cursor === undefined ? {} : { cursor: JSON.parse(cursor) as Cursor }),
      };
      const result = await sweepRows(sql, shape, query, {
        statementTimeoutMs: 60_000,
        lockTimeoutMs: 5_000,
        audit: undefined,
        mode,
      });
      mode = result.mode;
      return {
        deleted: result.deleted,
        done: result.done,
        ...(result.cursor ? { cursor: JSON.stringify(result.cursor) } : {}),
      };
    }, name);
  } finally {
    await sql.close();
  }
}

function scanAndDelete(url: string, name: string): Promise<Measure> {
  return withStore(url, (store, cutoffs) =>
    timed(name, async (batch) => {
      let cursor: string | undefined;
      for (let done = false; !done; ) {
        await batch(async () => {
          const page = await store.scan({ cutoffs, limit: BATCH, ...(cursor === undefined ? {} : { cursor }) });
          ({ cursor, done } = { cursor: page.cursor, done: page.done });
          const { deletable } = selectPage(page.items, cutoffs, []);
          const outcomes = deletable.length > 0 ? await store.delete(deletable) : [];
          return outcomes.filter((outcome) => outcome.status === 'deleted').length;
        });
      }
    }),
  );
}

async function statements(url: string, name: string, text: string, repeat: boolean): Promise<Measure> {
  return withClient(url, (client) => {
    const cutoff = new Date(Date.now() - 30 * DAY_MS);
    return timed(name, async (batch) => {
      for (let count = -1; count !== 0 && (repeat || count === -1); ) {
        count = await batch(async () => (await client.query(text, repeat ? [cutoff, BATCH] : [cutoff])).rowCount ?? 0);
      }
    });
  });
}

/**
 * (e) What a scheduled run does: runPolicy end to end (lease, census and limits, one statement
 * per batch with its row audit, checkpoints). Batch times are the gaps between `batch_deleted`
 * log lines; the run's setup before the first batch (lease, recovery, census) is reported apart.
 */
async function engineRun(name: string, batchSize: number | undefined, label: string): Promise<Measure> {
  const controlName = `${name}_control`;
  await withClient(database('postgres'), (client) => client.query(`CREATE DATABASE ${controlName}`));
  const control = new PostgresControlStore(createSqlClient({ url: server.url(controlName) }));
  await control.migrate();
  const [policy] = parseConfig({
    policies: [
      {
        name: 'bench-engine',
        class: 'rows',
        schedule: '0 * * * *',
        store: { kind: 'postgres', url: server.url(name), driver: 'pg' },
        table: 'public.documents',
        timestamp: 'created_at',
        retention: '30d',
        ...(batchSize === undefined ? {} : { batchSize }),
        budget: '1h',
        limits: { maxDeletesPerRun: 100_000_000, maxDeleteFraction: 1 },
      },
    ],
  }).policies;
  const store = await createStore(policy!);
  const rss = rssTracker();
  const batches: number[] = [];
  let last = performance.now();
  let setupMs: number | undefined;
  const log = new Logger({
    sink: {
      write: (line) => {
        if (!line.includes('"event":"batch_deleted"')) return;
        const now = performance.now();
        if (setupMs === undefined) setupMs = now - last;
        else batches.push(now - last);
        last = now;
        rss.sample();
      },
    },
  });
  const started = performance.now();
  last = started;
  try {
    const report = await runPolicy(
      policy!,
      { trigger: 'manual', dryRun: false, force: false, list: false },
      { control, store, clock: systemClock, log, actor: 'bench' },
    );
    if (report.status !== 'completed') throw new Error(`engine run ended ${report.status}: ${report.error?.message}`);
    const seconds = (performance.now() - started) / 1000;
    setupTimes.push(Math.round(setupMs ?? 0));
    return { name: label, deleted: report.deleted, seconds, batches, peakRssMb: rss.peakMb() };
  } finally {
    await store.close();
    await control.close();
  }
}

const SCENARIOS: Array<[string, (url: string) => Promise<Measure>]> = [
  ['(e) engine run', (url) => engineRun(url, BATCH, '(e) engine run')],
  ['(ea) engine, adaptive', (url) => engineRun(url, undefined, '(ea) engine, adaptive')],
  ['(a) sweep, audit', (url) => fusedSweep(server.url(url), '(a) sweep, audit')],
  ['(b) sweep, no audit', (url) => unauditedSweep(server.url(url), '(b) sweep, no audit')],
  ['(s) row in use', (url) => withRowInUse(server.url(url), () => fusedSweep(server.url(url), '(s) row in use'))],
  ['(a2) scan+delete, audit', (url) => scanAndDelete(server.url(url), '(a2) scan+delete')],
  [
    '(c) one DELETE',
    (url) => statements(server.url(url), '(c) one DELETE', 'DELETE FROM documents WHERE created_at < $1', false),
  ],
  [
    '(d) naive IN loop',
    (url) =>
      statements(
        server.url(url),
        '(d) naive IN loop',
        'DELETE FROM documents WHERE id IN (SELECT id FROM documents WHERE created_at < $1 LIMIT $2)',
        true,
      ),
  ],
  [
    '(r) recipe + SKIP LOCKED',
    (url) =>
      statements(
        server.url(url),
        '(r) recipe+SKIP LOCKED',
        'DELETE FROM documents WHERE ctid = ANY(ARRAY(SELECT ctid FROM documents WHERE created_at < $1 ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED))',
        true,
      ),
  ],
];

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

function decileRatio(batches: number[]): number {
  const tenth = Math.max(1, Math.floor(batches.length / 10));
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  return mean(batches.slice(-tenth)) / mean(batches.slice(0, tenth));
}

function report(title: string, measures: Measure[]): void {
  const baseline = measures.find((measure) => measure.name.startsWith('(c)'))!;
  const rate = (measure: Measure) => measure.deleted / measure.seconds;
  console.log(`\n${title}`);
  console.log(
    'scenario              deleted   seconds      rows/s  ×(c)  batches  p50 ms  p99 ms  last/first decile  peak RSS MB  seconds of each run',
  );
  for (const measure of measures) {
    const sorted = [...measure.batches].sort((a, b) => a - b);
    console.log(
      [
        measure.name.padEnd(20),
        String(measure.deleted).padStart(8),
        measure.seconds.toFixed(2).padStart(9),
        Math.round(rate(measure)).toString().padStart(11),
        (rate(measure) / rate(baseline)).toFixed(2).padStart(5),
        String(measure.batches.length).padStart(8),
        quantile(sorted, 0.5).toFixed(1).padStart(7),
        quantile(sorted, 0.99).toFixed(1).padStart(7),
        decileRatio(measure.batches).toFixed(2).padStart(18),
        String(measure.peakRssMb).padStart(12),
        ` ${(measure.spread ?? []).map((seconds) => seconds.toFixed(2)).join(' / ')}`,
      ].join(' '),
    );
  }
}

/** 30 expired daily partitions (≈ rows/2 in all) and 5 current ones, dropped by the store. */
async function partitions(): Promise<void> {
  const url = server.url('bench_partitions');
  await withClient(database('postgres'), (client) => client.query('CREATE DATABASE bench_partitions'));
  const perDay = Math.round(ROWS / 2 / 30);
  await withClient(url, async (client) => {
    await client.query(
      `CREATE TABLE events (id bigint, created_at timestamptz NOT NULL, body text, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)`,
    );
    await client.query('CREATE INDEX events_created_at ON events (created_at, id)');
    const today = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS);
    for (let day = -40; day < 5; day += 1) {
      const from = new Date(today.getTime() + day * DAY_MS);
      const to = new Date(from.getTime() + DAY_MS);
      // Bounds come from this script's own arithmetic, not from input.
      await client.query(
        `CREATE TABLE events_${day + 40} PARTITION OF events FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`,
      );
      if (day >= -40 && day < -10) {
        await client.query(
          `INSERT INTO events SELECT g, $1::timestamptz + (g::float8 / $2) * interval '1 day', 'x' FROM generate_series(0, $2 - 1) AS g`,
          [from, perDay],
        );
      }
    }
    await client.query('VACUUM ANALYZE events');
  });
  const store = createPostgresRowsStore({
    name: 'bench-partitions',
    retention: '10d',
    store: { kind: 'postgres', url, driver: 'pg' },
    table: 'public.events',
    timestamp: 'created_at',
    audit: true,
    allowSeqScan: false,
    pauseBetweenBatchesMs: 0,
    statementTimeout: '60s',
    lockTimeout: '5s',
  });
  await store.open();
  try {
    const started = performance.now();
    const outcomes = await store.partitions.dropExpired(computeCutoffs('10d', await store.clock.now()), []);
    const seconds = (performance.now() - started) / 1000;
    const dropped = outcomes.filter((outcome) => outcome.status === 'dropped');
    console.log(
      `\npartition drop: ${dropped.length} partitions, ${dropped.reduce((sum, outcome) => sum + outcome.rows, 0)} rows, ${seconds.toFixed(3)} s (audited per partition, rows counted)`,
    );
  } finally {
    await store.close();
  }
}

/**
 * (p) Per-purpose retention with sparse eligibility: `rows` documents over 10 years, 1 in 40
 * General (30 days), the rest Legal (7 years) or Medical (10 years). Swept twice: the first pass
 * deletes what is due, the second finds nothing. Without an index on (purpose, timestamp) every
 * row older than the shortest cutoff is read by bounded statements; with one, each purpose is
 * one index range of what is due. The baseline is the same table without that index.
 */
async function sparsePurposes(): Promise<void> {
  console.log(
    `\n(p) per-purpose, sparse: ${ROWS} rows over 10 years, 1 in 40 General (30d), the rest Legal (7y) / Medical (10y)`,
  );
  for (const byPurpose of [false, true]) {
    const name = `bench_sparse_${byPurpose ? 'by_purpose' : 'by_time'}`;
    const url = server.url(name);
    await withClient(database('postgres'), (client) => client.query(`CREATE DATABASE ${name}`));
    await withClient(url, async (client) => {
      await client.query(
        `CREATE TABLE documents (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, purpose_code text, body text)`,
      );
      await client.query(
        `INSERT INTO documents SELECT g, now() - interval '3650 days' + (g::float8 / $1) * interval '3650 days',
                CASE WHEN g % 40 = 0 THEN 'General' WHEN g % 2 = 0 THEN 'Legal' ELSE 'Medical' END, repeat('x', 60) FROM generate_series(1, $1) AS g`,
        [ROWS],
      );
      await client.query('CREATE INDEX documents_created_at ON documents (created_at, id)');
      if (byPurpose) await client.query('CREATE INDEX documents_purpose ON documents (purpose_code, created_at, id)');
      await client.query('VACUUM ANALYZE documents');
    });
    const retention = { by: 'purpose_code', default: '30d', rules: { General: '30d', Legal: '7y', Medical: '10y' } };
    const store = createPostgresRowsStore({
      name: 'bench-sparse',
      retention,
      store: { kind: 'postgres', url, driver: 'pg' },
      table: 'public.documents',
      timestamp: 'created_at',
      audit: true,
      allowSeqScan: false,
      pauseBetweenBatchesMs: 0,
      statementTimeout: '60s',
      lockTimeout: '5s',
    });
    await store.open();
    try {
      const cutoffs = computeCutoffs(retention, await store.clock.now());
      for (const pass of ['first pass (deletes what is due)', 'second pass (nothing due)']) {
        const started = performance.now();
        const census = await store.census({ cutoffs, holds: [] });
        const censusSeconds = (performance.now() - started) / 1000;
        const measure = await sweepToEnd(storeSweep(store, cutoffs), pass);
        const sorted = [...measure.batches].sort((a, b) => a - b);
        console.log(
          `${byPurpose ? 'index (purpose, created_at, id)' : 'index (created_at, id) only   '}  ${pass.padEnd(34)} census ${census.eligible} due in ${censusSeconds.toFixed(2)} s; ` +
            `sweep deleted ${measure.deleted} in ${measure.seconds.toFixed(2)} s, ${measure.batches.length} statements, p99 ${quantile(sorted, 0.99).toFixed(0)} ms, max ${(sorted.at(-1) ?? 0).toFixed(0)} ms`,
        );
      }
    } finally {
      await store.close();
    }
  }
}

async function main(): Promise<void> {
  server = await startTestPostgres();
  try {
    console.log(`batch ${BATCH}; node ${process.version}`);
    if (ONLY.has('sweeps')) await sweeps();
    if (ONLY.has('partitions')) await partitions();
    if (ONLY.has('sparse')) await sparsePurposes();
    if (ONLY.has('cli')) await throughTheCli();
  } finally {
    await server.stop();
  }
}

async function sweeps(): Promise<void> {
  const seedStarted = performance.now();
  await seed();
  console.log(
    `seeded ${ROWS} rows (${ROWS / 2} expired) in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`,
  );
  for (const longTransaction of [false, true]) {
    const measures: Measure[] = [];
    const wanted = args.scenarios ? new Set([...args.scenarios.split(','), 'c']) : undefined;
    for (const [label, scenario] of SCENARIOS) {
      if (wanted && !wanted.has(label.slice(1, label.indexOf(')')))) continue;
      const runs: Measure[] = [];
      for (let round = 0; round < REPEAT; round += 1) {
        const name = await freshCopy();
        runs.push(await maybeLongTransaction(server.url(name), longTransaction, () => scenario(name)));
        await dropCopy(name);
      }
      runs.sort((a, b) => a.seconds - b.seconds);
      measures.push({ ...runs[Math.floor(runs.length / 2)]!, spread: runs.map((run) => run.seconds) });
    }
    report(longTransaction ? 'with a long transaction open in another session' : 'no other transaction', measures);
    console.log(
      `(e), (ea) setup before the first batch (lease, recovery, census; in its seconds, not in its batch times): ${setupTimes.splice(0).join(' / ')} ms`,
    );
    console.log(`each scenario ran ${REPEAT} time(s) on a fresh copy; the median run is shown`);
  }
}

/**
 * A policy with the default batch sizing (or `--batch-size`) through the CLI, as an operator
 * runs it: `node bin/retention.js run`, the embedded control store with its default durability.
 * The same command run again right after has nothing to delete: its time is the run's fixed cost
 * (start-up, embedded server, lease, census, history, shutdown), taken off the first to compare
 * with one unbatched DELETE of the same table, measured in this process each round.
 */
async function throughTheCli(): Promise<void> {
  const batchSize = args['batch-size'] === undefined ? {} : { batchSize: Number(args['batch-size']) };
  if (!ONLY.has('sweeps')) await seed();
  console.log(
    `\n(cli) ${ROWS / 2} of ${ROWS} rows through the CLI, batchSize ${batchSize.batchSize ?? 'absent (adaptive)'}`,
  );
  console.log(
    'round  deleted  run s  fixed s  net s  net rows/s  one DELETE s  net ×(c)  batches  p50 ms  p99 ms  max ms',
  );
  const ratios: number[] = [];
  for (let round = 1; round <= REPEAT; round += 1) {
    const name = await freshCopy();
    const workspace = await cliWorkspace({
      policies: [
        {
          name: 'bench-cli',
          class: 'rows',
          schedule: '0 * * * *',
          store: { kind: 'postgres', url: server.url(name) },
          table: 'public.documents',
          timestamp: 'created_at',
          retention: '30d',
          limits: { maxDeletesPerRun: 100_000_000, maxDeleteFraction: 1 },
          ...batchSize,
        },
      ],
    });
    try {
      // The first command in a new home creates the embedded cluster (initdb): not a run's cost.
      await runCli(['status'], workspace.env, workspace.dir);
      const command = ['run', '--policy', 'bench-cli', '--json'];
      const sweep = await runCli(command, workspace.env, workspace.dir);
      const empty = await runCli(command, workspace.env, workspace.dir);
      // One policy: its report; several: a list.
      const deleted = ([JSON.parse(sweep.stdout)].flat() as Array<{ deleted: number }>)[0]!.deleted;
      // Half of the rows, give or take the few that crossed the cutoff since the seed.
      if (sweep.exitCode !== 0 || empty.exitCode !== 0 || Math.abs(deleted - ROWS / 2) > ROWS / 100)
        throw new Error(`the CLI runs exited ${sweep.exitCode} / ${empty.exitCode}, deleting ${deleted}`);
      const baseline = await freshCopy();
      const c = await statements(server.url(baseline), '(c)', 'DELETE FROM documents WHERE created_at < $1', false);
      await dropCopy(baseline);
      const net = sweep.seconds - empty.seconds;
      const ratio = deleted / net / (c.deleted / c.seconds);
      ratios.push(ratio);
      const gaps = batchGaps(sweep.events).sort((a, b) => a - b);
      console.log(
        [
          String(round).padStart(5),
          String(deleted).padStart(8),
          sweep.seconds.toFixed(2).padStart(6),
          empty.seconds.toFixed(2).padStart(8),
          net.toFixed(2).padStart(6),
          Math.round(deleted / net)
            .toString()
            .padStart(11),
          c.seconds.toFixed(2).padStart(13),
          ratio.toFixed(2).padStart(9),
          String(gaps.length).padStart(8),
          quantile(gaps, 0.5).toFixed(0).padStart(7),
          quantile(gaps, 0.99).toFixed(0).padStart(7),
          (gaps.at(-1) ?? 0).toFixed(0).padStart(7),
        ].join(' '),
      );
    } finally {
      await workspace.remove();
      await dropCopy(name);
    }
  }
  console.log(
    `median net ×(c): ${median(ratios).toFixed(2)} (target >= 0.5); batch times are the gaps between batch_deleted lines`,
  );
}

await main();
