import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LambdaClient } from '@aws-sdk/client-lambda';

/**
 * A local stand-in for the Lambda Invoke API (`POST /2015-03-31/functions/<name>/invocations`),
 * driven by the real `@aws-sdk/client-lambda`. Functions are in-process async callbacks.
 * `RequestResponse` answers with the callback's result (an uncaught error becomes
 * `X-Amz-Function-Error: Unhandled`, as on AWS); `Event` is recorded, answered 202 at once, and
 * dispatched afterwards like Lambda's asynchronous queue. `idle()` waits until every dispatched
 * event has finished, including events those raised.
 */
export type InvocationType = 'RequestResponse' | 'Event';

export interface RecordedInvocation {
  functionName: string;
  type: InvocationType;
  payload: unknown;
}

export type LambdaFunction = (payload: unknown) => Promise<unknown>;

export interface LambdaStandIn {
  client: LambdaClient;
  invocations: RecordedInvocation[];
  register(functionName: string, fn: LambdaFunction): void;
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLambdaStandIn(): Promise<LambdaStandIn> {
  const functions = new Map<string, LambdaFunction>();
  const invocations: RecordedInvocation[] = [];
  const pending = new Set<Promise<unknown>>();

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(request.url ?? '');
      const functionName = match ? decodeURIComponent(match[1]!) : '';
      const fn = functions.get(functionName);
      if (request.method !== 'POST' || !fn) {
        response
          .writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'ResourceNotFoundException' })
          .end(JSON.stringify({ Type: 'User', message: `Function not found: ${functionName}` }));
        return;
      }
      const type = (request.headers['x-amz-invocation-type'] as InvocationType | undefined) ?? 'RequestResponse';
      const text = Buffer.concat(chunks).toString('utf8');
      const payload: unknown = text ? JSON.parse(text) : {};
      invocations.push({ functionName, type, payload });
      if (type === 'Event') {
        response.writeHead(202).end();
        const run = new Promise((resolve) => setImmediate(resolve))
          .then(() => fn(payload))
          .catch(() => undefined)
          .finally(() => pending.delete(run));
        pending.add(run);
        return;
      }
      fn(payload).then(
        (result) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result ?? null)),
        (error: unknown) =>
          response.writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled' }).end(
            JSON.stringify({
              errorType: error instanceof Error ? error.name : 'Error',
              errorMessage: error instanceof Error ? error.message : String(error),
            }),
          ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = new LambdaClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });

  return {
    client,
    invocations,
    register: (functionName, fn) => void functions.set(functionName, fn),
    async idle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    async stop() {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
