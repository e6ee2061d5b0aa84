import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  GetItemCommand,
  paginateQuery,
  type QueryCommandInput,
  ResourceInUseException,
  ResourceNotFoundException,
  type TableDescription,
  UpdateItemCommand,
  UpdateTimeToLiveCommand,
  type WriteRequest,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { type BatchOptions, batchGetAll, batchWriteAll, type DynamoItem } from '../../aws/dynamo.ts';
import { ConfigError, ControlStoreError } from '../../errors.ts';
import { CONTROL_TTL_ATTRIBUTE, controlTableDefinition } from './definition.ts';
import { type CounterName, keys, namesOf, num, text } from './items.ts';

/**
 * The control table: its migration, and the reads, counters and writes every part of the control
 * store uses (items, partitions, index queries, ids, batched writes). Its definition is
 * definition.ts, which planning a deployment reads without loading the SDK.
 */
/**
 * Creates the table if missing and waits until it is ACTIVE; checks an existing table has this
 * layout; enables TTL on `expiresAt`. Concurrent callers are fine: the loser of the CreateTable
 * race waits like everyone else, and enabling TTL twice is recognised.
 */
export async function migrateControlTable(client: DynamoDBClient, table: string): Promise<void> {
  if (!(await describeTable(client, table))) {
    try {
      await client.send(new CreateTableCommand(controlTableDefinition(table)));
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
  }
  await waitUntilTableExists({ client, maxWaitTime: 300, minDelay: 1, maxDelay: 5 }, { TableName: table });
  checkLayout((await describeTable(client, table))!, table);
  await enableTtl(client, table);
}

async function describeTable(client: DynamoDBClient, table: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: table }))).Table;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

/** A table made by hand or by other infrastructure code must match, or queries fail later, one by one. */
function checkLayout(description: TableDescription, table: string): void {
  const expected = controlTableDefinition(table);
  const keySchema = (schema: Array<{ AttributeName?: string | undefined; KeyType?: string | undefined }> | undefined) =>
    (schema ?? []).map((key) => `${key.AttributeName}:${key.KeyType}`).join(',');
  const problems: string[] = [];
  if (keySchema(description.KeySchema) !== keySchema(expected.KeySchema))
    problems.push(`primary key is ${keySchema(description.KeySchema)}, expected pk:HASH,sk:RANGE`);
  for (const index of expected.GlobalSecondaryIndexes ?? []) {
    const actual = description.GlobalSecondaryIndexes?.find((candidate) => candidate.IndexName === index.IndexName);
    if (!actual) problems.push(`index ${index.IndexName} is missing`);
    else if (keySchema(actual.KeySchema) !== keySchema(index.KeySchema))
      problems.push(
        `index ${index.IndexName} has key ${keySchema(actual.KeySchema)}, expected ${keySchema(index.KeySchema)}`,
      );
    else if (actual.Projection?.ProjectionType !== index.Projection?.ProjectionType)
      problems.push(
        `index ${index.IndexName} projects ${actual.Projection?.ProjectionType}, expected ${index.Projection?.ProjectionType}`,
      );
  }
  if (problems.length > 0) {
    throw new ConfigError(
      problems.map((message) => ({
        path: 'control.table',
        message: `table ${table}: ${message}`,
        fix: 'let `retention migrate` create the table, or declare it as controlTableDefinition() says',
      })),
      { table },
    );
  }
}

/**
 * Run history carries `expiresAt` so DynamoDB removes old runs by itself. Emulators without the
 * TTL API (dynalite) answer UnknownOperationException: history then just stays, which is harmless.
 */
async function enableTtl(client: DynamoDBClient, table: string): Promise<void> {
  const ttlActive = async (): Promise<boolean> => {
    const status = (await client.send(new DescribeTimeToLiveCommand({ TableName: table }))).TimeToLiveDescription
      ?.TimeToLiveStatus;
    return status === 'ENABLED' || status === 'ENABLING';
  };
  if (await ttlActive()) return;
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: table,
        TimeToLiveSpecification: { AttributeName: CONTROL_TTL_ATTRIBUTE, Enabled: true },
      }),
    );
  } catch (error) {
    if ((error as { name?: string }).name === 'UnknownOperationException') return;
    // A concurrent migrate enabled it first ("TimeToLive is already enabled").
    if (!(await ttlActive())) throw error;
  }
}

/** Index reads fetch records in BatchGetItem calls of 100, a few in flight. */
const FETCH_RECORDS: BatchOptions = { concurrency: 4, retry: { attempts: 8, baseDelayMs: 50, maxDelayMs: 5_000 } };

/** Every item a query returns, page after page; stop early by breaking out of the loop. */
async function* queryItems(client: DynamoDBClient, input: QueryCommandInput): AsyncGenerator<DynamoItem> {
  for await (const page of paginateQuery({ client }, input)) yield* page.Items ?? [];
}

/**
 * Reserves `count` consecutive ids from a counter item with one atomic ADD and returns the
 * first. Ids are unique and increase in reservation order (as a PostgreSQL sequence does); a
 * reservation whose write then fails leaves a gap, which is harmless.
 */
export async function allocateIds(
  client: DynamoDBClient,
  table: string,
  counter: CounterName,
  count: number,
): Promise<number> {
  const response = await client.send(
    new UpdateItemCommand({
      TableName: table,
      Key: keys.counter(counter),
      UpdateExpression: 'ADD #last :count',
      ExpressionAttributeNames: namesOf('last'),
      ExpressionAttributeValues: { ':count': num(count) },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return Number(response.Attributes?.last?.N) - count + 1;
}

/**
 * Writes every request (BatchWriteItem calls of 25, unprocessed ones retried) or throws: the
 * callers (audit records, holds) must not go on as if a write had happened. `what` names the
 * records in the error; `context` is added to it.
 */
export async function writeAll(
  client: DynamoDBClient,
  table: string,
  requests: WriteRequest[],
  options: BatchOptions,
  what: string,
  context: Record<string, unknown>,
): Promise<void> {
  const failures = await batchWriteAll(client, table, requests, options);
  if (failures.length > 0) {
    throw new ControlStoreError(
      `${failures.length} of ${requests.length} ${what} writes failed: ${failures[0]!.error}`,
      { ...context, count: failures.length },
    );
  }
}

/** A whole partition of the table, in sort key order, read consistently. */
export function partitionItems(client: DynamoDBClient, table: string, pk: string): AsyncGenerator<DynamoItem> {
  return queryItems(client, {
    TableName: table,
    KeyConditionExpression: '#pk = :pk',
    ExpressionAttributeNames: namesOf('pk'),
    ExpressionAttributeValues: { ':pk': text(pk) },
    ConsistentRead: true,
  });
}

/** Strongly consistent: leases, checkpoints and pauses are decisions, not reports. */
export async function getItem(client: DynamoDBClient, table: string, key: DynamoItem): Promise<DynamoItem | undefined> {
  return (await client.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item;
}

/** The query of one partition of an overloaded index (`gsiN`, partition attribute `gsiNpk`). */
export function indexPartitionQuery(
  table: string,
  index: 'gsi1' | 'gsi2' | 'gsi3',
  partition: string,
  order: 'oldest first' | 'newest first',
  pageSize?: number,
): QueryCommandInput & { TableName: string; IndexName: string } {
  return {
    TableName: table,
    IndexName: index,
    KeyConditionExpression: `#${index}pk = :partition`,
    ExpressionAttributeNames: namesOf(`${index}pk`),
    ExpressionAttributeValues: { ':partition': text(partition) },
    ScanIndexForward: order === 'oldest first',
    // Index pages hold keys; each page's records are then fetched in BatchGetItem calls of 100.
    ...(pageSize === undefined ? {} : { Limit: Math.min(pageSize, 100) }),
  };
}

/**
 * The records a keys-only index query names, in index order, each read from the table with a
 * strongly consistent read: current even when the index lags. One deleted since is skipped.
 */
export async function* indexedItems(
  client: DynamoDBClient,
  input: QueryCommandInput & { TableName: string; IndexName: string },
): AsyncGenerator<DynamoItem> {
  for await (const page of paginateQuery({ client }, input)) {
    const addresses = (page.Items ?? []).map((entry) => ({ pk: entry.pk!, sk: entry.sk! }));
    if (addresses.length === 0) continue;
    const fetched = new Map(
      (await batchGetAll(client, input.TableName, addresses, { ConsistentRead: true }, FETCH_RECORDS)).map((item) => [
        addressOf(item),
        item,
      ]),
    );
    for (const address of addresses) {
      const item = fetched.get(addressOf(address));
      if (item) yield item;
    }
  }
}

const addressOf = (item: DynamoItem): string => JSON.stringify([item.pk?.S, item.sk?.S]);
