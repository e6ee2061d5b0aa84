import net from 'node:net';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoClientFor } from '../../lib/aws/dynamo.ts';
import { S3StoreSchema } from '../../lib/stores/s3/schema.ts';
import { s3ClientFor } from '../../lib/stores/s3/store.ts';

/**
 * Every attempt of the SDK clients the tool builds gives up on a server that accepts the
 * connection and never answers (a frozen backend), so a call costs at most attempts × timeout.
 * @smithy's `requestTimeout` silently became a warning; this catches the next such change.
 */
let silent: net.Server;
const connections = new Set<net.Socket>();
let endpoint: string;
const saved = process.env.RETENTION_REQUEST_TIMEOUT;

beforeAll(async () => {
  silent = net.createServer((socket) => {
    connections.add(socket.on('error', () => undefined));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
  // Read when a client is built.
  process.env.RETENTION_REQUEST_TIMEOUT = '1s';
});
afterAll(async () => {
  if (saved === undefined) delete process.env.RETENTION_REQUEST_TIMEOUT;
  else process.env.RETENTION_REQUEST_TIMEOUT = saved;
  for (const socket of connections) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

async function failure(
  call: () => Promise<unknown>,
): Promise<{ name?: string; message: string; $metadata?: { attempts?: number } }> {
  return call().then(
    () => expect.fail('a silent server answered'),
    (error: unknown) => error as { name?: string; message: string; $metadata?: { attempts?: number } },
  );
}

describe('per-attempt timeouts against a silent server', () => {
  it('S3: each attempt times out, and the call fails after maxAttempts', async () => {
    const config = S3StoreSchema.parse({
      kind: 's3',
      bucket: 'frozen',
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      maxAttempts: 2,
    });
    const client = s3ClientFor(config, { credentials });
    try {
      const error = await failure(() => client.send(new ListObjectsV2Command({ Bucket: 'frozen' })));
      expect(error.name).toBe('TimeoutError');
      expect(error.message).toMatch(/timed out after 1000 ms/);
      expect(error.$metadata?.attempts).toBe(2);
    } finally {
      client.destroy();
    }
  });

  it('DynamoDB (tokens store and control store): each attempt times out, and the call fails after 5', async () => {
    const client = dynamoClientFor({ region: 'us-east-1', endpoint });
    client.config.credentials = async () => credentials;
    try {
      const error = await failure(() =>
        client.send(new PutItemCommand({ TableName: 'frozen', Item: { pk: { S: 'a' } } })),
      );
      expect(error.name).toBe('TimeoutError');
      expect(error.$metadata?.attempts).toBe(5);
    } finally {
      client.destroy();
    }
  });
});
