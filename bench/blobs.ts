/**
 * Blob sweep throughput, measured against baselines in the same run (issue 4):
 *   (a) this sweep: runPolicy over the S3 store, audit on (PostgreSQL control store)
 *   (i) `aws s3 rm --recursive` style: list, then one DeleteObject per expired key, 10 in flight
 *   (ii) a bare list + DeleteObjects loop, 5 requests in flight, no audit
 * plus request counts per deleted object, peak RSS at two sizes, and for Vercel Blob the list,
 * del and head calls per 1000 deleted blobs.
 *
 *   npx tsx bench/blobs.ts [--objects 20000]
 */
import { DeleteObjectCommand, DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { parseConfig } from '../lib/config/load.ts';
import { PostgresControlStore } from '../lib/control/postgres/store.ts';
import { mapConcurrent } from '../lib/core/async.ts';
import { systemClock } from '../lib/core/types.ts';
import { runPolicy } from '../lib/engine/run.ts';
import { silentLogger } from '../lib/observe/log.ts';
import { createSqlClient } from '../lib/sql/client.ts';
import { createStore } from '../lib/stores/registry.ts';
import { type FaultProxy, startFaultProxy } from '../test/support/faultProxy.ts';
import { startTestPostgres, type TestPostgres } from '../test/support/postgres.ts';
import { startTestS3, type TestS3 } from '../test/support/s3.ts';
import { startVercelBlobStandIn } from '../test/support/vercelBlob.ts';

const DAY = 86_400_000;
const objects = Number(process.argv[process.argv.indexOf('--objects') + 1] || 20_000);

interface Measured {
  seconds: number;
  deleted: number;
  requests: number;
  deleteRequests: number;
  peakRssMb: number;
}

/** Samples RSS while `work` runs: the peak tells whether memory grows with the object count. */
async function measure(proxy: FaultProxy, work: () => Promise<number>): Promise<Measured> {
  const before = proxy.requests.length;
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const started = performance.now();
  const deleted = await work();
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const requests = proxy.requests.slice(before);
  return {
    seconds,
    deleted,
    requests: requests.length,
    deleteRequests: requests.filter((request) => request.deleteKeys !== undefined).length,
    peakRssMb: Math.round(Math.max(peak, process.memoryUsage().rss) / 1e6),
  };
}

/** Half the objects expired (60 days old), half young (1 day). */
async function seededBucket(s3: TestS3, count: number): Promise<string> {
  const bucket = await s3.createBucket();
  const now = Date.now();
  await s3.seedFiles(
    bucket,
    Array.from({ length: count }, (_, i) => ({
      key: `pdfs/${String(i).padStart(6, '0')}.pdf`,
      timestamp: new Date(now - (i % 2 === 0 ? 60 : 1) * DAY),
      body: 'x',
    })),
  );
  return bucket;
}

async function listExpired(
  client: S3Client,
  bucket: string,
  cutoff: number,
  onPage: (keys: string[]) => Promise<void>,
): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: 'pdfs/', ContinuationToken: token }),
    );
    await onPage(
      (page.Contents ?? []).filter((object) => object.LastModified!.getTime() < cutoff).map((object) => object.Key!),
    );
    token = page.NextContinuationToken;
  } while (token);
}

async function oneDeletePerKey(client: S3Client, bucket: string): Promise<number> {
  const keys: string[] = [];
  await listExpired(client, bucket, Date.now() - 30 * DAY, async (page) => void keys.push(...page));
  await mapConcurrent(keys, 10, (key) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })));
  return keys.length;
}

async function bareBatchLoop(client: S3Client, bucket: string): Promise<number> {
  let deleted = 0;
  const inFlight: Array<Promise<unknown>> = [];
  await listExpired(client, bucket, Date.now() - 30 * DAY, async (keys) => {
    if (keys.length === 0) return;
    deleted += keys.length;
    inFlight.push(
      client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
      ),
    );
    if (inFlight.length >= 5) await Promise.all(inFlight.splice(0));
  });
  await Promise.all(inFlight);
  return deleted;
}

async function sweep(control: PostgresControlStore, store: Record<string, unknown>, name: string): Promise<number> {
  const [policy] = parseConfig({
    policies: [
      {
        name,
        class: 'blobs',
        store,
        retention: '30d',
        schedule: '0 3 * * *',
        batchSize: 1000,
        limits: { maxDeletesPerRun: 10_000_000, maxDeleteFraction: 1 },
      },
    ],
  }).policies;
  const report = await runPolicy(
    policy!,
    { trigger: 'manual', dryRun: false, force: false, list: false },
    { control, store: await createStore(policy!), clock: systemClock, log: silentLogger, actor: 'bench' },
  );
  if (report.status !== 'completed') throw new Error(`sweep ended ${report.status}: ${report.error?.message}`);
  return report.deleted;
}

function row(label: string, m: Measured, baseline?: Measured): string {
  const rate = m.deleted / m.seconds;
  const ratio = baseline ? ` ${(rate / (baseline.deleted / baseline.seconds)).toFixed(2)}x` : '';
  return `${label.padEnd(44)} ${String(m.deleted).padStart(7)} deleted ${rate.toFixed(0).padStart(6)} obj/s${ratio.padStart(7)}  ${(m.requests / m.deleted).toFixed(3)} req/obj  ${((m.deleteRequests / m.deleted) * 1000).toFixed(2)} DeleteObjects/1000  peak RSS ${m.peakRssMb} MB`;
}

async function main(): Promise<void> {
  let s3: TestS3 | undefined;
  let proxy: FaultProxy | undefined;
  let pg: TestPostgres | undefined;
  try {
    [s3, pg] = await Promise.all([startTestS3(), startTestPostgres()]);
    proxy = await startFaultProxy(s3.endpoint);
    const control = new PostgresControlStore(createSqlClient({ url: await pg.createDatabase('bench') }));
    await control.migrate();
    const client = s3.client(proxy.endpoint);
    const s3Store = (bucket: string) => ({
      kind: 's3',
      bucket,
      prefix: 'pdfs/',
      region: 'us-east-1',
      endpoint: proxy!.endpoint,
      forcePathStyle: true,
      deleteConcurrency: 5,
    });
    process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
    process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';

    console.log(`S3 (s3rver through a counting proxy): ${objects} objects, half expired; node ${process.version}`);
    // Buckets are seeded before any timing starts.
    const [perKeyBucket, bareBucket, oursBucket, smallBucket] = [
      await seededBucket(s3, objects),
      await seededBucket(s3, objects),
      await seededBucket(s3, objects),
      await seededBucket(s3, objects / 4),
    ];
    const perKey = await measure(proxy, () => oneDeletePerKey(client, perKeyBucket));
    const bare = await measure(proxy, () => bareBatchLoop(client, bareBucket));
    const small = await measure(proxy, () => sweep(control, s3Store(smallBucket), 'bench-s3-small'));
    const ours = await measure(proxy, () => sweep(control, s3Store(oursBucket), 'bench-s3'));
    console.log(row('(i) DeleteObject per key, 10 in flight', perKey));
    console.log(row('(ii) bare list + DeleteObjects, 5 in flight', bare));
    console.log(row('(a) this sweep, audit on', ours));
    console.log(
      `(a) vs (i): ${(ours.deleted / ours.seconds / (perKey.deleted / perKey.seconds)).toFixed(2)}x (target >= 4)   (a) vs (ii): ${(ours.deleted / ours.seconds / (bare.deleted / bare.seconds)).toFixed(2)}x (target >= 0.8)`,
    );
    console.log(
      `DeleteObjects requests per 1000 deleted keys: ${((ours.deleteRequests / ours.deleted) * 1000).toFixed(2)} (target <= 1.01)`,
    );
    console.log(
      `peak RSS, this sweep: ${small.peakRssMb} MB at ${objects / 4} objects, ${ours.peakRssMb} MB at ${objects} (should not grow with the count)`,
    );

    const standIn = await startVercelBlobStandIn();
    try {
      process.env.VERCEL_BLOB_API_URL = standIn.apiUrl;
      process.env.BLOB_READ_WRITE_TOKEN = standIn.token;
      process.env.VERCEL_BLOB_RETRIES = '0';
      const now = Date.now();
      standIn.seed(
        Array.from({ length: objects }, (_, i) => ({
          pathname: `pdfs/${String(i).padStart(6, '0')}.pdf`,
          uploadedAt: new Date(now - (i % 2 === 0 ? 60 : 1) * DAY),
          size: 1,
        })),
      );
      standIn.resetCounters();
      const started = performance.now();
      const deleted = await sweep(control, { kind: 'vercel-blob', prefix: 'pdfs/' }, 'bench-vercel');
      const seconds = (performance.now() - started) / 1000;
      const per1000 = (count: number) => ((count / deleted) * 1000).toFixed(2);
      console.log(
        `\nVercel Blob (stand-in, real SDK): ${objects} blobs, half expired: ${deleted} deleted in ${seconds.toFixed(2)} s`,
      );
      console.log(
        `per 1000 deleted: list pages ${per1000(standIn.calls.list)} (target <= 1.0), del calls ${per1000(standIn.calls.delete)} (target <= 1.0), head calls ${per1000(standIn.calls.head)} (target 0)`,
      );
    } finally {
      await standIn.stop();
    }
    await control.close();
  } finally {
    await proxy?.stop();
    await s3?.stop();
    await pg?.stop();
  }
}

await main();
