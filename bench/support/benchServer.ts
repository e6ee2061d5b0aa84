/**
 * The bench's server process, run on Node 24 (fauxqs needs ≥ 22.5) by bench/support/servers.ts:
 * fauxqs's in-memory S3 (its Fastify app on 127.0.0.1, SQS/SNS unused), the Vercel Blob
 * stand-in, and latency proxies in front of either. Keeping them out of the bench process keeps
 * their CPU (parsing, listing, timers) off the event loop of the client being measured, and the
 * same for every scenario. Driven over the IPC channel: `{ id, op, args }` in, `{ id, result |
 * error }` out.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startVercelBlobStandIn, type VercelBlobStandIn } from '../../test/support/vercelBlob.ts';
import { type LatencyProxy, type ProxyOptions, startLatencyProxy } from './latencyProxy.ts';

export interface SeedObject {
  key: string;
  /** LastModified (S3) or uploadedAt (Vercel Blob), ms since the epoch. */
  at: number;
}

interface FauxqsObject {
  lastModified: Date;
}
interface FauxqsS3Store {
  createBucket(name: string): void;
  putObject(bucket: string, key: string, body: Buffer): FauxqsObject;
  buckets: Map<string, Map<string, unknown>>;
}

const fauxqs = process.env.BENCH_FAUXQS_DIR!;
const load = (file: string) => import(pathToFileURL(path.join(fauxqs, file)).href);
const { buildApp } = await load('dist/app.js');
const { S3Store } = await load('dist/s3/s3Store.js');
const s3Store = new S3Store() as FauxqsS3Store;
const app = buildApp({ logger: false, stores: { s3Store } });
const s3Endpoint = (await app.listen({ port: 0, host: '127.0.0.1' })) as string;

const proxies = new Map<string, LatencyProxy>();
let vercelBlob: VercelBlobStandIn | undefined;
let vercelSeeded: string[] = [];

const operations: Record<string, (args: any) => unknown> = {
  /**
   * Objects go straight into fauxqs's store: fauxqs stamps LastModified with the time of the PUT
   * and has no way to set it, and expired objects must be old. Same objects as PutObject would
   * make (1-byte body, its MD5 ETag), with LastModified set afterwards.
   */
  seedS3({ bucket, objects }: { bucket: string; objects: SeedObject[] }) {
    s3Store.createBucket(bucket);
    const body = Buffer.from('x');
    for (const { key, at } of objects) s3Store.putObject(bucket, key, body).lastModified = new Date(at);
  },
  countS3: ({ bucket }: { bucket: string }) => s3Store.buckets.get(bucket)?.size ?? 0,
  dropS3: ({ bucket }: { bucket: string }) => s3Store.buckets.delete(bucket),
  async startVercelBlob() {
    vercelBlob ??= await startVercelBlobStandIn();
    return { apiUrl: vercelBlob.apiUrl, token: vercelBlob.token };
  },
  seedVercelBlob({ objects }: { objects: SeedObject[] }) {
    vercelBlob!.clear();
    vercelBlob!.seed(objects.map(({ key, at }) => ({ pathname: key, uploadedAt: new Date(at), size: 1 })));
    vercelSeeded = objects.map((object) => object.key);
  },
  countVercelBlob: () => vercelSeeded.filter((pathname) => vercelBlob!.get(pathname)).length,
  async startProxy({ name, target, options }: { name: string; target?: string; options: ProxyOptions }) {
    const proxy = await startLatencyProxy(target ?? s3Endpoint, options);
    proxies.set(name, proxy);
    return proxy.endpoint;
  },
  proxyStats: ({ name }: { name: string }) => proxies.get(name)!.stats(),
  resetProxy: ({ name }: { name: string }) => proxies.get(name)!.reset(),
};

process.on('message', (message: { id: number; op: string; args: unknown }) => {
  Promise.resolve()
    .then(() => operations[message.op]!(message.args))
    .then(
      (result) => process.send!({ id: message.id, result }),
      (error: Error) => process.send!({ id: message.id, error: error.stack ?? String(error) }),
    );
});
// The parent closes the channel when it stops us or dies: never outlive the bench.
process.on('disconnect', () => {
  void Promise.all([...proxies.values()].map((proxy) => proxy.stop()))
    .then(() => vercelBlob?.stop())
    .then(() => app.close())
    .finally(() => process.exit(0));
});
process.send!({ ready: { s3Endpoint: s3Endpoint.replace('localhost', '127.0.0.1') } });
