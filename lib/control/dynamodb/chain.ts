import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { type DynamoItem, isConditionalCheckFailed } from '../../aws/dynamo.ts';
import {
  type AuditChains,
  byChain,
  type ChainEntry,
  type ChainEntryKind,
  type ChainedAuditRecord,
  type ChainHead,
  emptyHead,
  nextEntry,
} from '../../core/chain.ts';
import type { AuditRecord } from '../../core/control.ts';
import { ControlStoreError } from '../../errors.ts';
import { auditPartition, indexPartition, instant, namesOf, num, sortableId, text, toAuditRecord } from './items.ts';
import { indexedItems, partitionItems } from './table.ts';

/**
 * The audit chains in the DynamoDB control table (invariant 13; the scheme is core/chain.ts).
 *
 *   item           pk                     sk
 *   chain entry    chain#<chain>          <seq>        ids, state digests and statuses of the records it covers
 *   chain list     chains                 <chain>
 *   chain debt     chaindebt#<chain>      <uuid>       a write in progress: the runs whose records it changes
 *   chain start    chainstart             audit        records with a lower id predate the chains
 *
 * Appending is one conditional PutItem on the next seq (`attribute_not_exists`): of concurrent
 * writers of a chain one wins, the others read the new last entry and try the next seq.
 *
 * DynamoDB cannot write the records and their entry atomically (and dynalite, which the tests
 * run on, has no transactions), so every write goes: debt item, records, entry, debt removed.
 * A writer that dies in between leaves its debt: the next live run of the policy (the lease
 * holder, at its start, `closeCrashedRuns`) re-chains the current state of every record of the
 * runs the debt names in a `repair` entry, once the debt is older than REPAIR_AFTER_MS (no live
 * writer takes that long). Records are never left changed without a later entry; verify lists
 * repaired records, and debts not repaired yet.
 */

/** Digests per entry: an entry item of 1,000 is ~75 KB, well inside DynamoDB's 400 KB. */
const RECORDS_PER_ENTRY = 1000;
/** A debt older than this is a dead writer's: its records are re-chained. */
export const REPAIR_AFTER_MS = 10 * 60_000;
/** Concurrent appenders of one chain retry this often before giving up. */
const APPEND_ATTEMPTS = 50;

const chainPartition = (chain: string) => `chain#${chain}`;
/** Where entry `seq` of `chain` is. */
export const chainEntryKey = (chain: string, seq: number): DynamoItem => ({
  pk: text(chainPartition(chain)),
  sk: text(sortableId(seq)),
});
const debtPartition = (chain: string) => `chaindebt#${chain}`;
const CHAINS_PK = 'chains';
const START_KEY: DynamoItem = { pk: text('chainstart'), sk: text('audit') };

function entryItem(entry: ChainEntry): DynamoItem {
  return {
    ...chainEntryKey(entry.chain, entry.seq),
    chain: text(entry.chain),
    seq: num(entry.seq),
    kind: text(entry.kind),
    at: instant(entry.at),
    recordIds: { L: entry.records.map((record) => num(record.id)) },
    digests: { L: entry.records.map((record) => text(record.digest)) },
    statuses: { L: entry.records.map((record) => text(record.status)) },
    prev: text(entry.prev),
    hash: text(entry.hash),
  };
}

function toEntry(item: DynamoItem): ChainEntry {
  const digests = item.digests?.L ?? [];
  const statuses = item.statuses?.L ?? [];
  return {
    chain: item.chain?.S ?? '',
    seq: Number(item.seq?.N),
    kind: item.kind?.S as ChainEntryKind,
    at: new Date(Number(item.at?.N)),
    records: (item.recordIds?.L ?? []).map((id, index) => ({
      id: Number(id.N),
      digest: digests[index]?.S ?? '',
      status: statuses[index]?.S ?? '',
    })),
    prev: item.prev?.S ?? '',
    hash: item.hash?.S ?? '',
  };
}

export class DynamoAuditChains implements AuditChains {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
  ) {}

  /**
   * Runs `write` (which returns the records it wrote or changed, as stored) between a debt item
   * per chain it may touch and the entries for what it did; the debts go once the entries are in.
   */
  async chained(
    touched: Map<string, Set<string>>,
    kind: ChainEntryKind,
    at: Date,
    write: () => Promise<AuditRecord[]>,
  ): Promise<void> {
    const debts = await Promise.all(
      [...touched].map(async ([chain, runIds]) => {
        const key = { pk: text(debtPartition(chain)), sk: text(randomUUID()) };
        const item = { ...key, chain: text(chain), runIds: { L: [...runIds].map(text) }, at: instant(at) };
        await this.client.send(new PutItemCommand({ TableName: this.table, Item: item }));
        return key;
      }),
    );
    const changed = await write();
    await Promise.all([...byChain(changed)].map(([chain, records]) => this.append(chain, kind, at, records)));
    await Promise.all(debts.map((key) => this.client.send(new DeleteItemCommand({ TableName: this.table, Key: key }))));
  }

  /** Re-chains what dead writers of `chain` left (debts older than `before`); returns how many records. */
  async repair(chain: string, at: Date, before: Date): Promise<number> {
    let repaired = 0;
    for await (const debt of partitionItems(this.client, this.table, debtPartition(chain))) {
      if (Number(debt.at?.N) > before.getTime()) continue;
      const records: AuditRecord[] = [];
      for (const runId of (debt.runIds?.L ?? []).map((value) => value.S ?? '')) {
        for await (const item of partitionItems(this.client, this.table, auditPartition(runId))) {
          if (item.policy?.S === chain && item.id?.N !== undefined) records.push(toAuditRecord(item));
        }
      }
      if (records.length > 0) await this.append(chain, 'repair', at, records);
      await this.client.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: debt.pk!, sk: debt.sk! } }));
      repaired += records.length;
    }
    return repaired;
  }

  /** Appends entries of at most RECORDS_PER_ENTRY records each, records in id order. */
  private async append(chain: string, kind: ChainEntryKind, at: Date, records: AuditRecord[]): Promise<void> {
    const sorted = [...records].sort((a, b) => a.id - b.id);
    for (let start = 0; start < sorted.length; start += RECORDS_PER_ENTRY) {
      await this.appendOne(chain, kind, at, sorted.slice(start, start + RECORDS_PER_ENTRY));
    }
  }

  private async appendOne(chain: string, kind: ChainEntryKind, at: Date, records: AuditRecord[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const head = await this.head(chain);
      if (head.seq === 0) {
        await this.client.send(
          new PutItemCommand({ TableName: this.table, Item: { pk: text(CHAINS_PK), sk: text(chain) } }),
        );
      }
      const entry = nextEntry(head, kind, at, records);
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: entryItem(entry),
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: namesOf('pk'),
          }),
        );
        return;
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
        if (attempt >= APPEND_ATTEMPTS) {
          throw new ControlStoreError(`audit chain ${chain}: seq ${entry.seq} taken ${attempt} times in a row`, {
            chain,
          });
        }
        // Another writer took this seq: read its entry and follow it, after a short random wait.
        await sleep(5 + Math.random() * 20 * Math.min(attempt, 5));
      }
    }
  }

  async head(chain: string): Promise<ChainHead> {
    const response = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: namesOf('pk'),
        ExpressionAttributeValues: { ':pk': text(chainPartition(chain)) },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const last = response.Items?.[0];
    return last ? { chain, seq: Number(last.seq?.N), hash: last.hash?.S ?? '' } : emptyHead(chain);
  }

  async list(): Promise<ChainHead[]> {
    const chains: string[] = [];
    for await (const item of partitionItems(this.client, this.table, CHAINS_PK)) chains.push(item.sk!.S!);
    return Promise.all(chains.map((chain) => this.head(chain)));
  }

  async entries(chain: string, fromSeq: number, limit: number): Promise<ChainEntry[]> {
    const response = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: '#pk = :pk AND #sk >= :from',
        ExpressionAttributeNames: namesOf('pk', 'sk'),
        ExpressionAttributeValues: { ':pk': text(chainPartition(chain)), ':from': text(sortableId(fromSeq)) },
        Limit: limit,
        ConsistentRead: true,
      }),
    );
    return (response.Items ?? []).map(toEntry);
  }

  /** Through the by-policy index (gsi1, ordered by id), each record read consistently. */
  async records(chain: string, afterId: number, limit: number): Promise<ChainedAuditRecord[]> {
    const records: ChainedAuditRecord[] = [];
    for await (const item of indexedItems(this.client, {
      TableName: this.table,
      IndexName: 'gsi1',
      KeyConditionExpression: '#gsi1pk = :partition AND #gsi1sk > :after',
      ExpressionAttributeNames: namesOf('gsi1pk', 'gsi1sk'),
      ExpressionAttributeValues: {
        ':partition': text(indexPartition.auditByPolicy(chain)),
        ':after': text(sortableId(afterId)),
      },
      Limit: Math.min(limit, 100),
    })) {
      records.push(toAuditRecord(item));
      if (records.length >= limit) break;
    }
    return records;
  }

  async firstChainedId(): Promise<number> {
    const item = (
      await this.client.send(new GetItemCommand({ TableName: this.table, Key: START_KEY, ConsistentRead: true }))
    ).Item;
    return Number(item?.firstId?.N ?? 1);
  }

  /** At the first audit write (a writer's grants): records written from now on are chained; the ids before are not. Set once. */
  async markStart(lastId: number): Promise<void> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { ...START_KEY, firstId: num(lastId + 1) },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: namesOf('pk'),
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }

  async unrepaired(chain: string): Promise<Array<{ at: Date; runIds: string[] }>> {
    const debts: Array<{ at: Date; runIds: string[] }> = [];
    for await (const debt of partitionItems(this.client, this.table, debtPartition(chain))) {
      debts.push({ at: new Date(Number(debt.at?.N)), runIds: (debt.runIds?.L ?? []).map((value) => value.S ?? '') });
    }
    return debts;
  }
}
