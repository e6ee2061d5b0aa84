import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AttributeValue,
  BatchWriteItemCommand,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchWriteAll } from '../../lib/aws/dynamo.ts';
import { parseConfig } from '../../lib/config/load.ts';
import { DynamoControlStore } from '../../lib/control/dynamodb/store.ts';
import { chunks } from '../../lib/core/async.ts';
import type { Store } from '../../lib/core/store.ts';
import type { Cutoffs, EligibleItem } from '../../lib/core/types.ts';
import { systemClock } from '../../lib/core/types.ts';
import { runPolicy } from '../../lib/engine/run.ts';
import { ConfigError } from '../../lib/errors.ts';
import { Logger } from '../../lib/observe/log.ts';
import { isEligible } from '../../lib/policy/classify.ts';
import { ReadPacer } from '../../lib/stores/dynamodb/read.ts';
import { type DynamoTokensStoreConfig, DynamoTokensStoreSchema } from '../../lib/stores/dynamodb/schema.ts';
import { createDynamoTokensStore } from '../../lib/stores/dynamodb/store.ts';
import { startDynalite, type TestDynamo, withholdBatchWrites } from '../support/dynalite.ts';
import {
  CONTRACT_NOW,
  contractCutoffs,
  daysAgo,
  eligibleItems,
  type SeedItem,
  type StoreFixture,
  scanAll,
  storeContract,
} from './store-contract.ts';

let dynamo: TestDynamo;
let client: DynamoDBClient;

beforeAll(async () => {
  dynamo = await startDynalite();
  client = dynamo.client();
});
afterAll(async () => dynamo?.stop());

const epochSeconds = (instant: Date): string => String(instant.getTime() / 1000);

interface TableShape {
  /** Key attribute names and types: `id` (S) alone unless given. */
  partition?: { name: string; type: 'S' | 'N' };
  sort?: { name: string; type: 'S' | 'N' };
  /** An expiry GSI partitioned by `shard`, with these shard values. */
  shards?: string[];
  projection?: 'KEYS_ONLY' | 'ALL';
}

/** A fresh table and what the store's config says about it. */
async function createTokenTable(
  shape: TableShape = {},
): Promise<{ config: DynamoTokensStoreConfig; put(items: Array<Record<string, AttributeValue>>): Promise<void> }> {
  const table = dynamo.tableName('tokens');
  const partition = shape.partition ?? { name: 'id', type: 'S' };
  const definition: CreateTableCommandInput = {
    TableName: table,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: partition.name, AttributeType: partition.type },
      ...(shape.sort ? [{ AttributeName: shape.sort.name, AttributeType: shape.sort.type }] : []),
      ...(shape.shards
        ? [
            { AttributeName: 'shard', AttributeType: 'S' as const },
            { AttributeName: 'expiresAt', AttributeType: 'N' as const },
          ]
        : []),
    ],
    KeySchema: [
      { AttributeName: partition.name, KeyType: 'HASH' },
      ...(shape.sort ? [{ AttributeName: shape.sort.name, KeyType: 'RANGE' as const }] : []),
    ],
    ...(shape.shards
      ? {
          GlobalSecondaryIndexes: [
            {
              IndexName: 'byExpiry',
              KeySchema: [
                { AttributeName: 'shard', KeyType: 'HASH' },
                { AttributeName: 'expiresAt', KeyType: 'RANGE' },
              ],
              Projection: { ProjectionType: shape.projection ?? 'KEYS_ONLY' },
            },
          ],
        }
      : {}),
  };
  await client.send(new CreateTableCommand(definition));
  // dynalite makes a table ACTIVE on its next tick: a busy machine can see it CREATING first.
  while ((await client.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus !== 'ACTIVE')
    await sleep(5);
  const config = DynamoTokensStoreSchema.parse({
    kind: 'dynamodb',
    table,
    key: { partition: partition.name, ...(shape.sort ? { sort: shape.sort.name } : {}) },
    ...(shape.shards ? { index: { name: 'byExpiry', partition: 'shard', values: shape.shards } } : {}),
  });
  return {
    config,
    async put(items) {
      for (const chunk of chunks(items, 25))
        await client.send(
          new BatchWriteItemCommand({ RequestItems: { [table]: chunk.map((Item) => ({ PutRequest: { Item } })) } }),
        );
    },
  };
}

/** Contract fixture over a table keyed by `id`; with shards, each token lands in one of them. */
async function tokensFixture(shape: TableShape): Promise<StoreFixture> {
  const { config, put } = await createTokenTable(shape);
  const key = (id: string) => ({ id: { S: id } });
  return {
    createStore: () => createDynamoTokensStore(config, { client }),
    seed: (items: SeedItem[]) =>
      put(
        items.map((item, index) => ({
          ...key(item.key),
          expiresAt: { N: epochSeconds(item.timestamp) },
          secret: { S: 'x'.repeat(item.size ?? 1) },
          ...(shape.shards ? { shard: { S: shape.shards[index % shape.shards.length]! } } : {}),
        })),
      ),
    exists: async (id) =>
      (await client.send(new GetItemCommand({ TableName: config.table, Key: key(id), ConsistentRead: true }))).Item !==
      undefined,
    // A refresh: the token's expiry moves to `timestamp`.
    async touch(id, timestamp) {
      await client.send(
        new UpdateItemCommand({
          TableName: config.table,
          Key: key(id),
          UpdateExpression: 'SET expiresAt = :e',
          ExpressionAttributeValues: { ':e': { N: epochSeconds(timestamp) } },
        }),
      );
    },
    teardown: async () => undefined,
  };
}

// No backup round trip: tokens are credentials and are never copied (see lib/stores/dynamodb/store.ts).
storeContract('dynamodb tokens, parallel Scan', () => tokensFixture({}), { backup: false, scansCandidatesOnly: true });
storeContract('dynamodb tokens, expiry index', () => tokensFixture({ shards: ['token'] }), {
  backup: false,
  scansCandidatesOnly: true,
});

/** Seeds `{ id, expiresAt }` tokens; `shard` round-robin when the table has an index. */
function tokens(
  entries: Array<[id: string, expiresAt: Date]>,
  shards?: string[],
): Array<Record<string, AttributeValue>> {
  return entries.map(([id, expiresAt], index) => ({
    id: { S: id },
    expiresAt: { N: epochSeconds(expiresAt) },
    ...(shards ? { shard: { S: shards[index % shards.length]! } } : {}),
  }));
}

async function deleteAllEligible(store: Store, cutoffs: Cutoffs = contractCutoffs): Promise<Record<string, string>> {
  const { items } = await scanAll(store);
  const eligible = items
    .map((item) => isEligible(item, cutoffs))
    .filter((item): item is EligibleItem => item !== undefined);
  return Object.fromEntries((await store.delete(eligible)).map((outcome) => [outcome.key, outcome.status]));
}

describe('dynamodb tokens store', () => {
  it('parses the policy store entry with its defaults', () => {
    expect(DynamoTokensStoreSchema.parse({ kind: 'dynamodb', table: 'sessions', key: { partition: 'id' } })).toEqual({
      kind: 'dynamodb',
      table: 'sessions',
      key: { partition: 'id' },
      expiresAttribute: 'expiresAt',
      segments: 4,
      conditional: true,
      deleteConcurrency: 16,
    });
    expect(
      DynamoTokensStoreSchema.safeParse({
        kind: 'dynamodb',
        table: 'sessions',
        key: { partition: 'id' },
        index: { name: 'byExpiry', partition: 'shard', values: [] },
      }).success,
    ).toBe(false);
  });

  it('keeps a token refreshed between scan and delete, and deletes the rest', async () => {
    const { config, put } = await createTokenTable();
    await put(
      tokens([
        ['refreshed', daysAgo(90)],
        ['expired', daysAgo(90)],
      ]),
    );
    const store = createDynamoTokensStore(config, { client });
    const eligible = await eligibleItems(store);
    // The user signs in again: the session's expiry moves a week ahead.
    await client.send(
      new UpdateItemCommand({
        TableName: config.table,
        Key: { id: { S: 'refreshed' } },
        UpdateExpression: 'SET expiresAt = :e',
        ExpressionAttributeValues: { ':e': { N: epochSeconds(new Date(CONTRACT_NOW.getTime() + 7 * 86_400_000)) } },
      }),
    );
    const outcomes = await store.delete([...eligible.values()]);
    expect(Object.fromEntries(outcomes.map((outcome) => [outcome.key, outcome.status]))).toEqual({
      refreshed: 'kept',
      expired: 'deleted',
    });
    expect(await store.present(['refreshed', 'expired'])).toEqual(new Set(['refreshed']));
  });

  it('compares the expiry with the cutoff exactly, to the millisecond', async () => {
    const { config, put } = await createTokenTable();
    const cutoff = new Date('2024-05-01T00:00:00.250Z');
    await put([
      { id: { S: 'just-before' }, expiresAt: { N: '1714521600.249' } },
      { id: { S: 'at-cutoff' }, expiresAt: { N: '1714521600.25' } },
    ]);
    const cutoffs: Cutoffs = {
      computedAt: CONTRACT_NOW,
      rules: [],
      fallback: { retention: '30d', retentionMs: 0, cutoff },
    };
    const store = createDynamoTokensStore(config, { client });
    const forged = (id: string): EligibleItem => ({ key: id, timestamp: daysAgo(90), cutoff, rule: 'retention: 30d' });
    // Even handed both as "eligible", the condition keeps the one at the cutoff.
    expect(await store.delete([forged('just-before'), forged('at-cutoff')])).toEqual(
      expect.arrayContaining([
        { key: 'just-before', status: 'deleted' },
        { key: 'at-cutoff', status: 'kept' },
      ]),
    );
    expect((await store.scan({ cutoffs, limit: 10 })).items).toEqual([]);
  });

  it('keeps a token whose purpose changed since the scan (per-purpose retention)', async () => {
    const { config, put } = await createTokenTable();
    await put([
      { id: { S: 'became-long' }, expiresAt: { N: epochSeconds(daysAgo(10)) }, kind: { S: 'session' } },
      { id: { S: 'unlabelled' }, expiresAt: { N: epochSeconds(daysAgo(10)) } },
      { id: { S: 'session' }, expiresAt: { N: epochSeconds(daysAgo(10)) }, kind: { S: 'session' } },
    ]);
    const cutoffs: Cutoffs = {
      computedAt: CONTRACT_NOW,
      by: 'kind',
      rules: [{ value: 'session', retention: '1d', retentionMs: 86_400_000, cutoff: daysAgo(1) }],
      fallback: { retention: '1d', retentionMs: 86_400_000, cutoff: daysAgo(1) },
    };
    const store = createDynamoTokensStore(config, { client });
    const page = await store.scan({ cutoffs, limit: 10 });
    expect(page.done).toBe(true);
    const { items } = page;
    expect(items.find((item) => item.key === 'session')?.attributes).toEqual({ kind: 'session' });
    expect(items.find((item) => item.key === 'unlabelled')?.attributes).toEqual({ kind: null });
    const eligible = items.map((item) => isEligible(item, cutoffs)!);
    await client.send(
      new UpdateItemCommand({
        TableName: config.table,
        Key: { id: { S: 'became-long' } },
        UpdateExpression: 'SET kind = :k',
        ExpressionAttributeValues: { ':k': { S: 'audit-log' } },
      }),
    );
    await client.send(
      new UpdateItemCommand({
        TableName: config.table,
        Key: { id: { S: 'unlabelled' } },
        UpdateExpression: 'SET kind = :k',
        ExpressionAttributeValues: { ':k': { S: 'audit-log' } },
      }),
    );
    const outcomes = await store.delete(eligible);
    expect(Object.fromEntries(outcomes.map((outcome) => [outcome.key, outcome.status]))).toEqual({
      'became-long': 'kept',
      unlabelled: 'kept',
      session: 'deleted',
    });
  });

  it('round-trips composite keys whose parts contain # and \\', async () => {
    const { config, put } = await createTokenTable({
      partition: { name: 'user', type: 'S' },
      sort: { name: 'device', type: 'N' },
    });
    await put([
      { user: { S: 'a#b\\c' }, device: { N: '7' }, expiresAt: { N: epochSeconds(daysAgo(40)) } },
      { user: { S: 'plain' }, device: { N: '-1.5' }, expiresAt: { N: epochSeconds(daysAgo(40)) } },
    ]);
    const store = createDynamoTokensStore(config, { client });
    const keys = [...(await eligibleItems(store)).keys()].sort();
    expect(keys).toEqual(['a\\#b\\\\c#7', 'plain#-1.5']);
    expect(await store.present([...keys, 'plain#2', 'no-separator', 'plain#not-a-number'])).toEqual(new Set(keys));
    expect(await deleteAllEligible(store)).toEqual({ 'a\\#b\\\\c#7': 'deleted', 'plain#-1.5': 'deleted' });
    const [refused] = await store.delete([
      { key: 'no-separator', timestamp: daysAgo(40), cutoff: daysAgo(30), rule: 'retention: 30d' },
    ]);
    expect(refused).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^refused: "no-separator" is not a key of dynamodb:\/\//),
    });
  });

  it('merges sharded index partitions oldest first and resumes each shard from the cursor', async () => {
    const shards = ['s0', 's1', 's2'];
    const { config, put } = await createTokenTable({ shards });
    const entries = Array.from({ length: 20 }, (_, index): [string, Date] => [
      `t${index}`,
      daysAgo(31 + ((index * 7) % 20)),
    ]);
    await put(tokens(entries, shards));
    const store = createDynamoTokensStore(config, { client });
    expect(store.order).toBe('timestamp');
    const first = await store.scan({ cutoffs: contractCutoffs, limit: 6 });
    const rest = await scanAll(createDynamoTokensStore(config, { client }), 4, first.cursor);
    const times = [...first.items, ...rest.items].map((item) => item.timestamp.getTime());
    expect(times).toEqual(
      entries
        .map(([, expiresAt]) => expiresAt.getTime())
        .sort((a, b) => b - a)
        .reverse(),
    );
    expect(new Set([...first.items, ...rest.items].map((item) => item.key)).size).toBe(20);
  });

  it('stops a page after a bounded number of evaluated items in a sparse table, and still finds everything', async () => {
    const { config, put } = await createTokenTable();
    const live = Array.from({ length: 300 }, (_, index): [string, Date] => [`live-${index}`, daysAgo(-30)]);
    await put(tokens([...live, ['old-1', daysAgo(60)], ['old-2', daysAgo(61)]]));
    const store = createDynamoTokensStore(DynamoTokensStoreSchema.parse({ ...config, segments: 2 }), { client });
    const { items, pages } = await scanAll(store, 1);
    expect(items.map((item) => item.key).sort()).toEqual(['old-1', 'old-2']);
    // 1 candidate per page, 50 evaluated items at most: 302 items need several pages.
    expect(pages).toBeGreaterThanOrEqual(4);
  });

  it('restarts a scan whose cursor was saved under another segment layout', async () => {
    const { config, put } = await createTokenTable();
    await put(tokens(Array.from({ length: 6 }, (_, index): [string, Date] => [`t${index}`, daysAgo(40)])));
    const first = await createDynamoTokensStore(config, { client }).scan({ cutoffs: contractCutoffs, limit: 3 });
    const resized = createDynamoTokensStore(DynamoTokensStoreSchema.parse({ ...config, segments: 3 }), { client });
    expect((await scanAll(resized, 10, first.cursor)).items).toHaveLength(6);
    expect((await scanAll(resized, 10, 'not json')).items).toHaveLength(6);
  });

  it('paces reads by consumed capacity when maxReadCapacityPerSecond is set', async () => {
    const { config, put } = await createTokenTable();
    await put(tokens(Array.from({ length: 40 }, (_, index): [string, Date] => [`t${index}`, daysAgo(40)])));
    const store = createDynamoTokensStore(
      DynamoTokensStoreSchema.parse({ ...config, segments: 1, maxReadCapacityPerSecond: 5 }),
      { client },
    );
    const started = performance.now();
    const { pages } = await scanAll(store, 10);
    // dynalite reports 0.5 units per read of these small items: 100 ms between reads at 5 units/s.
    expect(pages).toBeGreaterThanOrEqual(4);
    expect(performance.now() - started).toBeGreaterThanOrEqual((pages - 1) * 100 - 20);

    const pacer = pacerWithFakeTime(2);
    for (let read = 0; read < 4; read += 1) await pacer.read(3);
    expect(pacer.waits).toEqual([1_500, 1_500, 1_500]);
  });

  describe('BatchWriteItem mode (conditional: false)', () => {
    it('deletes in batches of 25, retrying unprocessed deletes', async () => {
      const { config, put } = await createTokenTable();
      const entries = Array.from({ length: 60 }, (_, index): [string, Date] => [`t${index}`, daysAgo(40)]);
      await put(tokens(entries));
      const batchClient = dynamo.client();
      const withheld = withholdBatchWrites(batchClient, { keep: 10, times: 3 });
      const waits: number[] = [];
      const store = createDynamoTokensStore(DynamoTokensStoreSchema.parse({ ...config, conditional: false }), {
        client: batchClient,
        sleep: async (ms) => void waits.push(ms),
      });
      const outcomes = await deleteAllEligible(store);
      expect(Object.values(outcomes).every((status) => status === 'deleted')).toBe(true);
      expect(Object.keys(outcomes)).toHaveLength(60);
      expect(withheld.withheld).toBeGreaterThan(0);
      expect(waits.length).toBeGreaterThan(0);
      expect((await scanAll(store)).items).toEqual([]);
    });

    it('reports tokens still unprocessed after the last attempt as failed, never as deleted', async () => {
      const { config, put } = await createTokenTable();
      await put(
        tokens([
          ['a', daysAgo(40)],
          ['b', daysAgo(40)],
        ]),
      );
      const batchClient = dynamo.client();
      withholdBatchWrites(batchClient, { keep: 0, times: Number.POSITIVE_INFINITY });
      const store = createDynamoTokensStore(DynamoTokensStoreSchema.parse({ ...config, conditional: false }), {
        client: batchClient,
        sleep: async () => undefined,
      });
      const { items } = await scanAll(store);
      const outcomes = await store.delete(items.map((item) => isEligible(item, contractCutoffs)!));
      expect(outcomes.map(({ key, status }) => ({ key, status })).sort((x, y) => x.key.localeCompare(y.key))).toEqual([
        { key: 'a', status: 'failed' },
        { key: 'b', status: 'failed' },
      ]);
      expect(outcomes[0]!.error).toBe('still unprocessed after 8 BatchWriteItem attempts (throttled)');
      expect(await store.present(['a', 'b'])).toEqual(new Set(['a', 'b']));
    });
  });

  it('retries UnprocessedItems with growing backoff and returns what never got through', async () => {
    const { config } = await createTokenTable();
    const retryClient = dynamo.client();
    withholdBatchWrites(retryClient, { keep: 5, times: Number.POSITIVE_INFINITY });
    const waits: number[] = [];
    const requests = tokens(Array.from({ length: 25 }, (_, index): [string, Date] => [`t${index}`, daysAgo(1)])).map(
      (Item) => ({ PutRequest: { Item } }),
    );
    const failures = await batchWriteAll(retryClient, config.table, requests, {
      concurrency: 1,
      retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 150 },
      sleep: async (ms) => void waits.push(ms),
    });
    // 5 written per attempt: 15 in three attempts, 10 left, two waits in between.
    expect(failures).toHaveLength(10);
    expect(failures[0]!.error).toBe('still unprocessed after 3 BatchWriteItem attempts (throttled)');
    expect(waits).toHaveLength(2);
    expect(waits[0]).toBeGreaterThanOrEqual(50);
    expect(waits[1]).toBeLessThanOrEqual(150);
  });

  it('runs through the engine with the DynamoDB control store: deletes, audits, records the run', async () => {
    const { config, put } = await createTokenTable({ shards: ['token'] });
    const expiredAt = new Date(Date.now() - 3 * 86_400_000);
    await put(
      tokens(
        [
          ['old-a', expiredAt],
          ['old-b', expiredAt],
          ['live', new Date(Date.now() + 86_400_000)],
        ],
        ['token'],
      ),
    );
    const control = new DynamoControlStore({
      client: dynamo.client(),
      table: dynamo.tableName('control'),
      clock: systemClock,
    });
    await control.migrate();
    // The engine is data-class agnostic: a parsed policy supplies name, retention and limits, the store comes in deps.
    const [policy] = parseConfig({
      policies: [
        {
          name: 'sessions',
          class: 'blobs',
          store: { kind: 'fs', root: '/unused' },
          retention: '1d',
          schedule: '0 * * * *',
          limits: { maxDeleteFraction: 1 },
        },
      ],
    }).policies;
    const log = new Logger({ sink: { write: () => undefined }, level: 'error' });
    const store = createDynamoTokensStore(config, { client });

    const report = await runPolicy(
      policy!,
      { trigger: 'manual', dryRun: false, force: false, list: false },
      { control, store, clock: systemClock, log, actor: 'test:dynamo' },
    );

    expect(report).toMatchObject({ status: 'completed', deleted: 2, failed: 0, backlog: 0 });
    expect(await store.present(['old-a', 'old-b', 'live'])).toEqual(new Set(['live']));
    expect(
      (await control.audit({ runId: report.runId, limit: 10 })).map((record) => [record.key, record.status]).sort(),
    ).toEqual([
      ['old-a', 'deleted'],
      ['old-b', 'deleted'],
    ]);
    expect(await control.getRun(report.runId)).toMatchObject({ status: 'completed', report: { deleted: 2 } });
    expect((await control.getLease('sessions'))!.expiresAt.getTime()).toBeLessThanOrEqual(Date.now());
    await control.close();
  });

  describe('open', () => {
    it.each([
      {
        name: 'a missing table',
        shape: undefined,
        override: { table: 'no-such-table' },
        path: 'store.table',
        message: /does not exist/,
      },
      {
        name: 'the wrong key',
        shape: undefined,
        override: { key: { partition: 'token' } },
        path: 'store.key',
        message: /has key \{ partition: "id" \}/,
      },
      {
        name: 'a missing index',
        shape: undefined,
        override: { index: { name: 'byExpiry', partition: 'shard', values: ['a'] } },
        path: 'store.index.name',
        message: /no global secondary index "byExpiry"/,
      },
      {
        name: 'an index on another attribute',
        shape: { shards: ['a'] },
        override: { index: { name: 'byExpiry', partition: 'kind', values: ['a'] } },
        path: 'store.index',
        message: /partition key "kind"/,
      },
    ])('refuses $name with a ConfigError on $path', async ({ shape, override, path, message }) => {
      const { config } = await createTokenTable(shape);
      const error = await createDynamoTokensStore({ ...config, ...override } as DynamoTokensStoreConfig, { client })
        .open()
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues[0]).toMatchObject({ path, message: expect.stringMatching(message) });
    });

    it('refuses per-purpose retention through an index that does not project the attribute', async () => {
      const { config } = await createTokenTable({ shards: ['a'] });
      const store = createDynamoTokensStore(config, { client });
      const cutoffs: Cutoffs = { ...contractCutoffs, by: 'kind', rules: [] };
      await expect(store.scan({ cutoffs, limit: 10 })).rejects.toBeInstanceOf(ConfigError);
    });
  });
});

/** The pacer against a clock that only moves when it sleeps. */
function pacerWithFakeTime(unitsPerSecond: number): { read(units: number): Promise<void>; waits: number[] } {
  let now = 0;
  const waits: number[] = [];
  const pacer = new ReadPacer(
    unitsPerSecond,
    async (ms) => {
      waits.push(ms);
      now += ms;
    },
    () => now,
  );
  return {
    waits,
    read: async (units) => void (await pacer.read(async () => ({ items: [], evaluated: 0, consumedUnits: units }))),
  };
}
