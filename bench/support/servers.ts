import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SeedObject } from './benchServer.ts';
import type { ProxyOptions, ProxyStats } from './latencyProxy.ts';
import { benchRuntime } from './runtime.ts';

export type { SeedObject };

/** The bench server process (bench/support/benchServer.ts on Node 24), seen from the bench. */
export interface BenchServers {
  /** fauxqs's S3 without a proxy: for seeding and checks, never for a measured scenario. */
  s3Endpoint: string;
  /** Starts a latency proxy named `name` in front of `target` (default: fauxqs's S3). */
  startProxy(name: string, options: ProxyOptions, target?: string): Promise<string>;
  proxyStats(name: string): Promise<ProxyStats>;
  resetProxy(name: string): Promise<void>;
  seedS3(bucket: string, objects: SeedObject[]): Promise<void>;
  countS3(bucket: string): Promise<number>;
  dropS3(bucket: string): Promise<void>;
  startVercelBlob(): Promise<{ apiUrl: string; token: string }>;
  /** Replaces the stand-in's blobs with these. */
  seedVercelBlob(objects: SeedObject[]): Promise<void>;
  /** How many of the seeded blobs remain. */
  countVercelBlob(): Promise<number>;
  stop(): Promise<void>;
}

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export async function startBenchServers(): Promise<BenchServers> {
  const runtime = await benchRuntime();
  // tsx (the project's) loads the TypeScript: the stand-in imports lib/ code that Node's own
  // type stripping cannot run (parameter properties).
  const child = spawn(runtime.node, ['--import', 'tsx', fileURLToPath(new URL('./benchServer.ts', import.meta.url))], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, NODE_OPTIONS: '', BENCH_FAUXQS_DIR: runtime.fauxqs },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { s3Endpoint } = await ready(child);
  const pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  child.on('message', (message: { id: number; result?: unknown; error?: string }) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error === undefined) waiter?.resolve(message.result);
    else waiter?.reject(new Error(`bench server: ${message.error}`));
  });
  child.once('exit', (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`bench server exited (code ${code})`));
  });
  const call = <T>(op: string, args: unknown = {}): Promise<T> =>
    new Promise((resolve, reject) => {
      nextId += 1;
      pending.set(nextId, { resolve, reject });
      child.send({ id: nextId, op, args });
    });

  return {
    s3Endpoint,
    startProxy: (name, options, target) => call('startProxy', { name, options, target }),
    proxyStats: (name) => call('proxyStats', { name }),
    resetProxy: (name) => call('resetProxy', { name }),
    seedS3: (bucket, objects) => call('seedS3', { bucket, objects }),
    countS3: (bucket) => call('countS3', { bucket }),
    dropS3: (bucket) => call('dropS3', { bucket }),
    startVercelBlob: () => call('startVercelBlob'),
    seedVercelBlob: (objects) => call('seedVercelBlob', { objects }),
    countVercelBlob: () => call('countVercelBlob'),
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function ready(child: ChildProcess): Promise<{ s3Endpoint: string }> {
  return new Promise((resolve, reject) => {
    const exited = (code: number | null) => reject(new Error(`bench server exited before it was ready (code ${code})`));
    child.once('exit', exited);
    child.once('message', (message: { ready: { s3Endpoint: string } }) => {
      child.off('exit', exited);
      resolve(message.ready);
    });
  });
}
