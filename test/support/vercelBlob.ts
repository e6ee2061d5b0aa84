import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { compareUtf8 } from '../../lib/stores/common.ts';

/**
 * A local stand-in for the Vercel Blob API, driven by the real `@vercel/blob` SDK (point
 * `VERCEL_BLOB_API_URL` at `apiUrl`). Wire shapes as in STACK.md: list `GET ?limit&prefix&cursor`,
 * head `GET ?url=`, delete `POST /delete {urls}`, copy `PUT ?pathname&fromUrl`, put `PUT /?pathname`.
 * Lists in pathname (UTF-8) order; a copy gets a fresh uploadedAt, as on Vercel.
 * Fault injection: 429 with Retry-After, or 503, for the next N calls. Counts calls per operation.
 */
export type BlobOperation = 'list' | 'head' | 'delete' | 'copy' | 'put';

export interface StoredBlob {
  pathname: string;
  body: Buffer;
  uploadedAt: Date;
}

export interface VercelBlobStandIn {
  /** Value for VERCEL_BLOB_API_URL. */
  apiUrl: string;
  /** A read-write token this stand-in accepts. */
  token: string;
  calls: Record<BlobOperation, number>;
  /** Status of every response, in order (429s and 503s included). */
  statuses: number[];
  seed(blobs: Array<{ pathname: string; uploadedAt: Date; size?: number; body?: string }>): void;
  get(pathname: string): StoredBlob | undefined;
  /** The next `count` calls get 429 rate_limited with `Retry-After: retryAfterSeconds`. */
  rateLimit(count: number, retryAfterSeconds: number): void;
  /** The next `count` calls (of `operation` only, when given) get 503 service_unavailable. */
  unavailable(count: number, operation?: BlobOperation): void;
  resetCounters(): void;
  clear(): void;
  stop(): Promise<void>;
}

const MAX_LIST_LIMIT = 1000;

export async function startVercelBlobStandIn(): Promise<VercelBlobStandIn> {
  const storeId = randomBytes(6).toString('hex');
  const token = `vercel_blob_rw_${storeId}_${randomBytes(12).toString('hex')}`;
  const blobs = new Map<string, StoredBlob>();
  const calls: Record<BlobOperation, number> = { list: 0, head: 0, delete: 0, copy: 0, put: 0 };
  const statuses: number[] = [];
  let faults: Array<{ status: number; retryAfter?: number; operation?: BlobOperation }> = [];

  const urlOf = (pathname: string): string =>
    `https://${storeId}.public.blob.vercel-storage.com/${pathname.split('/').map(encodeURIComponent).join('/')}`;
  const pathnameOf = (urlOrPathname: string): string => {
    if (!/^https?:\/\//.test(urlOrPathname)) return urlOrPathname;
    return new URL(urlOrPathname).pathname.slice(1).split('/').map(decodeURIComponent).join('/');
  };
  const describe = (blob: StoredBlob) => ({
    url: urlOf(blob.pathname),
    downloadUrl: `${urlOf(blob.pathname)}?download=1`,
    pathname: blob.pathname,
    size: blob.body.length,
    uploadedAt: blob.uploadedAt.toISOString(),
    etag: `"${createHash('md5').update(blob.body).update(blob.uploadedAt.toISOString()).digest('hex')}"`,
    contentType: 'application/octet-stream',
    contentDisposition: 'inline',
    cacheControl: 'public, max-age=2592000',
  });
  const error = (status: number, code: string, message?: string) => ({
    status,
    body: { error: { code, ...(message ? { message } : {}) } },
  });

  function route(
    method: string,
    url: URL,
    headers: http.IncomingHttpHeaders,
    body: Buffer,
  ): { operation?: BlobOperation; status: number; body: unknown } {
    const params = url.searchParams;
    if (method === 'GET' && params.has('url')) {
      const blob = blobs.get(pathnameOf(params.get('url')!));
      return { operation: 'head', ...(blob ? { status: 200, body: describe(blob) } : error(404, 'not_found')) };
    }
    if (method === 'GET') {
      const prefix = params.get('prefix') ?? '';
      const limit = Math.min(MAX_LIST_LIMIT, Number(params.get('limit') ?? MAX_LIST_LIMIT));
      const after = params.get('cursor') ? Buffer.from(params.get('cursor')!, 'base64url').toString('utf8') : undefined;
      const matching = [...blobs.values()]
        .filter(
          (blob) => blob.pathname.startsWith(prefix) && (after === undefined || compareUtf8(blob.pathname, after) > 0),
        )
        .sort((a, b) => compareUtf8(a.pathname, b.pathname));
      const page = matching.slice(0, limit);
      const hasMore = matching.length > limit;
      const cursor = hasMore ? Buffer.from(page.at(-1)!.pathname, 'utf8').toString('base64url') : undefined;
      return {
        operation: 'list',
        status: 200,
        body: { blobs: page.map(describe), hasMore, ...(cursor ? { cursor } : {}) },
      };
    }
    if (method === 'POST' && url.pathname.endsWith('/delete')) {
      const { urls } = JSON.parse(body.toString('utf8')) as { urls: string[] };
      if (urls.length > 1000)
        return { operation: 'delete', ...error(400, 'bad_request', 'at most 1000 urls per request') };
      // Like Vercel: deleting a blob that does not exist is not an error.
      for (const target of urls) blobs.delete(pathnameOf(target));
      return { operation: 'delete', status: 200, body: {} };
    }
    if (method === 'PUT' && params.has('fromUrl')) {
      const source = blobs.get(pathnameOf(params.get('fromUrl')!));
      if (!source) return { operation: 'copy', ...error(404, 'not_found') };
      return { operation: 'copy', ...write(params.get('pathname')!, source.body, headers) };
    }
    if (method === 'PUT') return { operation: 'put', ...write(params.get('pathname')!, body, headers) };
    return error(404, 'not_found', `no route for ${method} ${url.pathname}`);
  }

  function operationOf(method: string, url: URL): BlobOperation | undefined {
    if (method === 'GET') return url.searchParams.has('url') ? 'head' : 'list';
    if (method === 'POST' && url.pathname.endsWith('/delete')) return 'delete';
    if (method === 'PUT') return url.searchParams.has('fromUrl') ? 'copy' : 'put';
    return undefined;
  }

  function write(pathname: string, body: Buffer, headers: http.IncomingHttpHeaders): { status: number; body: unknown } {
    if (blobs.has(pathname) && headers['x-allow-overwrite'] !== '1')
      return error(
        400,
        'bad_request',
        'This blob already exists, use `allowOverwrite: true` if you want to overwrite it.',
      );
    const blob = { pathname, body, uploadedAt: new Date() };
    blobs.set(pathname, blob);
    return { status: 200, body: describe(blob) };
  }

  const server = http.createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
        statuses.push(status);
        response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(payload));
      };
      const url = new URL(request.url ?? '/', 'http://stand-in');
      const operation = operationOf(request.method ?? 'GET', url);
      const faultIndex = faults.findIndex(
        (candidate) => candidate.operation === undefined || candidate.operation === operation,
      );
      const fault = faultIndex === -1 ? undefined : faults.splice(faultIndex, 1)[0];
      if (fault?.status === 429)
        return send(429, { error: { code: 'rate_limited' } }, { 'retry-after': String(fault.retryAfter ?? 1) });
      if (fault) return send(fault.status, { error: { code: 'service_unavailable' } });
      if (request.headers.authorization !== `Bearer ${token}`) return send(403, { error: { code: 'forbidden' } });
      const result = route(request.method ?? 'GET', url, request.headers, Buffer.concat(parts));
      if (result.operation) calls[result.operation] += 1;
      send(result.status, result.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    apiUrl: `http://127.0.0.1:${port}/api/blob`,
    token,
    calls,
    statuses,
    seed(seeds) {
      for (const seed of seeds)
        blobs.set(seed.pathname, {
          pathname: seed.pathname,
          body: Buffer.from(seed.body ?? 'x'.repeat(seed.size ?? 1)),
          uploadedAt: seed.uploadedAt,
        });
    },
    get: (pathname) => blobs.get(pathname),
    rateLimit(count, retryAfterSeconds) {
      faults.push(...Array.from({ length: count }, () => ({ status: 429, retryAfter: retryAfterSeconds })));
    },
    unavailable(count, operation) {
      faults.push(...Array.from({ length: count }, () => ({ status: 503, ...(operation ? { operation } : {}) })));
    },
    resetCounters() {
      for (const operation of Object.keys(calls) as BlobOperation[]) calls[operation] = 0;
      statuses.length = 0;
      faults = [];
    },
    clear() {
      blobs.clear();
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
