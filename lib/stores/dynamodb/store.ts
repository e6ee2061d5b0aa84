import {
  DeleteItemCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import {
  type BatchOptions,
  batchGetAll,
  batchWriteAll,
  type DynamoItem,
  dynamoClientFor,
  isConditionalCheckFailed,
} from '../../aws/dynamo.ts';
import { chunks } from '../../core/async.ts';
import { RequestDeadline } from '../../core/deadline.ts';
import type {
  Census,
  CensusQuery,
  DeleteOptions,
  DeleteOutcome,
  Page,
  RunContext,
  ScanQuery,
  Store,
} from '../../core/store.ts';
import type { Cutoffs, EligibleItem, Item } from '../../core/types.ts';
import { ConfigError, describeCause, StoreError } from '../../errors.ts';
import { latestCutoff } from '../../policy/plan.ts';
import { CensusTally, sendGuarded } from '../common.ts';
import { decodeCursor, encodeCursor, NAME, ReadPacer, readPage, type TableLayout } from './read.ts';
import type { DynamoTokensStoreConfig } from './schema.ts';
import { checkTable, type KeyCodec, type OpenedTable } from './table.ts';
import { ttlPlan } from './ttl.ts';

export interface DynamoTokensStoreDeps {
  /** Injected client (tests, custom credentials); default: built from the config, destroyed by close(). */
  client?: DynamoDBClient;
  sleep?: (ms: number) => Promise<void>;
}

/** Unprocessed batch deletes are retried for up to ~10 s before the tokens are reported failed. */
const BATCH_RETRY: BatchOptions['retry'] = { attempts: 8, baseDelayMs: 50, maxDelayMs: 5_000 };

/**
 * Expired credentials in a DynamoDB table (data class `tokens`): refresh tokens, sessions, deny
 * list entries. DynamoDB TTL deletes expired items "within a few days" with no guarantee, and
 * they keep coming back from reads until then; this store adds the deadline, the audit and the
 * SLA metric (keep TTL enabled too: it remains a free backstop).
 *
 * Keys: the partition value, or `<partition>#<sort>` with `\` and `#` escaped in the partition
 * part (reversible). Timestamp: the expiry. No backup: these are credentials, and a copy kept
 * "for restore" would defeat the purpose of deleting them.
 */
export function createDynamoTokensStore(config: DynamoTokensStoreConfig, deps: DynamoTokensStoreDeps = {}): Store {
  const client = deps.client ?? dynamoClientFor(config);
  const location = `dynamodb://${config.table}`;
  const deadline = new RequestDeadline(location);
  const sleep = deps.sleep ?? deadline.sleep;
  const context = (extra: Record<string, unknown> = {}) => ({ store: location, ...extra });
  const pacer = new ReadPacer(config.maxReadCapacityPerSecond, sleep);
  const layout: TableLayout = {
    table: config.table,
    partition: config.key.partition,
    ...(config.key.sort ? { sort: config.key.sort } : {}),
    expiry: config.expiresAttribute,
  };
  let opening: Promise<OpenedTable> | undefined;

  /** The table, described and checked once; a failed open is retried on the next call. */
  function opened(): Promise<OpenedTable> {
    opening ??= describeTable().catch((error: unknown) => {
      opening = undefined;
      throw error;
    });
    return opening;
  }

  async function describeTable(): Promise<OpenedTable> {
    let table: TableDescription | undefined;
    try {
      table = (await client.send(new DescribeTableCommand({ TableName: config.table }), deadline.sendOptions)).Table;
    } catch (error) {
      deadline.throwIfPassed('opening', error);
      if (error instanceof ResourceNotFoundException)
        throw ConfigError.single(
          'store.table',
          `table ${config.table} does not exist`,
          'create it or fix the name',
          context(),
        );
      if ((error as { name?: string }).name === 'AccessDeniedException') {
        throw new ConfigError(
          [
            {
              path: 'store.table',
              message: `access to table ${config.table} denied`,
              fix: 'grant dynamodb:DescribeTable, Scan, Query, DeleteItem, BatchWriteItem and BatchGetItem on the table and its index',
            },
          ],
          context(),
          { cause: error },
        );
      }
      throw new StoreError(
        `cannot describe table ${config.table}${config.endpoint ? ` at ${config.endpoint}` : ''}: ${describeCause(error)}`,
        context(),
        { cause: error },
      );
    }
    return checkTable(table!, config, layout, { client, deadline }, context());
  }

  /** Per-purpose retention reads the `by` attribute (unless it is the key prefix). */
  function purposeAttributes(cutoffs: Cutoffs, table: OpenedTable): string[] {
    if (cutoffs.by === undefined || cutoffs.by === 'prefix') return [];
    if (!table.readable(cutoffs.by)) {
      throw ConfigError.single(
        'store.index',
        `index ${config.index?.name} does not project "${cutoffs.by}", which retention.by needs`,
        'project it (INCLUDE or ALL)',
        context(),
      );
    }
    return [cutoffs.by];
  }

  function toItem(raw: DynamoItem, codec: KeyCodec, attributes: string[]): Item {
    return {
      key: codec.encode(raw),
      // Epoch seconds may carry a fraction; the DynamoDB condition at delete time decides exactly.
      timestamp: new Date(Math.round(Number(raw[config.expiresAttribute]?.N) * 1000)),
      ...(attributes.length > 0
        ? { attributes: Object.fromEntries(attributes.map((name) => [name, raw[name]?.S ?? null])) }
        : {}),
    };
  }

  async function guarded<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      deadline.throwIfPassed(operation, error);
      if (error instanceof ConfigError || error instanceof StoreError) throw error;
      throw new StoreError(`${location}: ${operation} failed: ${describeCause(error)}`, context({ operation }), {
        cause: error,
      });
    }
  }

  return {
    kind: 'dynamodb',
    location,
    // Scan mode returns items in hash order: --limit then takes a full pass for the oldest.
    order: config.index ? 'timestamp' : 'unordered',

    async open(run?: RunContext) {
      deadline.bind(run);
      await opened();
    },

    nativeExpiry: {
      plan: (input) => guarded('describing TTL', () => ttlPlan(client, config, input, deadline.sendOptions)),
    },

    scan: ({ cutoffs, cursor, limit }: ScanQuery): Promise<Page> =>
      guarded('scan', async () => {
        const table = await opened();
        const attributes = purposeAttributes(cutoffs, table);
        const latest = latestCutoff(cutoffs);
        const positions = decodeCursor(cursor, table.lanes);
        const raw = await readPage(table.lanes, pacer, positions, limit, { before: epochSeconds(latest), attributes });
        return {
          items: raw.map((item) => toItem(item, table.codec, attributes)),
          cursor: encodeCursor(table.lanes, positions),
          done: positions.every((position) => position === 'done'),
        };
      }),

    census: (query: CensusQuery): Promise<Census> =>
      guarded('census', async () => {
        const table = await opened();
        const attributes = purposeAttributes(query.cutoffs, table);
        const tally = new CensusTally(query);
        let bounded = false;
        await Promise.all(
          Array.from({ length: table.lanes.count }, async (_, lane) => {
            let position: DynamoItem | undefined;
            do {
              const read = await pacer.read(() => table.lanes.read(lane, position, { attributes }));
              bounded ||= !read.items.every((raw) => tally.add(toItem(raw, table.codec, attributes)));
              position = read.next;
            } while (position !== undefined && !bounded);
          }),
        );
        return tally.census;
      }),

    async delete(items: EligibleItem[], options?: DeleteOptions): Promise<DeleteOutcome[]> {
      const { codec } = await opened();
      const outcomes: DeleteOutcome[] = [];
      const addressed: Array<{ item: EligibleItem; key: DynamoItem }> = [];
      for (const item of items) {
        const key = codec.decode(item.key);
        if (key) addressed.push({ item, key });
        else
          outcomes.push({
            key: item.key,
            status: 'failed',
            error: `refused: "${item.key}" is not a key of ${location}`,
          });
      }
      // Conditional deletes are one request per token; batch writes go in rounds of
      // `deleteConcurrency` BatchWriteItem calls of 25 (its cap), the lease checked before each round.
      const sent = config.conditional
        ? await sendGuarded(addressed, config.deleteConcurrency, options?.beforeRequest, async (one) => [
            await deleteIfStillExpired(one),
          ])
        : await sendGuarded(chunks(addressed, 25 * config.deleteConcurrency), 1, options?.beforeRequest, (round) =>
            deleteInBatches(round, codec),
          );
      outcomes.push(...sent);
      return outcomes;
    },

    present: (keys: string[]): Promise<Set<string>> =>
      guarded('present', async () => {
        const { codec } = await opened();
        // Keys in canonical form (as encoded from the table) back to the caller's strings.
        const requested = new Map<string, string>();
        for (const key of keys) {
          const decoded = codec.decode(key);
          if (decoded) requested.set(codec.encode(decoded), key);
        }
        const found = await batchGetAll(
          client,
          config.table,
          [...requested.keys()].map((key) => codec.decode(key)!),
          {
            ConsistentRead: true,
            ProjectionExpression: [NAME.partition, ...(layout.sort ? [NAME.sort] : [])].join(', '),
            ExpressionAttributeNames: {
              [NAME.partition]: layout.partition,
              ...(layout.sort ? { [NAME.sort]: layout.sort } : {}),
            },
          },
          { concurrency: 4, retry: BATCH_RETRY, sleep, deadline },
        );
        return new Set(found.map((item) => requested.get(codec.encode(item))!));
      }),

    async close() {
      if (!deps.client) client.destroy();
    },
  };

  /**
   * Invariant 1 at delete time, atomically: the item goes only if its expiry is still before its
   * cutoff (and its purpose attribute is still the one that chose that cutoff). A missing item
   * passes the condition and deletes nothing, so no returned attributes means `missing`; a
   * refused condition means the token was refreshed since the scan: `kept`.
   */
  async function deleteIfStillExpired({ item, key }: { item: EligibleItem; key: DynamoItem }): Promise<DeleteOutcome> {
    const unchanged = Object.entries(item.attributes ?? {}).map(([name, value], index) => ({
      name,
      value,
      placeholder: `#a${index}`,
      valuePlaceholder: `:a${index}`,
    }));
    try {
      const response = await client.send(
        new DeleteItemCommand({
          TableName: config.table,
          Key: key,
          ConditionExpression: `attribute_not_exists(${NAME.partition}) OR (${[
            `${NAME.expiry} < :cutoff`,
            ...unchanged.map(({ value, placeholder, valuePlaceholder }) =>
              value === null
                ? `(attribute_not_exists(${placeholder}) OR NOT attribute_type(${placeholder}, :string))`
                : `${placeholder} = ${valuePlaceholder}`,
            ),
          ].join(' AND ')})`,
          ExpressionAttributeNames: {
            [NAME.partition]: layout.partition,
            [NAME.expiry]: layout.expiry,
            ...Object.fromEntries(unchanged.map(({ name, placeholder }) => [placeholder, name])),
          },
          ExpressionAttributeValues: {
            ':cutoff': { N: epochSeconds(item.cutoff) },
            ...Object.fromEntries(
              unchanged.flatMap(({ value, valuePlaceholder }) =>
                value === null ? [] : [[valuePlaceholder, { S: value }]],
              ),
            ),
            ...(unchanged.some(({ value }) => value === null) ? { ':string': { S: 'S' } } : {}),
          },
          // Only "was there an item" is used; the old attributes (a credential) are dropped at once.
          ReturnValues: 'ALL_OLD',
        }),
        deadline.sendOptions,
      );
      return { key: item.key, status: response.Attributes ? 'deleted' : 'missing' };
    } catch (error) {
      if (isConditionalCheckFailed(error)) return { key: item.key, status: 'kept' };
      // Cut short by the run's deadline: whether it went is unknown, so its intent stays pending.
      deadline.throwIfPassed('DeleteItem', error);
      return { key: item.key, status: 'failed', error: describeCause(error) };
    }
  }

  /** BatchWriteItem cannot tell a deleted item from one already gone: both are reported `deleted` (done either way). */
  async function deleteInBatches(
    addressed: Array<{ item: EligibleItem; key: DynamoItem }>,
    codec: KeyCodec,
  ): Promise<DeleteOutcome[]> {
    // One request per item: DynamoDB rejects a whole call that names an item twice.
    const unique = new Map(addressed.map(({ key }) => [codec.encode(key), key]));
    const failures = await batchWriteAll(
      client,
      config.table,
      [...unique.values()].map((key) => ({ DeleteRequest: { Key: key } })),
      {
        concurrency: config.deleteConcurrency,
        retry: BATCH_RETRY,
        sleep,
        deadline,
      },
    );
    const failed = new Map(
      failures.map((failure) => [codec.encode(failure.request.DeleteRequest!.Key!), failure.error]),
    );
    return addressed.map(({ item, key }) => {
      const error = failed.get(codec.encode(key));
      return error === undefined
        ? { key: item.key, status: 'deleted' as const }
        : { key: item.key, status: 'failed' as const, error };
    });
  }
}

/** Exact decimal epoch seconds: integer milliseconds / 1000 prints without rounding or exponent. */
function epochSeconds(instant: Date): string {
  return String(instant.getTime() / 1000);
}
