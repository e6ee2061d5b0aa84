import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * A local Sentry ingest driven by the real `@sentry/node` SDK: accepts `POST /api/<project>/envelope/`
 * (newline-delimited JSON, possibly gzip-encoded) and keeps every envelope item for assertions.
 * Item payloads are parsed by the `length` of their item header when given (a payload may contain
 * newlines), else up to the next newline, as the envelope format specifies.
 */
export interface EnvelopeItem {
  type: string;
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

export interface SentryIngest {
  /** DSN for `Sentry.init`. */
  dsn: string;
  items: EnvelopeItem[];
  checkIns(): Array<{
    monitor_slug: string;
    status: string;
    check_in_id: string;
    duration?: number;
    monitor_config?: Record<string, unknown>;
  }>;
  events(): Array<{
    level?: string;
    message?: unknown;
    fingerprint?: string[];
    tags?: Record<string, string>;
    contexts?: Record<string, Record<string, unknown>>;
    exception?: unknown;
  }>;
  clear(): void;
  stop(): Promise<void>;
}

const PROJECT = '42';

export async function startSentryIngest(): Promise<SentryIngest> {
  const items: EnvelopeItem[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method !== 'POST' || request.url?.split('?')[0] !== `/api/${PROJECT}/envelope/`) {
        response.writeHead(404).end();
        return;
      }
      const raw = Buffer.concat(chunks);
      const body = request.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      items.push(...parseEnvelope(body));
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const payloadsOf = (type: string) => items.filter((item) => item.type === type).map((item) => item.payload);
  return {
    dsn: `http://publickey@127.0.0.1:${port}/${PROJECT}`,
    items,
    checkIns: () => payloadsOf('check_in') as ReturnType<SentryIngest['checkIns']>,
    events: () => payloadsOf('event') as ReturnType<SentryIngest['events']>,
    clear: () => void items.splice(0),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function parseEnvelope(body: Buffer): EnvelopeItem[] {
  const items: EnvelopeItem[] = [];
  let offset = body.indexOf(0x0a) + 1; // skip the envelope header
  if (offset === 0) return items;
  while (offset < body.length) {
    const headerEnd = body.indexOf(0x0a, offset);
    if (headerEnd === -1) break;
    const header = JSON.parse(body.subarray(offset, headerEnd).toString('utf8')) as Record<string, unknown>;
    const start = headerEnd + 1;
    let end = typeof header.length === 'number' ? start + header.length : body.indexOf(0x0a, start);
    if (end === -1) end = body.length;
    const text = body.subarray(start, end).toString('utf8');
    items.push({
      type: String(header.type),
      header,
      payload: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    });
    offset = end + 1;
  }
  return items;
}
