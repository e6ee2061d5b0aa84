import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { mapConcurrent } from '../../lib/core/async.ts';
import type { Store } from '../../lib/core/store.ts';
import { S3StoreSchema } from '../../lib/stores/s3/schema.ts';
import { createS3Store, type S3StoreConfig, type S3StoreDeps, s3ClientFor } from '../../lib/stores/s3/store.ts';
import { readPort } from './childServer.ts';
import { type FaultProxy, startFaultProxy } from './faultProxy.ts';

/**
 * A throwaway s3rver for one test file, in a child process: s3rver makes listing continuation
 * tokens with DES, which Node 20 only has with `--openssl-legacy-provider`. Running it as a child
 * with that flag keeps the flag out of the test process (no NODE_OPTIONS in vitest's config) and
 * keeps s3rver's synchronous directory walks off the test's event loop.
 */
export interface TestS3 {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** s3rver's data directory (objects are files there). */
  directory: string;
  /** A client for the server (or for `endpoint`, e.g. a fault proxy in front of it). */
  client(endpoint?: string): S3Client;
  createBucket(): Promise<string>;
  /** Uploads objects and sets their LastModified (s3rver reports the file's mtime). */
  seed(bucket: string, objects: Array<{ key: string; timestamp: Date; size?: number; body?: string }>): Promise<void>;
  /**
   * Bulk seeding straight into s3rver's directory (its PutObject manages ~200 objects/s here):
   * the object file, its md5 (else s3rver hashes it on first listing) and its mtime.
   */
  seedFiles(bucket: string, objects: Array<{ key: string; timestamp: Date; body?: string }>): Promise<void>;
  setLastModified(bucket: string, key: string, timestamp: Date): Promise<void>;
  stop(): Promise<void>;
}

/** s3rver accepts any V4 signature but only from its built-in account. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const SERVER_SOURCE = `
const S3rver = require('s3rver');
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: process.env.S3RVER_DIRECTORY });
server.run().then((address) => process.stdout.write(JSON.stringify({ port: address.port }) + '\\n'));
// The parent closes stdin when it stops us or dies: never outlive the test.
process.stdin.resume();
process.stdin.on('end', () => server.close().finally(() => process.exit(0)));
`;

export function s3TestClient(endpoint: string): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function startTestS3(): Promise<TestS3> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'retention-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', SERVER_SOURCE], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, NODE_OPTIONS: '', S3RVER_DIRECTORY: directory },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const port = await readPort(child, 's3rver');
  const endpoint = `http://127.0.0.1:${port}`;
  const admin = s3TestClient(endpoint);
  const objectFile = (bucket: string, key: string): string => {
    const segments = key.split('/');
    const last = segments.pop()!;
    return path.join(directory, bucket, ...segments, `${last}._S3rver_object`);
  };

  return {
    endpoint,
    directory,
    client: (target = endpoint) => s3TestClient(target),
    async createBucket() {
      const bucket = `test-${randomBytes(6).toString('hex')}`;
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    async seed(bucket, objects) {
      await mapConcurrent(objects, 16, async (object) => {
        await admin.send(
          new PutObjectCommand({ Bucket: bucket, Key: object.key, Body: object.body ?? 'x'.repeat(object.size ?? 1) }),
        );
        // s3rver may still be finishing the object's files after answering the PUT (seen under
        // load: a later write reset the mtime): set it until a HEAD reads it back.
        for (let attempt = 0; ; attempt += 1) {
          await utimes(objectFile(bucket, object.key), object.timestamp, object.timestamp);
          const head = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: object.key }));
          if (Math.abs((head.LastModified?.getTime() ?? 0) - object.timestamp.getTime()) < 1000) break;
          if (attempt >= 50) throw new Error(`s3rver kept resetting the mtime of ${bucket}/${object.key}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      });
    },
    async seedFiles(bucket, objects) {
      await mapConcurrent(objects, 32, async (object) => {
        const file = objectFile(bucket, object.key);
        const body = object.body ?? 'x';
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, body);
        await writeFile(`${file}.md5`, createHash('md5').update(body).digest('hex'));
        await utimes(file, object.timestamp, object.timestamp);
      });
    },
    async setLastModified(bucket, key, timestamp) {
      await utimes(objectFile(bucket, key), timestamp, timestamp);
    },
    async stop() {
      admin.destroy();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** s3rver behind the counting fault proxy, for one test file: read its fields inside tests. */
export interface ProxiedS3 {
  s3: TestS3;
  /** Straight to s3rver (seeding, checking), not counted by the proxy. */
  client: S3Client;
  proxy: FaultProxy;
  /** A fresh bucket for each test, with the proxy's counts and routes reset. */
  bucket: string;
  /** An S3 store over this test's bucket whose requests go through the proxy (no retry waits). */
  store(options?: Partial<S3StoreConfig>, deps?: Omit<S3StoreDeps, 'client'>): Store;
}

export function useProxiedS3(): ProxiedS3 {
  const env = {
    store(options: Partial<S3StoreConfig> = {}, deps: Omit<S3StoreDeps, 'client'> = {}): Store {
      const config = S3StoreSchema.parse({
        kind: 's3',
        bucket: env.bucket,
        region: 'us-east-1',
        endpoint: env.s3.endpoint,
        forcePathStyle: true,
        ...options,
      });
      const client = s3ClientFor(config, { endpoint: env.proxy.endpoint, credentials: S3RVER_CREDENTIALS });
      return createS3Store(config, { client, sleep: async () => undefined, ...deps });
    },
  } as ProxiedS3;
  beforeAll(async () => {
    env.s3 = await startTestS3();
    env.client = env.s3.client();
    env.proxy = await startFaultProxy(env.s3.endpoint);
  });
  afterAll(async () => {
    env.client?.destroy();
    await env.proxy?.stop();
    await env.s3?.stop();
  });
  beforeEach(async () => {
    env.bucket = await env.s3.createBucket();
    env.proxy.reset();
  });
  return env;
}
