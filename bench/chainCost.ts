import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { computeCutoffs } from '../lib/policy/plan.ts';
import type { PostgresRowsStore } from '../lib/stores/postgres/rows.ts';
import { startTestPostgres } from '../test/support/postgres.ts';

/**
 * What the audit chain costs the rows sweep (bench/rows.ts (a): one statement deletes, audits and
 * now chains each batch), measured A/B against a checkout without it, batch by batch:
 *
 *   git worktree add /tmp/before <commit before the chain>   (its node_modules: a symlink to ours)
 *   npx tsx bench/chainCost.ts --baseline /tmp/before [--rows 500000] [--batch 5000] [--repeat 5]
 *
 * Both codes open the same seeded table (one fresh copy each per round) on one server and sweep it
 * in alternating batches, so whatever else loads the machine loads both alike; on a shared
 * machine, where two whole benches run minutes apart (or at once) vary by ±15 %, this is what
 * tells a few per cent. Prints the median batch time and the summed sweep time of each.
 */
const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rows: { type: 'string', default: '500000' },
    batch: { type: 'string', default: '5000' },
    repeat: { type: 'string', default: '5' },
  },
});
if (!args.baseline) throw new Error('--baseline <checkout of the commit to compare with> is required');
const ROWS = Number(args.rows);
const BATCH = Number(args.batch);
const REPEAT = Number(args.repeat);

type StoreFactory = (
  config: Parameters<typeof import('../lib/stores/postgres/rows.ts').createPostgresRowsStore>[0],
) => PostgresRowsStore;
const load = async (root: string): Promise<StoreFactory> =>
  (await import(pathToFileURL(path.join(root, 'lib/stores/postgres/rows.ts')).href)).createPostgresRowsStore;
const codes: Array<[string, StoreFactory]> = [
  ['before', await load(path.resolve(args.baseline))],
  ['after', await load(path.resolve(import.meta.dirname, '..'))],
];

const server = await startTestPostgres();
const admin = async (sql: string, database = 'postgres') => {
  const client = new pg.Client({ connectionString: server.url(database) });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
};

// As bench/rows.ts seeds: 2 × rows over 60 days, the older half past a 30-day retention.
await admin('CREATE DATABASE chain_seed');
for (const statement of [
  'CREATE TABLE documents (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, purpose_code text, body text)',
  `INSERT INTO documents SELECT g, now() - interval '60 days' + (g::float8 / ${ROWS}) * interval '60 days',
          (ARRAY['General','Financial','Legal'])[1 + g % 3], repeat('x', 60) FROM generate_series(1, ${ROWS}) AS g`,
  'CREATE INDEX documents_created_at ON documents (created_at, id)',
  'VACUUM ANALYZE documents',
])
  await admin(statement, 'chain_seed');

const batches = new Map<string, number[]>(codes.map(([name]) => [name, []]));
const totals = new Map<string, number[]>(codes.map(([name]) => [name, []]));
for (let round = 1; round <= REPEAT; round++) {
  const sessions = [];
  for (const [name, create] of codes) {
    const database = `chain_${name}_${round}`;
    await admin(`CREATE DATABASE ${database} TEMPLATE chain_seed STRATEGY FILE_COPY`);
    const store = create({
      name: 'bench',
      retention: '30d',
      store: { kind: 'postgres', url: server.url(database), driver: 'pg' },
      table: 'public.documents',
      timestamp: 'created_at',
      audit: true,
      allowSeqScan: false,
      pauseBetweenBatchesMs: 0,
      statementTimeout: '60s',
      lockTimeout: '5s',
    });
    await store.open();
    const cutoffs = computeCutoffs('30d', await store.clock.now());
    const sweep = store.sweep!.begin({ runId: 'bench', actor: 'bench', trigger: 'manual' }, { cutoffs, holds: [] });
    sessions.push({ name, store, sweep, cursor: undefined as string | undefined, done: false, seconds: 0 });
  }
  await admin('CHECKPOINT');
  // Alternate: one batch of each in turn, the first to go swapped every round.
  const order = round % 2 === 0 ? [...sessions].reverse() : sessions;
  while (order.some((session) => !session.done)) {
    for (const session of order) {
      if (session.done) continue;
      const started = performance.now();
      const result = await session.sweep.next({
        limit: BATCH,
        detail: 'summary',
        ...(session.cursor === undefined ? {} : { cursor: session.cursor }),
      });
      const ms = performance.now() - started;
      session.seconds += ms / 1000;
      if (result.deleted > 0) batches.get(session.name)!.push(ms);
      session.cursor = result.cursor;
      session.done = result.done;
    }
  }
  for (const session of sessions) {
    totals.get(session.name)!.push(session.seconds);
    await session.store.close();
  }
  console.log(`round ${round}: ${sessions.map((s) => `${s.name} ${s.seconds.toFixed(2)} s`).join(', ')}`);
}
await server.stop();

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const [before, after] = codes.map(([name]) => ({
  batch: median(batches.get(name)!),
  total: median(totals.get(name)!),
}));
console.log(`rows ${ROWS}, batch ${BATCH}, ${REPEAT} rounds, batches alternating`);
console.log(
  `median batch: before ${before!.batch.toFixed(1)} ms, after ${after!.batch.toFixed(1)} ms (${pct(after!.batch, before!.batch)})`,
);
console.log(
  `median sweep: before ${before!.total.toFixed(2)} s, after ${after!.total.toFixed(2)} s (${pct(after!.total, before!.total)})`,
);

function pct(value: number, base: number): string {
  const change = (value / base - 1) * 100;
  return `${change >= 0 ? '+' : ''}${change.toFixed(1)} %`;
}
