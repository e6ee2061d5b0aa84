import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpResponse } from '../../lib/serverless/healthHandler.ts';

/**
 * A Function URL in front of an in-process handler: each HTTP request becomes the event Lambda
 * sends (payload format 2.0: lower-case headers, `rawPath`, `rawQueryString`, no body when there
 * is none), and the handler's whole result the response (a base64 body decoded, as AWS does).
 */
export function functionUrlEvent(
  method: string,
  route: string,
  headers: Record<string, string> = {},
  body?: string,
): Record<string, unknown> {
  const [rawPath, rawQueryString = ''] = route.split('?') as [string, string?];
  const lowered = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    headers: { host: 'abc123.lambda-url.us-east-1.on.aws', ...lowered },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abc123',
      domainName: 'abc123.lambda-url.us-east-1.on.aws',
      domainPrefix: 'abc123',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: lowered['user-agent'] },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    ...(body ? { body } : {}),
    isBase64Encoded: false,
  };
}

export interface FunctionUrl {
  url: string;
  stop(): Promise<void>;
}

export async function startFunctionUrl(
  handler: (event: unknown) => Promise<HttpResponse & { isBase64Encoded?: boolean }>,
): Promise<FunctionUrl> {
  const server = http.createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      const headers = Object.fromEntries(
        Object.entries(request.headers).flatMap(([name, value]) => (typeof value === 'string' ? [[name, value]] : [])),
      );
      const body = Buffer.concat(parts).toString('utf8');
      handler(functionUrlEvent(request.method!, request.url!, headers, body)).then(
        (result) =>
          response
            .writeHead(result.statusCode, result.headers)
            .end(Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8')),
        (error: unknown) => response.writeHead(502).end(String(error)),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
