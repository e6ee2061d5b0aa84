import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type BatchWriteItemCommandInput,
  type BatchWriteItemCommandOutput,
  DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { readPort } from './childServer.ts';

/**
 * A throwaway dynalite (in-memory DynamoDB emulator) for one test file, in a child process: each
 * request costs dynalite a few milliseconds of CPU (JSON, hashing, one copy per index), which a
 * second core then absorbs instead of the test's event loop. Tables are ACTIVE at once
 * (`createTableMs: 0`). dynalite has no TransactWriteItems, no TTL API and never returns
 * UnprocessedItems; tests that need those inject them (`withholdBatchWrites`).
 */
export interface TestDynamo {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** A new client for the server; all are destroyed by stop(). */
  client(): DynamoDBClient;
  /** A table name no other test uses. */
  tableName(prefix: string): string;
  stop(): Promise<void>;
}

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const SERVER_SOURCE = `
const dynalite = require('dynalite');
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'));
// The parent closes stdin when it stops us or dies: never outlive the test. Nothing to flush.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`;

export async function startDynalite(): Promise<TestDynamo> {
  const child = spawn(process.execPath, ['-e', SERVER_SOURCE], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const endpoint = `http://127.0.0.1:${await readPort(child, 'dynalite')}`;
  const clients: DynamoDBClient[] = [];
  return {
    endpoint,
    client() {
      const client = new DynamoDBClient({
        endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      });
      clients.push(client);
      return client;
    },
    tableName: (prefix) => `${prefix}-${randomBytes(4).toString('hex')}`,
    async stop() {
      for (const client of clients) client.destroy();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface Withheld {
  /** BatchWriteItem calls seen. */
  calls: number;
  /** Requests handed back unprocessed, over all calls. */
  withheld: number;
}

/**
 * Makes `client`'s first `times` BatchWriteItem calls behave as DynamoDB does under throttling:
 * only the first `keep` requests of the call reach dynalite, the rest come back in
 * UnprocessedItems (with `keep: 0` the call does not reach dynalite at all). Later calls go
 * through whole.
 */
export function withholdBatchWrites(client: DynamoDBClient, plan: { keep: number; times: number }): Withheld {
  const seen: Withheld = { calls: 0, withheld: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'BatchWriteItemCommand') return next(args);
      seen.calls += 1;
      if (seen.calls > plan.times) return next(args);
      const input = args.input as BatchWriteItemCommandInput;
      const [table, requests] = Object.entries(input.RequestItems ?? {})[0]!;
      const withheld = requests.slice(plan.keep);
      seen.withheld += withheld.length;
      const unprocessed = withheld.length > 0 ? { [table]: withheld } : {};
      if (plan.keep === 0)
        return {
          output: { $metadata: {}, UnprocessedItems: unprocessed } satisfies BatchWriteItemCommandOutput,
          response: {},
        } as Awaited<ReturnType<typeof next>>;
      const result = await next({
        ...args,
        input: { ...input, RequestItems: { [table]: requests.slice(0, plan.keep) } },
      });
      (result.output as BatchWriteItemCommandOutput).UnprocessedItems = unprocessed;
      return result;
    },
    { step: 'initialize', name: 'withholdBatchWrites' },
  );
  return seen;
}
