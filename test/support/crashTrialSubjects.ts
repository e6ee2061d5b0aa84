import { lstatSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';

/**
 * What a crash trial deletes from: an `fs` blobs policy, or a `rows` policy whose rows link fs
 * files (`blob`). Each subject is seeded from a trial's PRNG and remembers the ground truth (every
 * item's timestamp as stored, in ns) that the checks compare the tool's record against.
 */
export const RETENTION_MS = 30 * 86_400_000;
const HOUR = 3_600_000;

/** Deterministic pseudo-random numbers (mulberry32): one seed reproduces a trial's data and kill point. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export const between = (random: () => number, low: number, high: number): number =>
  low + Math.floor(random() * (high - low + 1));

export type ItemClass = 'expired' | 'young' | 'boundary';

export interface ItemTruth {
  /** Item time as stored (file mtime; row created_at), ns since the epoch. */
  timeNs: bigint;
  class: ItemClass;
  /** Rows: the linked file's key in the blob root, if the row has one. */
  file?: string;
}

export interface Subject {
  kind: 'fs' | 'rows';
  policy: Record<string, unknown> & { name: string };
  items: Map<string, ItemTruth>;
  /** Keys of the items still present. */
  present(): Promise<Set<string>>;
  /** Rows: linked files still present (keys relative to the blob root). */
  presentFiles(): Promise<Set<string>>;
  /** Rows: the store's own trail of linked files (`retention.row_audit_entries`), per row key. */
  linkedFileAudit(): Promise<Map<string, Array<{ file: string | null; status: string | null; runId: string }>>>;
}

/**
 * Item times around `reference` (the cutoff the runs will use, or close to it): expired ones well
 * before, young ones well after (after every cutoff of the trial, in `before` mode too), and a
 * boundary band at ms precision. With an exact cutoff (`--before`), the band has items exactly
 * at it and 1 ms either side: the strict `<` of invariant 1.
 */
function itemTimes(
  random: () => number,
  count: number,
  reference: number,
  exactCutoff: boolean,
): Array<{ ms: number; class: ItemClass }> {
  const times: Array<{ ms: number; class: ItemClass }> = [];
  if (exactCutoff) for (const offset of [-1, 0, 0, 1]) times.push({ ms: reference + offset, class: 'boundary' });
  while (times.length < count) {
    const roll = random();
    if (roll < 0.55) times.push({ ms: reference - between(random, HOUR, 60 * 24 * HOUR), class: 'expired' });
    else if (roll < 0.85) times.push({ ms: reference + between(random, 10 * 60_000, 29 * 24 * HOUR), class: 'young' });
    else times.push({ ms: reference + between(random, -1_500, exactCutoff ? 1_500 : 4_000), class: 'boundary' });
  }
  return times;
}

/** A nested key: 1 to 3 directory levels, so runs walk and leave many directories. */
function nestedKey(random: () => number, index: number, extension: string): string {
  const depth = between(random, 0, 2);
  const dirs = Array.from({ length: depth }, (_, level) => `${'abc'[level]}${between(random, 0, 4)}`);
  return [...dirs, `item-${String(index).padStart(5, '0')}.${extension}`].join('/');
}

/**
 * Synchronous: a few hundred tiny files are written faster without a thread-pool round trip per
 * call, and nothing else of the trial runs meanwhile.
 */
function writeAged(root: string, key: string, mtimeMs: number): bigint {
  const target = path.join(root, key);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, `retained ${key}\n`);
  const when = new Date(mtimeMs);
  utimesSync(target, when, when);
  // The stored mtime, not the one asked for: utimes goes through floating-point seconds.
  return lstatSync(target, { bigint: true }).mtimeNs;
}

async function filesUnder(root: string): Promise<Set<string>> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return new Set(
    entries
      .filter((entry) => entry.isFile())
      .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/')),
  );
}

const noFiles = async (): Promise<Set<string>> => new Set();
const noLinkedAudit: Subject['linkedFileAudit'] = async () => new Map();

export interface SeedInput {
  random: () => number;
  name: string;
  root: string;
  count: number;
  batchSize: number;
  /** The cutoff the runs are expected to use: `now - retention`, or the exact `--before` instant. */
  reference: number;
  exactCutoff: boolean;
}

export async function seedFsSubject(input: SeedInput): Promise<Subject> {
  const { random, root } = input;
  await mkdir(root, { recursive: true });
  const planned = itemTimes(random, input.count, input.reference, input.exactCutoff).map((time, index) => ({
    ...time,
    key: nestedKey(random, index, 'bin'),
  }));
  const items = new Map<string, ItemTruth>();
  for (const item of planned) items.set(item.key, { timeNs: writeAged(root, item.key, item.ms), class: item.class });
  const policy = {
    name: input.name,
    class: 'blobs',
    schedule: '0 * * * *',
    store: { kind: 'fs', root, removeEmptyDirs: random() < 0.5 },
    retention: '30d',
    batchSize: input.batchSize,
    limits: { maxDeleteFraction: 1, maxDeletesPerRun: 1_000_000 },
  };
  return {
    kind: 'fs',
    policy,
    items,
    present: () => filesUnder(root),
    presentFiles: noFiles,
    linkedFileAudit: noLinkedAudit,
  };
}

/**
 * A `docs_<n>` table in `databaseUrl` whose rows link files under `root`. Each file is 1 s older
 * than its row, so it is due whenever its row is: what decides is the row (the file goes under
 * its row's cutoff), and a kept file never keeps an expired row back.
 */
export async function seedRowsSubject(input: SeedInput & { databaseUrl: string }): Promise<Subject> {
  const { random, root } = input;
  const table = `docs_${input.name.replace(/-/g, '_')}`;
  await mkdir(root, { recursive: true });
  const planned = itemTimes(random, input.count, input.reference, input.exactCutoff).map((time, index) => ({
    ...time,
    id: index + 1,
    file: random() < 0.9 ? nestedKey(random, index, 'pdf') : undefined,
  }));
  for (const row of planned) if (row.file) writeAged(root, row.file, row.ms - 1_000);
  const client = new pg.Client({ connectionString: input.databaseUrl });
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE public.${table} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, file text)`,
    );
    await client.query(`CREATE INDEX ON public.${table} (created_at, id)`);
    await client.query(
      `INSERT INTO public.${table} SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[])`,
      [planned.map((row) => row.id), planned.map((row) => new Date(row.ms)), planned.map((row) => row.file ?? null)],
    );
  } finally {
    await client.end();
  }
  const items = new Map(
    planned.map((row) => [
      String(row.id),
      { timeNs: BigInt(row.ms) * 1_000_000n, class: row.class, ...(row.file ? { file: row.file } : {}) },
    ]),
  );
  const policy = {
    name: input.name,
    class: 'rows',
    schedule: '0 * * * *',
    store: { kind: 'postgres', url: input.databaseUrl },
    table: `public.${table}`,
    timestamp: 'created_at',
    retention: '30d',
    batchSize: input.batchSize,
    limits: { maxDeleteFraction: 1, maxDeletesPerRun: 1_000_000 },
    blob: { column: 'file', store: { kind: 'fs', root, removeEmptyDirs: false } },
  };
  const query = async <R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> => {
    const reader = new pg.Client({ connectionString: input.databaseUrl });
    await reader.connect();
    try {
      return (await reader.query<R>(text, params)).rows;
    } finally {
      await reader.end();
    }
  };
  return {
    kind: 'rows',
    policy,
    items,
    present: async () =>
      new Set((await query<{ id: string }>(`SELECT id::text AS id FROM public.${table}`)).map((row) => row.id)),
    presentFiles: () => filesUnder(root),
    async linkedFileAudit() {
      const entries = await query<{
        key: string;
        linked_file: string | null;
        linked_file_status: string | null;
        run_id: string;
      }>(
        `SELECT key, linked_file, linked_file_status, run_id
           FROM retention.row_audit_entries WHERE policy = $1 AND action = 'delete'`,
        [input.name],
      );
      const byKey = new Map<string, Array<{ file: string | null; status: string | null; runId: string }>>();
      for (const entry of entries)
        byKey.set(entry.key, [
          ...(byKey.get(entry.key) ?? []),
          { file: entry.linked_file, status: entry.linked_file_status, runId: entry.run_id },
        ]);
      return byKey;
    },
  };
}
