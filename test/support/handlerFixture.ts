import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { PolicyConfig } from '../../lib/config/schema.ts';
import { CONTROL_LOADERS } from '../../lib/control/registry.ts';
import type { Store } from '../../lib/core/store.ts';
import type { DataClass } from '../../lib/core/types.ts';
import { createRunMonitor } from '../../lib/observe/sentry.ts';
import { createDataClassHandler, type DataClassDeps, type LambdaContext } from '../../lib/serverless/handler.ts';
import { createRuntime, type Runtime } from '../../lib/serverless/runtime.ts';
import { createStore } from '../../lib/stores/registry.ts';
import type { TestPostgres } from './postgres.ts';

/**
 * One "deployment" for handler tests: a JSON config whose policy sweeps a fresh directory, a fresh
 * control database, and a runtime built as the functions build it (config from RETENTION_CONFIG,
 * secrets passed in), with log lines captured instead of written to stdout.
 */
export interface HandlerFixture {
  root: string;
  configPath: string;
  databaseUrl: string;
  runtime: Runtime;
  lines: Array<Record<string, unknown>>;
  handler: (event: unknown, context?: LambdaContext) => ReturnType<ReturnType<typeof createDataClassHandler>>;
}

export interface FixtureOptions {
  policy?: Record<string, unknown>;
  dataClass?: DataClass;
  sentryDsn?: string;
  lambda?: LambdaClient;
  /** Wraps every store the runtime creates. */
  wrapStore?: (store: Store) => Store;
  handler?: Pick<DataClassDeps, 'deadlineMarginMs' | 'maxHops'>;
  /** Remaining invocation time of the default fake context. */
  remainingMs?: number;
}

export const FUNCTION_NAME = 'data-retention-test-blobs';

export async function handlerFixture(
  server: TestPostgres,
  scratch: string,
  options: FixtureOptions = {},
): Promise<HandlerFixture> {
  const dir = await mkdtemp(path.join(scratch, 'case-'));
  const root = path.join(dir, 'root');
  await mkdir(root);
  const configPath = path.join(dir, 'retention.json');
  const policy = {
    name: 'files',
    class: 'blobs',
    store: { kind: 'fs', root },
    retention: '30d',
    schedule: '0 * * * *',
    limits: { maxDeleteFraction: 1 },
    ...options.policy,
  };
  await writeFile(configPath, JSON.stringify({ policies: [policy] }));
  const databaseUrl = await server.createDatabase('handlers');
  const lines: Array<Record<string, unknown>> = [];
  const runtime = createRuntime({
    controls: CONTROL_LOADERS,
    env: { RETENTION_CONFIG: configPath, RETENTION_LOG_LEVEL: 'debug' },
    databaseUrl,
    sink: { write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  const handle = createDataClassHandler(options.dataClass ?? 'blobs', runtime, {
    monitor: createRunMonitor({ dsn: options.sentryDsn, clock: runtime.clock }),
    createStore: async (config: PolicyConfig) =>
      (options.wrapStore ?? ((store: Store) => store))(await createStore(config)),
    ...(options.lambda ? { lambda: options.lambda } : {}),
    ...options.handler,
  });
  return {
    root,
    configPath,
    databaseUrl,
    runtime,
    lines,
    handler: (event, context) => handle(event, context ?? lambdaContext(options.remainingMs ?? 60_000)),
  };
}

/** A fake Lambda context whose deadline is `remainingMs` from now, in real time. */
export function lambdaContext(remainingMs: number, functionName = FUNCTION_NAME): LambdaContext {
  const deadline = Date.now() + remainingMs;
  return { functionName, awsRequestId: randomUUID(), getRemainingTimeInMillis: () => deadline - Date.now() };
}

/** A store whose every delete batch takes `delayMs` longer (a slow backend). */
export function slowDeletes(delayMs: number): (store: Store) => Store {
  return (store) => override(store, { delete: async (items) => (await sleep(delayMs), store.delete(items)) });
}

/** A store whose scans fail (an unreachable backend after open). */
export function failingScans(message: string): (store: Store) => Store {
  return (store) => override(store, { scan: async () => Promise.reject(new Error(message)) });
}

function override(store: Store, methods: Partial<Store>): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property in methods) return methods[property as keyof Store];
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
