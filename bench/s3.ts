/**
 * Blob deletion at the rate S3 allows (issue 16), against baselines measured in the same run:
 *
 *   npm run bench:s3 -- [--objects 20000] [--expired-fraction 0.9] [--prefixes 1]
 *                       [--only ideal,per-key,engine,cli] [--backends s3,vercel-blob]
 *
 * The server is fauxqs's in-memory S3 (installed on first use, with the Node 24 it needs, into
 * bench/.cache/), in a child process behind a latency proxy (bench/support/latencyProxy.ts):
 * 30 ms per request, 0.25 ms per DeleteObjects key, 3,500 deleted keys/s per prefix. s3rver,
 * used before, re-reads a folder after each deleted key, so every tool looked alike on it.
 *
 * `--objects` expired objects (60 days old) and young ones (1 day old) so that the expired make
 * `--expired-fraction` of the total, interleaved, under `data/p00/` … (`--prefixes`, each its
 * own rate-limited prefix). The policy's retention is 30 days, so "expired" is decided by the
 * real clock on real LastModified values: fauxqs stamps LastModified with the time of the PUT and
 * cannot set it, so the bench server seeds its store directly and sets LastModified (the objects
 * are otherwise what PutObject makes). Each scenario gets a freshly seeded bucket, and must leave
 * exactly the young objects: a scenario that deleted less would otherwise look fast.
 *
 * Scenarios, all in this process except the CLI:
 *   (ideal)   the SDK alone: list + DeleteObjects of 1,000 keys, 5 in flight, no audit;
 *   (per-key) one DeleteObject per expired key, 10 in flight;
 *   (engine)  runPolicy over the store, audit trail in an embedded PostgreSQL, default settings;
 *   (cli)     `node bin/retention.js --config … run --policy … --json`, end to end, and net of
 *             its fixed cost (the same command against an empty bucket, on a warm database).
 * The same for Vercel Blob: the stand-in of test/support/vercelBlob.ts, driven by the real SDK,
 * behind the same proxy with 30 ms per request only (Vercel publishes no per-prefix rate).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PostgresControlStore } from '../lib/control/postgres/store.ts';
import { createSqlClient } from '../lib/sql/client.ts';
import { startTestPostgres, type TestPostgres } from '../test/support/postgres.ts';
import { s3TestClient } from '../test/support/s3.ts';
import { type ProxyOptions, S3_COSTS } from './support/latencyProxy.ts';
import { idealLoop, type ObjectApi, perKeyLoop, s3Api, vercelBlobApi } from './support/loops.ts';
import { type BackendFigures, printFigures } from './support/report.ts';
import { benchPolicy, cliRun, engineRun, type Measured, timed } from './support/scenarios.ts';
import { type BenchServers, type SeedObject, startBenchServers } from './support/servers.ts';

const DAY = 86_400_000;
const SCENARIOS = ['ideal', 'per-key', 'engine', 'cli'] as const;
type Scenario = (typeof SCENARIOS)[number];

function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : (process.argv[index + 1] ?? fallback);
}
const expired = Number(flag('objects', '20000'));
const expiredFraction = Number(flag('expired-fraction', '0.9'));
const prefixCount = Number(flag('prefixes', '1'));
const only = new Set(flag('only', SCENARIOS.join(',')).split(','));
const backends = flag('backends', 's3,vercel-blob').split(',');

interface Scope {
  store: Record<string, unknown>;
  /** What the CLI needs in its environment to reach the store (also set in this process). */
  env: Record<string, string>;
  api: ObjectApi;
  remaining(): Promise<number>;
  dispose(): Promise<void>;
}

interface Backend {
  name: string;
  proxy: string;
  /** Seeds a fresh store with `objects`, reached through the proxy. */
  scope(objects: SeedObject[]): Promise<Scope>;
}

/** Expired and young objects interleaved evenly, spread round-robin over the prefixes. */
function seedObjects(): SeedObject[] {
  const total = Math.round(expired / expiredFraction);
  const young = total - expired;
  const now = Date.now();
  return Array.from({ length: total }, (_, index) => {
    const isYoung = Math.floor(((index + 1) * young) / total) > Math.floor((index * young) / total);
    const shard = String(index % prefixCount).padStart(2, '0');
    const key = `data/p${shard}/${String(Math.floor(index / prefixCount)).padStart(7, '0')}.bin`;
    return { key, at: now - (isYoung ? 1 : 60) * DAY };
  });
}
const shards = Array.from({ length: prefixCount }, (_, index) => `data/p${String(index).padStart(2, '0')}/`);

async function s3Backend(servers: BenchServers): Promise<Backend> {
  // Prefix = the first two key segments (data/pNN): each --prefixes shard is rate-limited alone.
  const options: ProxyOptions = { dialect: 's3', ...S3_COSTS, prefixDepth: 2 };
  const endpoint = await servers.startProxy('s3', options);
  const env = { AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_REGION: 'us-east-1' };
  Object.assign(process.env, env);
  const client = s3TestClient(endpoint);
  return {
    name: 'S3',
    proxy: 's3',
    async scope(objects) {
      const bucket = `bench-${randomBytes(6).toString('hex')}`;
      await servers.seedS3(bucket, objects);
      return {
        store: { kind: 's3', bucket, prefix: 'data/', region: 'us-east-1', endpoint, forcePathStyle: true },
        env,
        api: s3Api(client, bucket),
        remaining: () => servers.countS3(bucket),
        dispose: () => servers.dropS3(bucket),
      };
    },
  };
}

async function vercelBlobBackend(servers: BenchServers): Promise<Backend> {
  const standIn = await servers.startVercelBlob();
  // Latency only: Vercel publishes no per-prefix delete rate to model.
  const options: ProxyOptions = {
    dialect: 'vercel-blob',
    roundTripMs: S3_COSTS.roundTripMs,
    perKeyMs: 0,
    prefixDepth: 2,
  };
  const env = {
    VERCEL_BLOB_API_URL: await servers.startProxy('vercel-blob', options, standIn.apiUrl),
    BLOB_READ_WRITE_TOKEN: standIn.token,
    VERCEL_BLOB_RETRIES: '0',
  };
  Object.assign(process.env, env);
  return {
    name: 'Vercel Blob',
    proxy: 'vercel-blob',
    async scope(objects) {
      await servers.seedVercelBlob(objects);
      return {
        store: { kind: 'vercel-blob', prefix: 'data/' },
        env,
        api: vercelBlobApi,
        remaining: () => servers.countVercelBlob(),
        dispose: async () => undefined,
      };
    },
  };
}

async function measureBackend(
  backend: Backend,
  servers: BenchServers,
  databases: { control: PostgresControlStore; cliDatabaseUrl: string; scratch: string },
): Promise<BackendFigures> {
  const objects = seedObjects();
  const young = objects.length - expired;
  const cutoff = new Date(Date.now() - 30 * DAY);
  const figures: Partial<Record<Scenario, Measured>> = {};
  const cliEnv = (scope: Scope) => ({ ...scope.env, RETENTION_DATABASE_URL: databases.cliDatabaseUrl });
  const policyName = (scenario: string) => `bench-${scenario}-${randomBytes(4).toString('hex')}`;

  for (const scenario of SCENARIOS.filter((name) => only.has(name))) {
    let fixedSeconds: number | undefined;
    if (scenario === 'cli') {
      // Twice: the first run also migrates the database, which a measured run does not pay.
      const empty = await backend.scope([]);
      for (let round = 0; round < 2; round += 1)
        fixedSeconds = (await cliRun(databases.scratch, benchPolicy(policyName('empty'), empty.store), cliEnv(empty)))
          .seconds;
      await empty.dispose();
    }
    const scope = await backend.scope(objects);
    await servers.resetProxy(backend.proxy);
    const policy = benchPolicy(policyName(scenario), scope.store);
    const run: Record<Scenario, () => Promise<{ deleted: number; seconds: number; peakRssMb?: number }>> = {
      ideal: () => timed(() => idealLoop(scope.api, shards, cutoff)),
      'per-key': () => timed(() => perKeyLoop(scope.api, shards, cutoff)),
      engine: () => timed(() => engineRun(databases.control, policy)),
      cli: () => cliRun(databases.scratch, policy, cliEnv(scope)),
    };
    const result = await run[scenario]();
    const proxy = await servers.proxyStats(backend.proxy);
    const remaining = await scope.remaining();
    await scope.dispose();
    if (remaining !== young || result.deleted !== expired)
      throw new Error(
        `${backend.name} ${scenario}: deleted ${result.deleted} of ${expired} expired, ${remaining} objects left (expected the ${young} young)`,
      );
    figures[scenario] = { ...result, proxy, ...(fixedSeconds === undefined ? {} : { fixedSeconds }) };
  }
  return { backend: backend.name, rateLimited: backend.proxy === 's3', figures };
}

async function main(): Promise<void> {
  let servers: BenchServers | undefined;
  let pg: TestPostgres | undefined;
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'retention-bench-s3-'));
  try {
    [servers, pg] = await Promise.all([startBenchServers(), startTestPostgres()]);
    const control = new PostgresControlStore(createSqlClient({ url: await pg.createDatabase('bench') }));
    await control.migrate();
    const databases = { control, cliDatabaseUrl: await pg.createDatabase('bench_cli'), scratch };
    const total = Math.round(expired / expiredFraction);
    console.log(
      `${expired} expired of ${total} objects under ${prefixCount} prefix(es); node ${process.version}, ` +
        `${os.cpus().length} cores, load ${os
          .loadavg()
          .map((load) => load.toFixed(2))
          .join(' ')}`,
    );
    const all: Record<string, (servers: BenchServers) => Promise<Backend>> = {
      s3: s3Backend,
      'vercel-blob': vercelBlobBackend,
    };
    for (const name of backends) {
      const backend = await all[name]!(servers);
      printFigures(await measureBackend(backend, servers, databases), prefixCount);
    }
    await control.close();
  } finally {
    await servers?.stop();
    await pg?.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
