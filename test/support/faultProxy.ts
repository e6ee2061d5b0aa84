import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fault-injecting HTTP proxy in front of s3rver (which simulates no throttling and never
 * returns per-key errors). It records every request and can:
 * - answer the next N requests with 503 SlowDown (the SDK's adaptive retry must absorb them);
 * - report chosen keys as Errors[] in a 200 DeleteObjects response (those keys are removed from
 *   the forwarded request, so they really stay on the server, as with real S3);
 * - answer requests itself (`route`), e.g. ListObjectVersions, which s3rver lacks;
 * - hold every DeleteObjects for a while before forwarding it (a slow backend).
 * s3rver checks no V4 signature, so rewriting a body only needs its length and checksums dropped.
 */
export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  /** Keys in a DeleteObjects body (`<Object>` elements), in order; undefined for other requests. */
  deleteKeys?: Array<{ key: string; versionId?: string; etag?: string }>;
  status: number;
}

export interface KeyFault {
  code: string;
  message?: string;
  /** How many DeleteObjects responses report the error for each key (default: every one). */
  times?: number;
}

export type RouteHandler = (request: {
  method: string;
  url: URL;
  body: string;
}) => { status: number; body: string; headers?: Record<string, string> } | undefined;

export interface FaultProxy {
  endpoint: string;
  requests: RecordedRequest[];
  /** The next `count` requests get 503 SlowDown. */
  slowDown(count: number): void;
  failKeys(keys: string[], fault: KeyFault): void;
  route(handler: RouteHandler): void;
  /** Every DeleteObjects waits `ms` before it is forwarded. */
  delayDeletes(ms: number): void;
  reset(): void;
  stop(): Promise<void>;
}

const SLOW_DOWN =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const requests: RecordedRequest[] = [];
  let slowDowns = 0;
  let keyFaults = new Map<string, KeyFault & { remaining: number }>();
  let routes: RouteHandler[] = [];
  let deleteDelayMs = 0;

  const server = http.createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      void handle(request, Buffer.concat(parts), response).catch((error: unknown) => {
        response.writeHead(502).end(String(error));
      });
    });
  });

  async function handle(request: http.IncomingMessage, body: Buffer, response: http.ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    const url = request.url ?? '/';
    const isDelete = method === 'POST' && /[?&]delete(=|&|$)/.test(url);
    const record: RecordedRequest = {
      method,
      url,
      status: 0,
      ...(isDelete ? { deleteKeys: parseDeleteObjects(body.toString('utf8')) } : {}),
    };
    requests.push(record);
    const reply = (
      status: number,
      text: string,
      headers: Record<string, string> = { 'content-type': 'application/xml' },
    ): void => {
      record.status = status;
      response.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(text)) }).end(text);
    };

    if (slowDowns > 0) {
      slowDowns -= 1;
      return reply(503, SLOW_DOWN);
    }
    for (const route of routes) {
      const routed = route({ method, url: new URL(url, 'http://proxy'), body: body.toString('utf8') });
      if (routed) return reply(routed.status, routed.body, routed.headers);
    }

    if (isDelete && deleteDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, deleteDelayMs));
    let forwardBody = body;
    const injected: string[] = [];
    if (isDelete && record.deleteKeys) {
      const kept = record.deleteKeys.filter((object) => {
        const fault = keyFaults.get(object.key);
        if (!fault || fault.remaining <= 0) return true;
        fault.remaining -= 1;
        const version = object.versionId ? `<VersionId>${escapeXml(object.versionId)}</VersionId>` : '';
        injected.push(
          `<Error><Key>${escapeXml(object.key)}</Key>${version}<Code>${fault.code}</Code><Message>${escapeXml(fault.message ?? fault.code)}</Message></Error>`,
        );
        return false;
      });
      // Every object faulted: s3rver is not asked (it rejects an empty <Delete>).
      if (kept.length === 0 && injected.length > 0)
        return reply(
          200,
          `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${injected.join('')}</DeleteResult>`,
        );
      if (injected.length > 0) forwardBody = Buffer.from(deleteObjectsXml(kept));
    }

    const upstreamResponse = await forward(upstream, request, forwardBody);
    const text =
      injected.length > 0
        ? upstreamResponse.body.replace('</DeleteResult>', `${injected.join('')}</DeleteResult>`)
        : upstreamResponse.body;
    const headers = { ...upstreamResponse.headers };
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    reply(upstreamResponse.status, text, headers as Record<string, string>);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    slowDown(count) {
      slowDowns += count;
    },
    failKeys(keys, fault) {
      for (const key of keys) keyFaults.set(key, { ...fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
    },
    route(handler) {
      routes.push(handler);
    },
    delayDeletes(ms) {
      deleteDelayMs = ms;
    },
    reset() {
      requests.length = 0;
      slowDowns = 0;
      keyFaults = new Map();
      routes = [];
      deleteDelayMs = 0;
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function forward(
  upstream: URL,
  request: http.IncomingMessage,
  body: Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const headers: http.OutgoingHttpHeaders = {
    ...request.headers,
    host: upstream.host,
    'content-length': String(body.length),
  };
  for (const checksum of Object.keys(headers).filter(
    (name) => name.startsWith('x-amz-checksum-') || name === 'content-md5' || name === 'x-amz-sdk-checksum-algorithm',
  ))
    delete headers[checksum];
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      { host: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers },
      (incoming) => {
        const parts: Buffer[] = [];
        incoming.on('data', (part: Buffer) => parts.push(part));
        incoming.on('end', () =>
          resolve({
            status: incoming.statusCode ?? 502,
            headers: incoming.headers,
            body: Buffer.concat(parts).toString('utf8'),
          }),
        );
        incoming.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

export function parseDeleteObjects(xml: string): Array<{ key: string; versionId?: string; etag?: string }> {
  return [...xml.matchAll(/<Object>([\s\S]*?)<\/Object>/g)].map(([, inner]) => {
    const field = (name: string) => new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(inner!)?.[1];
    const versionId = field('VersionId');
    const etag = field('ETag');
    return {
      key: unescapeXml(field('Key') ?? ''),
      ...(versionId ? { versionId: unescapeXml(versionId) } : {}),
      ...(etag ? { etag: unescapeXml(etag) } : {}),
    };
  });
}

function deleteObjectsXml(objects: Array<{ key: string; versionId?: string }>): string {
  const inner = objects
    .map(
      (object) =>
        `<Object><Key>${escapeXml(object.key)}</Key>${object.versionId ? `<VersionId>${escapeXml(object.versionId)}</VersionId>` : ''}</Object>`,
    )
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>false</Quiet>${inner}</Delete>`;
}

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function unescapeXml(text: string): string {
  return text
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(Number.parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, decimal: string) => String.fromCodePoint(Number.parseInt(decimal, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
