import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DynamoDBClient,
  type KeysAndAttributes,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { backoffMs, chunks, mapConcurrent, type RetryPolicy, sleep } from '../core/async.ts';
import { CONNECT_TIMEOUT_MS, type RequestDeadline, requestTimeoutMs } from '../core/deadline.ts';
import { describeCause, StoreError } from '../errors.ts';

/**
 * DynamoDB helpers shared by the tokens store and the DynamoDB control store. The batch calls
 * answer 200 while handing back what DynamoDB did not process (throttling, partition limits),
 * and the SDK does not retry that part: these helpers do, with jittered backoff, and never drop
 * a request silently (a write that never happened is reported, a read that never happened throws).
 */
export type DynamoItem = Record<string, AttributeValue>;

/** Per-request caps of BatchWriteItem and BatchGetItem. */
const MAX_BATCH_WRITE = 25;
const MAX_BATCH_GET = 100;

/** The client a store or control store builds from its config when none is injected. */
export function dynamoClientFor(config: {
  region?: string | undefined;
  endpoint?: string | undefined;
}): DynamoDBClient {
  return new DynamoDBClient({
    ...(config.region ? { region: config.region } : {}),
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    // Throttled calls are retried by the SDK; adaptive mode also slows the client down meanwhile.
    retryMode: 'adaptive',
    maxAttempts: 5,
    // Per attempt: a frozen endpoint costs a bounded wait (see core/deadline.ts); a run's deadline bounds them all.
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: requestTimeoutMs() },
  });
}

/** A refused ConditionExpression: an expected outcome (lease taken, token refreshed), not a failure. */
export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException;
}

export interface BatchOptions {
  /** Batch requests in flight at once. */
  concurrency: number;
  /** Attempts for the unprocessed part of each request (the first send included) and their backoff. */
  retry: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
  /** A run's deadline (the tokens store; the control store's writes must outlive it): thrown once passed. */
  deadline?: RequestDeadline;
}

export interface WriteFailure {
  request: WriteRequest;
  error: string;
}

/**
 * Sends `requests` to `table` in BatchWriteItem calls of 25. Unprocessed requests are resent
 * after a backoff; those still unprocessed after the last attempt, and those of a call that
 * failed outright, come back as failures, so the caller decides (fail the item, or throw).
 * A call must not name the same item twice (DynamoDB rejects the whole call).
 */
export async function batchWriteAll(
  client: DynamoDBClient,
  table: string,
  requests: WriteRequest[],
  options: BatchOptions,
): Promise<WriteFailure[]> {
  const failures = await mapConcurrent(
    chunks(requests, MAX_BATCH_WRITE),
    options.concurrency,
    async (chunk): Promise<WriteFailure[]> => {
      let pending = chunk;
      for (let attempt = 1; ; attempt += 1) {
        try {
          const response = await client.send(
            new BatchWriteItemCommand({ RequestItems: { [table]: pending } }),
            options.deadline?.sendOptions,
          );
          pending = response.UnprocessedItems?.[table] ?? [];
        } catch (error) {
          // Whether a call the deadline cut short was carried out is unknown: not a failure to report.
          options.deadline?.throwIfPassed('BatchWriteItem', error);
          return pending.map((request) => ({ request, error: describeCause(error) }));
        }
        if (pending.length === 0) return [];
        if (attempt >= options.retry.attempts) {
          return pending.map((request) => ({
            request,
            error: `still unprocessed after ${attempt} BatchWriteItem attempts (throttled)`,
          }));
        }
        await (options.sleep ?? sleep)(backoffMs(attempt, options.retry));
      }
    },
  );
  return failures.flat();
}

/**
 * Reads the items at `keys` (absent ones are simply not returned) in BatchGetItem calls of 100,
 * resending unprocessed keys after a backoff. Throws StoreError when keys stay unprocessed:
 * a caller deciding "gone" from a read that never happened would decide wrongly.
 */
export async function batchGetAll(
  client: DynamoDBClient,
  table: string,
  keys: DynamoItem[],
  request: Omit<KeysAndAttributes, 'Keys'>,
  options: BatchOptions,
): Promise<DynamoItem[]> {
  const pages = await mapConcurrent(
    chunks(keys, MAX_BATCH_GET),
    options.concurrency,
    async (chunk): Promise<DynamoItem[]> => {
      const found: DynamoItem[] = [];
      let pending = chunk;
      for (let attempt = 1; ; attempt += 1) {
        const response = await client.send(
          new BatchGetItemCommand({ RequestItems: { [table]: { ...request, Keys: pending } } }),
          options.deadline?.sendOptions,
        );
        found.push(...(response.Responses?.[table] ?? []));
        pending = response.UnprocessedKeys?.[table]?.Keys ?? [];
        if (pending.length === 0) return found;
        if (attempt >= options.retry.attempts) {
          throw new StoreError(
            `BatchGetItem on ${table}: ${pending.length} keys still unprocessed after ${attempt} attempts (throttled)`,
            { table },
          );
        }
        await (options.sleep ?? sleep)(backoffMs(attempt, options.retry));
      }
    },
  );
  return pages.flat();
}
