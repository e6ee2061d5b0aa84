import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Statement } from '../../lib/core/backend.ts';

/**
 * What IAM would be asked for each request our code sends, and whether planned statements allow
 * it. A recording proxy sits in front of a local server (s3rver, dynalite); each recorded request is
 * translated into the IAM action, resource ARN and condition keys AWS evaluates for it, and checked
 * against statements the way IAM does for allow statements: action listed, resource pattern
 * matched (`*`, `?`), every condition true (a condition on a key the request lacks is false).
 */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export type Answer = (request: RecordedRequest) => { status: number; body: string } | undefined;

export interface Recorder {
  endpoint: string;
  requests: RecordedRequest[];
  reset(): void;
  stop(): Promise<void>;
}

/** Forwards every request to `target` unchanged (local servers check no signatures), or answers it. */
export async function startRecorder(target: string, answer: Answer = () => undefined): Promise<Recorder> {
  const upstream = new URL(target);
  const requests: RecordedRequest[] = [];
  const server = http.createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      const body = Buffer.concat(parts);
      const recorded = { method: request.method!, url: request.url!, headers: request.headers, body: body.toString() };
      requests.push(recorded);
      const answered = answer(recorded);
      if (answered) {
        response.writeHead(answered.status, { 'content-type': 'application/x-amz-json-1.0' }).end(answered.body);
        return;
      }
      const headers = { ...request.headers, host: upstream.host };
      const options = {
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers,
      };
      const forwarded = http.request(options, (reply) => {
        response.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(response);
      });
      forwarded.on('error', (error) => response.writeHead(502).end(String(error)));
      forwarded.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    reset: () => void requests.splice(0),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One authorization IAM makes for a request: `s3:prefix` is present only when the request has one. */
export interface IamRequest {
  action: string;
  resource: string;
  prefix?: string;
  /** The request it came from, for messages. */
  call: string;
}

const XML_ENTITIES: Record<string, string> = { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' };
const xmlText = (value: string) =>
  value.replace(/&(lt|gt|quot|apos|amp);/g, (_entity, name: string) => XML_ENTITIES[name]!);

/** Path-style S3 requests as the SDK sends them to a custom endpoint. */
export function s3IamRequests(request: RecordedRequest): IamRequest[] {
  const url = new URL(request.url, 'http://s3.local');
  const [bucket, ...keyParts] = url.pathname.slice(1).split('/');
  // `/bucket/?list-type=2` is a bucket request too.
  const key = keyParts.map(decodeURIComponent).join('/');
  const call = `${request.method} ${request.url}`;
  const bucketArn = `arn:aws:s3:::${bucket}`;
  const prefix = url.searchParams.get('prefix');
  const listing = (action: string): IamRequest => ({
    action,
    resource: bucketArn,
    call,
    ...(prefix !== null ? { prefix } : {}),
  });
  if (key === '') {
    // HeadBucket is authorized as ListBucket, without any prefix.
    if (request.method === 'HEAD') return [{ action: 's3:ListBucket', resource: bucketArn, call }];
    if (request.method === 'GET' && url.searchParams.has('versions')) return [listing('s3:ListBucketVersions')];
    if (request.method === 'GET' && url.searchParams.get('list-type') === '2') return [listing('s3:ListBucket')];
    if (request.method === 'POST' && url.searchParams.has('delete')) {
      return [...request.body.matchAll(/<Object>([\s\S]*?)<\/Object>/g)].map(([, object]) => ({
        action: /<VersionId>/.test(object!) ? 's3:DeleteObjectVersion' : 's3:DeleteObject',
        resource: `${bucketArn}/${xmlText(/<Key>([\s\S]*?)<\/Key>/.exec(object!)![1]!)}`,
        call,
      }));
    }
  } else {
    const objectArn = `${bucketArn}/${key}`;
    const copySource = request.headers['x-amz-copy-source'];
    if (request.method === 'PUT' && typeof copySource === 'string') {
      const source = decodeURIComponent(copySource.replace(/^\//, '').split('?')[0]!);
      return [
        { action: 's3:PutObject', resource: objectArn, call },
        { action: 's3:GetObject', resource: `arn:aws:s3:::${source}`, call },
      ];
    }
    if (request.method === 'PUT') return [{ action: 's3:PutObject', resource: objectArn, call }];
    if (request.method === 'GET' || request.method === 'HEAD') {
      return [{ action: 's3:GetObject', resource: objectArn, call }];
    }
    if (request.method === 'DELETE') return [{ action: 's3:DeleteObject', resource: objectArn, call }];
  }
  return [{ action: `unmapped:${request.method}`, resource: request.url, call }];
}

/** DynamoDB JSON requests: the table (or index) each names, in the region it was signed for. */
export function dynamoIamRequests(request: RecordedRequest, accountId: string): IamRequest[] {
  const operation = String(request.headers['x-amz-target'] ?? '').split('.')[1] ?? 'unknown';
  const signedFor = /Credential=[^/]+\/\d+\/([^/]+)\/dynamodb\//.exec(String(request.headers.authorization));
  const region = signedFor?.[1] ?? 'unknown';
  type Input = { TableName?: string; IndexName?: string; RequestItems?: Record<string, unknown> };
  const input = JSON.parse(request.body || '{}') as Input;
  const tables = input.RequestItems ? Object.keys(input.RequestItems) : [input.TableName ?? 'unknown'];
  return tables.map((table) => ({
    action: `dynamodb:${operation}`,
    resource: `arn:aws:dynamodb:${region}:${accountId}:table/${table}${input.IndexName ? `/index/${input.IndexName}` : ''}`,
    call: operation,
  }));
}

/** An IAM pattern: `*` any run of characters, `?` one character, everything else literal. */
function pattern(glob: string): RegExp {
  const literal = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${literal.replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

export function allows(statements: Statement[], request: IamRequest): boolean {
  return statements.some(
    (statement) =>
      statement.actions.includes(request.action) &&
      statement.resources.some((resource) => pattern(resource).test(request.resource)) &&
      (statement.conditions ?? []).every(
        (condition) =>
          request.prefix !== undefined && condition.values.some((value) => pattern(value).test(request.prefix!)),
      ),
  );
}

/** The requests the statements would deny, each once. */
export function denied(statements: Statement[], requests: IamRequest[]): IamRequest[] {
  const seen = new Map<string, IamRequest>();
  for (const request of requests) {
    if (!allows(statements, request))
      seen.set(`${request.action} ${request.resource} ${request.prefix ?? ''}`, request);
  }
  return [...seen.values()];
}
