import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseDeleteObjects } from '../../test/support/faultProxy.ts';

/**
 * An HTTP proxy that gives a fast local server the costs that shape a real deletion run:
 * - `roundTripMs` per request (30 ms: a client in the bucket's region);
 * - `perKeyMs` per key of a batch delete (S3 DeleteObjects: 0.25 ms a key, 250 ms for 1,000);
 * - `keysPerSecond` deleted keys per prefix (S3: 3,500/s per partitioned prefix, each key of a
 *   DeleteObjects counting). A prefix is the key's first `prefixDepth` path segments.
 *
 * The request is forwarded at once; its response is held until both the latency and the prefix's
 * rate allow it. The rate is a strict schedule per prefix (a virtual clock advanced by n/rate for
 * n keys, no burst credit: a few seconds of bench would otherwise be flattered by the burst), and
 * it overlaps the per-key latency: max(arrival + roundTrip + n·perKey, rate slot end). Real S3
 * answers an over-rate client with 503 SlowDown; holding the response models the same ceiling
 * without the retry noise.
 *
 * It counts requests by kind and keys deleted, and times the deletion phase: from the first
 * delete request's arrival to the last delete response, so that phase holds every deleted key.
 */
export type RequestKind = 'list' | 'deleteObjects' | 'deleteObject' | 'other';

export interface ProxyOptions {
  /** `s3`: path-style S3 requests. `vercel-blob`: the Vercel Blob API (list GET, POST /delete). */
  dialect: 's3' | 'vercel-blob';
  roundTripMs: number;
  perKeyMs: number;
  /** Per prefix; absent: no limit. (Not Infinity: the options cross an IPC channel as JSON.) */
  keysPerSecond?: number;
  prefixDepth: number;
}

export interface ProxyStats {
  requests: Record<RequestKind, number>;
  keysDeleted: number;
  /** Prefixes that had keys deleted (their count scales the rate ceiling). */
  prefixes: number;
  /** First delete request received to last delete response sent; 0 if none. */
  deletePhaseSeconds: number;
}

export interface LatencyProxy {
  endpoint: string;
  stats(): ProxyStats;
  reset(): void;
  stop(): Promise<void>;
}

export const S3_COSTS = {
  roundTripMs: 30,
  perKeyMs: 0.25,
  keysPerSecond: 3500,
  prefixDepth: 1,
} satisfies Omit<ProxyOptions, 'dialect'>;

interface Classified {
  kind: RequestKind;
  /** Keys a delete request deletes (object keys, or Vercel Blob pathnames). */
  keys: string[];
}

function classifyS3(method: string, url: URL, body: Buffer): Classified {
  const [, , ...keyPath] = url.pathname.split('/');
  if (method === 'GET' && keyPath.join('') === '' && !url.searchParams.has('location'))
    return { kind: 'list', keys: [] };
  if (method === 'POST' && url.searchParams.has('delete'))
    return { kind: 'deleteObjects', keys: parseDeleteObjects(body.toString('utf8')).map((object) => object.key) };
  if (method === 'DELETE' && keyPath.length > 0 && !url.searchParams.has('uploadId'))
    return { kind: 'deleteObject', keys: [keyPath.map(decodeURIComponent).join('/')] };
  return { kind: 'other', keys: [] };
}

function classifyVercelBlob(method: string, url: URL, body: Buffer): Classified {
  if (method === 'GET' && !url.searchParams.has('url')) return { kind: 'list', keys: [] };
  if (method === 'POST' && url.pathname.endsWith('/delete')) {
    const { urls } = JSON.parse(body.toString('utf8')) as { urls: string[] };
    const pathnames = urls.map((target) => new URL(target).pathname.slice(1).split('/').map(decodeURIComponent));
    return { kind: 'deleteObjects', keys: pathnames.map((segments) => segments.join('/')) };
  }
  return { kind: 'other', keys: [] };
}

export async function startLatencyProxy(target: string, options: ProxyOptions): Promise<LatencyProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const classify = options.dialect === 's3' ? classifyS3 : classifyVercelBlob;
  const requests: Record<RequestKind, number> = { list: 0, deleteObjects: 0, deleteObject: 0, other: 0 };
  /** Per prefix: when its already admitted keys are done (ms, performance.now()). */
  let prefixFreeAt = new Map<string, number>();
  let keysDeleted = 0;
  let firstDeleteAt: number | undefined;
  let lastDeleteAt: number | undefined;

  const prefixOf = (key: string) => key.split('/').slice(0, options.prefixDepth).join('/');
  /** When the rate lets the last of `keys` through; admitting them advances each prefix's clock. */
  function rateSlotEnd(keys: string[], now: number): number {
    const perPrefix = new Map<string, number>();
    for (const key of keys) perPrefix.set(prefixOf(key), (perPrefix.get(prefixOf(key)) ?? 0) + 1);
    let end = now;
    for (const [prefix, count] of perPrefix) {
      const seconds = options.keysPerSecond === undefined ? 0 : count / options.keysPerSecond;
      const freeAt = Math.max(now, prefixFreeAt.get(prefix) ?? now) + seconds * 1000;
      prefixFreeAt.set(prefix, freeAt);
      end = Math.max(end, freeAt);
    }
    return end;
  }

  async function handle(request: http.IncomingMessage, body: Buffer, response: http.ServerResponse): Promise<void> {
    const arrived = performance.now();
    const method = request.method ?? 'GET';
    const { kind, keys } = classify(method, new URL(request.url ?? '/', 'http://proxy'), body);
    requests[kind] += 1;
    const isDelete = kind === 'deleteObjects' || kind === 'deleteObject';
    if (isDelete) firstDeleteAt ??= arrived;
    const latencyEnd = arrived + options.roundTripMs + (kind === 'deleteObjects' ? keys.length * options.perKeyMs : 0);
    const releaseAt = Math.max(latencyEnd, isDelete ? rateSlotEnd(keys, arrived) : arrived);

    const answer = await forward(upstream, agent, request, body);
    const wait = releaseAt - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (isDelete && answer.status < 300) {
      keysDeleted += keys.length;
      lastDeleteAt = performance.now();
    }
    response.writeHead(answer.status, answer.headers).end(answer.body);
  }

  const server = http.createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      handle(request, Buffer.concat(parts), response).catch((error: unknown) => {
        response.writeHead(502).end(String(error));
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}${upstream.pathname === '/' ? '' : upstream.pathname}`,
    stats: () => ({
      requests: { ...requests },
      keysDeleted,
      prefixes: prefixFreeAt.size,
      deletePhaseSeconds:
        firstDeleteAt === undefined || lastDeleteAt === undefined ? 0 : (lastDeleteAt - firstDeleteAt) / 1000,
    }),
    reset() {
      for (const kind of Object.keys(requests) as RequestKind[]) requests[kind] = 0;
      prefixFreeAt = new Map();
      keysDeleted = 0;
      firstDeleteAt = undefined;
      lastDeleteAt = undefined;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      agent.destroy();
    },
  };
}

function forward(
  upstream: URL,
  agent: http.Agent,
  request: http.IncomingMessage,
  body: Buffer,
): Promise<{ status: number; headers: http.OutgoingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers: { ...request.headers, host: upstream.host, 'content-length': String(body.length) },
        agent,
      },
      (incoming) => {
        const parts: Buffer[] = [];
        incoming.on('data', (part: Buffer) => parts.push(part));
        incoming.on('end', () => {
          const content = Buffer.concat(parts);
          const headers: http.OutgoingHttpHeaders = { ...incoming.headers, 'content-length': String(content.length) };
          delete headers['transfer-encoding'];
          delete headers.connection;
          resolve({ status: incoming.statusCode ?? 502, headers, body: content });
        });
        incoming.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}
