import { randomUUID } from 'node:crypto';
import {
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainEntryKey, REPAIR_AFTER_MS } from '../../lib/control/dynamodb/chain.ts';
import { CONTROL_TTL_ATTRIBUTE, controlTableDefinition } from '../../lib/control/dynamodb/definition.ts';
import { DynamoControlSchema } from '../../lib/control/dynamodb/schema.ts';
import { DynamoControlStore } from '../../lib/control/dynamodb/store.ts';
import type { AuditIntent } from '../../lib/core/control.ts';
import { type Clock, systemClock } from '../../lib/core/types.ts';
import { ConfigError, ControlStoreError, LeaseLostError } from '../../lib/errors.ts';
import { verifyAuditTrails } from '../../lib/reports/auditVerify.ts';
import { startDynalite, type TestDynamo, withholdBatchWrites } from '../support/dynalite.ts';
import { auditChainContract, type Tamper } from './chain-contract.ts';
import { controlStoreContract } from './control-contract.ts';

let dynamo: TestDynamo;

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => dynamo?.stop());

controlStoreContract('DynamoDB (dynalite)', async () => {
  const store = new DynamoControlStore({
    client: dynamo.client(),
    table: dynamo.tableName('control'),
    clock: systemClock,
  });
  return { store, teardown: () => store.close() };
});

auditChainContract('DynamoDB (dynalite)', async () => {
  const client = dynamo.client();
  const table = dynamo.tableName('chains');
  const store = new DynamoControlStore({ client, table, clock: systemClock });
  await store.migrate();
  return { store, tamper: dynamoTamper(client, table), teardown: () => store.close() };
});

/** Plain writes to the table, as anyone allowed to write it could make. */
function dynamoTamper(client: DynamoDBClient, table: string): Tamper {
  const recordKey = async (id: number) => {
    const found = await client.send(
      new QueryCommand({
        TableName: table,
        IndexName: 'gsi4',
        KeyConditionExpression: 'gsi4pk = :id',
        ExpressionAttributeValues: { ':id': { S: `auditid#${id}` } },
      }),
    );
    const { pk, sk } = found.Items![0]!;
    return { pk: pk!, sk: sk! };
  };
  const entry = async (chain: string, seq: number) =>
    (await client.send(new GetItemCommand({ TableName: table, Key: chainEntryKey(chain, seq) }))).Item!;
  return {
    editRecord: async (id, key) => {
      await client.send(
        new UpdateItemCommand({
          TableName: table,
          Key: await recordKey(id),
          UpdateExpression: 'SET #key = :key',
          ExpressionAttributeNames: { '#key': 'key' },
          ExpressionAttributeValues: { ':key': { S: key } },
        }),
      );
    },
    deleteRecord: async (id) => {
      await client.send(new DeleteItemCommand({ TableName: table, Key: await recordKey(id) }));
    },
    swapEntries: async (chain, a, b) => {
      const [first, second] = [await entry(chain, a), await entry(chain, b)];
      const moved = (item: typeof first, seq: number) => ({
        ...item,
        ...chainEntryKey(chain, seq),
        seq: { N: String(seq) },
      });
      await client.send(new PutItemCommand({ TableName: table, Item: moved(second, a) }));
      await client.send(new PutItemCommand({ TableName: table, Item: moved(first, b) }));
    },
    deleteEntry: async (chain, seq) => {
      await client.send(new DeleteItemCommand({ TableName: table, Key: chainEntryKey(chain, seq) }));
    },
  };
}

/** Counts `client`'s calls of one command. */
function countCommands(client: DynamoDBClient, commandName: string): { count: number } {
  const seen = { count: 0 };
  client.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === commandName) seen.count += 1;
      return next(args);
    },
    { step: 'initialize', name: `count${commandName}` },
  );
  return seen;
}

/** A clock the test moves by hand: lease expiry is decided by the injected clock, not the server's. */
function manualClock(start: Date): Clock & { advance(ms: number): void } {
  let now = start.getTime();
  return { now: () => new Date(now), advance: (ms) => (now += ms) };
}

function intent(runId: string, key: string): AuditIntent {
  return {
    runId,
    policy: 'bulk',
    store: 'dynamodb://tokens',
    key,
    itemTimestamp: new Date('2024-01-01T00:00:00Z'),
    rule: 'retention: 1d',
    cutoff: new Date('2024-06-01T00:00:00Z'),
    actor: 'test',
    trigger: 'manual',
    action: 'delete',
  };
}

describe('DynamoDB control store specifics', () => {
  it('parses its config entry', () => {
    expect(DynamoControlSchema.parse({ kind: 'dynamodb', table: 'retention-control', region: 'eu-west-1' })).toEqual({
      kind: 'dynamodb',
      table: 'retention-control',
      region: 'eu-west-1',
    });
    expect(DynamoControlSchema.safeParse({ kind: 'dynamodb', table: 'retention-control', url: 'x' }).success).toBe(
      false,
    );
  });

  it('creates the table as declared, with run history expiring through expiresAt', async () => {
    const client = dynamo.client();
    const table = dynamo.tableName('layout');
    const store = new DynamoControlStore({ client, table, clock: systemClock, runTtlDays: 30 });
    await store.migrate();
    const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
    expect(Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName).sort()).toEqual(
      controlTableDefinition(table)
        .GlobalSecondaryIndexes!.map((index) => index.IndexName)
        .sort(),
    );
    expect(Table?.BillingModeSummary?.BillingMode ?? 'PAY_PER_REQUEST').toBe('PAY_PER_REQUEST');

    const startedAt = new Date('2025-03-01T00:00:00Z');
    await store.startRun({ runId: 'run-ttl', policy: 'p', dryRun: false, startedAt });
    const { Item } = await client.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: 'run#run-ttl' }, sk: { S: 'run' } } }),
    );
    expect(Number(Item?.[CONTROL_TTL_ATTRIBUTE]?.N)).toBe(startedAt.getTime() / 1000 + 30 * 86_400);
    // The lease item must never carry the TTL attribute: DynamoDB deleting it would reset tokens.
    const lease = (await store.acquireLease('p', 'o', 60_000))!;
    const leaseItem = await client.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: 'lease#p' }, sk: { S: 'lease' } } }),
    );
    expect(leaseItem.Item?.[CONTROL_TTL_ATTRIBUTE]).toBeUndefined();
    await store.releaseLease(lease);
    await store.close();
  });

  it('refuses an existing table with another layout', async () => {
    const client = dynamo.client();
    const table = dynamo.tableName('foreign');
    const definition = controlTableDefinition(table);
    await client.send(
      new CreateTableCommand({ ...definition, GlobalSecondaryIndexes: definition.GlobalSecondaryIndexes!.slice(0, 2) }),
    );
    const failure = await new DynamoControlStore({ client, table, clock: systemClock })
      .migrate()
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).issues.map((issue) => issue.message)).toEqual([
      `table ${table}: index gsi3 is missing`,
      `table ${table}: index gsi4 is missing`,
    ]);
  });

  it('decides lease expiry by the injected clock, to the millisecond, and fences the stale holder', async () => {
    const clock = manualClock(new Date('2030-01-01T00:00:00Z'));
    const store = new DynamoControlStore({ client: dynamo.client(), table: dynamo.tableName('clock'), clock });
    await store.migrate();
    const stale = (await store.acquireLease('p', 'run-a', 10_000))!;
    expect(stale.expiresAt).toEqual(new Date('2030-01-01T00:00:10Z'));
    await store.saveCheckpoint(stale, 'run-a', 'cursor-a');

    clock.advance(9_999);
    expect(await store.acquireLease('p', 'run-b', 10_000)).toBeNull();
    clock.advance(1); // expiresAt <= now: free
    const fresh = (await store.acquireLease('p', 'run-b', 10_000))!;
    expect(fresh.token).toBe(stale.token + 1);

    // The takeover kept the checkpoint for the new holder to resume from; the old holder's next
    // batch is refused at its fence check, so it deletes nothing more.
    expect(await store.getCheckpoint('p')).toMatchObject({ cursor: 'cursor-a', runId: 'run-a' });
    await expect(store.saveCheckpoint(stale, 'run-a', 'cursor-a2')).rejects.toBeInstanceOf(LeaseLostError);
    expect(await store.renewLease(stale, 10_000)).toBeNull();
    await store.saveCheckpoint(fresh, 'run-b', 'cursor-b');
    expect(await store.getCheckpoint('p')).toMatchObject({
      cursor: 'cursor-b',
      runId: 'run-b',
      updatedAt: clock.now(),
    });

    // Breaking an already expired lease bumps the token but never extends the expiry.
    clock.advance(60_000);
    expect(await store.breakLease('p')).toBe(true);
    expect(await store.getLease('p')).toEqual({ ...fresh, token: fresh.token + 1 });
    await store.close();
  });

  it('writes intents through retried UnprocessedItems and loses none', async () => {
    const client = dynamo.client();
    const waits: number[] = [];
    const store = new DynamoControlStore({
      client,
      table: dynamo.tableName('unprocessed'),
      clock: systemClock,
      sleep: async (ms) => void waits.push(ms),
    });
    await store.migrate();
    const withheld = withholdBatchWrites(client, { keep: 20, times: 30 });
    const keys = Array.from({ length: 500 }, (_, i) => `k${i}`);
    await store.recordIntents(keys.map((key) => intent('bulk-run', key)));
    expect(withheld.withheld).toBeGreaterThan(50);
    expect(waits.length).toBeGreaterThan(0);
    const pending = await store.pendingIntents('bulk');
    expect(pending.map((record) => record.key).sort()).toEqual([...keys].sort());
    // Ids: unique, one block per batch, in input order.
    expect(pending.map((record) => record.id)).toEqual(Array.from({ length: 500 }, (_, i) => pending[0]!.id + i));
    await store.close();
  });

  it('adds holds with one id reservation and retried UnprocessedItems, losing none', async () => {
    const client = dynamo.client();
    const store = new DynamoControlStore({
      client,
      table: dynamo.tableName('bulk-holds'),
      clock: systemClock,
      sleep: async () => undefined,
    });
    await store.migrate();
    const counterUpdates = countCommands(client, 'UpdateItemCommand');
    const withheld = withholdBatchWrites(client, { keep: 10, times: 10 });
    const added = await store.addHolds(
      Array.from({ length: 100 }, (_, i) => ({
        policy: 'p',
        key: `k${i}`,
        prefix: false,
        reason: 'r',
        createdBy: 'test',
      })),
    );
    expect(counterUpdates.count).toBe(1);
    expect(withheld.withheld).toBeGreaterThan(0);
    expect(added.map((hold) => hold.id)).toEqual(Array.from({ length: 100 }, (_, i) => added[0]!.id + i));
    expect(await store.listHolds('p')).toEqual(added);
    await store.close();
  });

  it('fails recordIntents when writes stay unprocessed, so the batch is never deleted', async () => {
    const client = dynamo.client();
    const waits: number[] = [];
    const store = new DynamoControlStore({
      client,
      table: dynamo.tableName('throttled'),
      clock: systemClock,
      sleep: async (ms) => void waits.push(ms),
    });
    await store.migrate();
    withholdBatchWrites(client, { keep: 0, times: Number.POSITIVE_INFINITY });
    const failure = await store.recordIntents([intent('r', 'a'), intent('r', 'b')]).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ControlStoreError);
    // Two intents and the run's policy marker.
    expect((failure as ControlStoreError).message).toMatch(
      /3 of 3 audit writes failed: still unprocessed after 8 BatchWriteItem attempts/,
    );
    // Seven jittered, growing waits, capped at 5 s.
    expect(waits).toHaveLength(7);
    expect(Math.max(...waits)).toBeLessThanOrEqual(5_000);
    expect(waits[6]!).toBeGreaterThan(waits[0]!);
    await store.close();
  });

  it('re-chains a write interrupted between its records and its entry at the next live run, not before', async () => {
    const client = dynamo.client();
    const clock = manualClock(new Date());
    const store = new DynamoControlStore({
      client,
      table: dynamo.tableName('interrupted'),
      clock,
      sleep: async () => undefined,
    });
    await store.migrate();
    const runId = randomUUID();
    await store.recordIntents([intent(runId, 'chained')]);
    // Each BatchWriteItem call gets one record through: some are written, then the write fails.
    withholdBatchWrites(client, { keep: 1, times: 8 });
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    await expect(store.recordIntents(keys.map((key) => intent(runId, key)))).rejects.toBeInstanceOf(ControlStoreError);
    const written = (await store.audit({ runId, limit: 100 })).length - 1;
    expect(written).toBeGreaterThan(0);

    // Not a tampering: verify says the write awaits its repair.
    const before = await verifyAuditTrails(store, [], { policies: ['bulk'] });
    expect(before).toMatchObject({ intact: true, trails: [expect.objectContaining({ awaitingRepair: [runId] })] });
    // A live run that starts before the writer could still be at work leaves it alone.
    await store.closeCrashedRuns('bulk', randomUUID());
    expect(await store.chains.unrepaired('bulk')).toHaveLength(1);

    clock.advance(REPAIR_AFTER_MS + 1);
    await store.closeCrashedRuns('bulk', randomUUID());
    expect(await store.chains.unrepaired('bulk')).toEqual([]);
    const after = await verifyAuditTrails(store, [], { policies: ['bulk'] });
    expect(after.problems).toEqual([]);
    expect(after.trails[0]).toMatchObject({ records: written + 1, repaired: { [runId]: written + 1 } });
    expect((await store.chains.entries('bulk', 1, 10)).map((entry) => entry.kind)).toEqual(['record', 'repair']);
    await store.close();
  });

  it('rejects two intents for one key in one batch instead of overwriting one', async () => {
    const store = new DynamoControlStore({
      client: dynamo.client(),
      table: dynamo.tableName('dupes'),
      clock: systemClock,
    });
    await store.migrate();
    const runId = randomUUID();
    await expect(store.recordIntents([intent(runId, 'same'), intent(runId, 'same')])).rejects.toBeInstanceOf(
      ControlStoreError,
    );
    expect(await store.audit({ runId, limit: 10 })).toEqual([]);
    await store.close();
  });

  it('keeps a restore event next to the deletion it undoes, and can restore a key twice', async () => {
    const store = new DynamoControlStore({
      client: dynamo.client(),
      table: dynamo.tableName('events'),
      clock: systemClock,
    });
    await store.migrate();
    const runId = randomUUID();
    await store.recordIntents([intent(runId, 'doc')]);
    await store.resolveIntents(runId, [{ key: 'doc', status: 'deleted' }]);
    const restore = { ...intent(runId, 'doc'), action: 'restore' as const, status: 'restored' as const };
    await store.recordEvents([restore]);
    await store.recordEvents([restore]);
    expect((await store.audit({ runId, key: 'doc', limit: 10 })).map((record) => record.action)).toEqual([
      'restore',
      'restore',
      'delete',
    ]);
    await store.close();
  });

  it('resolves by (run, key) in every policy of the run, and addresses keys longer than a sort key holds', async () => {
    const store = new DynamoControlStore({
      client: dynamo.client(),
      table: dynamo.tableName('address'),
      clock: systemClock,
    });
    await store.migrate();
    const runId = randomUUID();
    const longKey = `deep/${'x'.repeat(1_100)}`;
    await store.recordIntents([
      intent(runId, 'shared'),
      { ...intent(runId, 'shared'), policy: 'other' },
      intent(runId, longKey),
    ]);
    await store.resolveIntents(runId, [
      { key: 'shared', status: 'deleted' },
      { key: longKey, status: 'missing' },
    ]);
    const records = await store.audit({ runId, limit: 10 });
    expect(
      records.map((record) => [record.policy, record.key === longKey ? 'long' : record.key, record.status]).sort(),
    ).toEqual([
      ['bulk', 'long', 'missing'],
      ['bulk', 'shared', 'deleted'],
      ['other', 'shared', 'deleted'],
    ]);
    await store.close();
  });

  it('wraps backend errors with the operation and the table', async () => {
    const store = new DynamoControlStore({
      client: dynamo.client(),
      table: dynamo.tableName('absent'),
      clock: systemClock,
    });
    const failure = await store.getLease('p').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ControlStoreError);
    expect((failure as ControlStoreError).context).toMatchObject({ operation: 'getLease', policy: 'p' });
    expect((failure as ControlStoreError).message).toMatch(
      /^control store \(dynamodb:absent-[0-9a-f]+\): getLease failed: /,
    );
    await expect(store.acquireLease('p', 'o', 0)).rejects.toBeInstanceOf(ControlStoreError);
    await store.close();
  });
});
