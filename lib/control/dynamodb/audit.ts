import {
  type DynamoDBClient,
  paginateScan,
  QueryCommand,
  UpdateItemCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { type BatchOptions, type DynamoItem, isConditionalCheckFailed } from '../../aws/dynamo.ts';
import { mapConcurrent } from '../../core/async.ts';
import type { AuditQuery, AuditRecord, AuditResolution, AuditStatus } from '../../core/control.ts';
import type { Clock } from '../../core/types.ts';
import { ControlStoreError } from '../../errors.ts';
import type { DynamoAuditChains } from './chain.ts';
import {
  type AuditEntry,
  auditItem,
  auditPartition,
  indexPartition,
  instant,
  keys,
  namesOf,
  runPoliciesPartition,
  text,
  toAuditRecord,
} from './items.ts';
import { allocateIds, getItem, indexedItems, indexPartitionQuery, partitionItems, writeAll } from './table.ts';

type ResolvedStatus = Exclude<AuditStatus, 'pending'>;

/** UpdateItem calls in flight while resolving a batch. */
const RESOLVE_CONCURRENCY = 32;

/**
 * The audit trail as items of the control table (the choice is explained in dynamo.ts).
 * Writes are BatchWriteItem (25 per call); each resolution is one conditional UpdateItem, since
 * only a record still `pending` may change (a resolution never overwrites an earlier one).
 */
export class DynamoAuditTrail {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
    private readonly clock: Clock,
    private readonly batch: BatchOptions,
    private readonly chains: DynamoAuditChains,
  ) {}

  /**
   * Returns only once every record is written: the write-ahead rule needs all intents stored
   * before the store is touched, so a partial write throws and nothing gets deleted.
   */
  /** Whether this process has made sure the chains' start is recorded (see `markStart`). */
  private startMarked = false;

  async record(entries: AuditEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const intentPolicies = distinctIntentPolicies(entries);
    const firstId = await allocateIds(this.client, this.table, 'audit', entries.length);
    // Records with lower ids were written before the chains (an upgrade): said once, by a writer.
    if (!this.startMarked) {
      await this.chains.markStart(firstId - 1);
      this.startMarked = true;
    }
    const at = this.clock.now();
    const items = entries.map((entry, index) => auditItem(entry, firstId + index, at));
    const requests: WriteRequest[] = [
      ...items.map((item) => ({ PutRequest: { Item: item } })),
      ...intentPolicies.map(([runId, policy]) => ({ PutRequest: { Item: keys.runPolicy(runId, policy) } })),
    ];
    await this.chains.chained(touchedBy(entries), 'record', at, async () => {
      await writeAll(this.client, this.table, requests, this.batch, 'audit', {
        runId: entries[0]!.runId,
        policy: entries[0]!.policy,
      });
      return items.map(toAuditRecord);
    });
  }

  /**
   * Resolves by (run, key) like PostgreSQL: every pending intent of the run with that key, in
   * each policy the run recorded intents for (one, unless a caller mixes policies in a run).
   */
  async resolveByKey(runId: string, resolutions: AuditResolution[]): Promise<void> {
    if (resolutions.length === 0) return;
    const policies: string[] = [];
    for await (const marker of partitionItems(this.client, this.table, runPoliciesPartition(runId)))
      policies.push(marker.sk!.S!);
    const at = this.clock.now();
    const updates = policies.flatMap((policy) => resolutions.map((resolution) => ({ policy, resolution })));
    const touched = new Map(policies.map((policy) => [policy, new Set([runId])]));
    await this.chains.chained(touched, 'resolve', at, async () =>
      resolved(
        await mapConcurrent(updates, RESOLVE_CONCURRENCY, ({ policy, resolution }) =>
          this.resolve(keys.intent(runId, policy, resolution.key), resolution.status, at, resolution.error, OWN_RUN),
        ),
      ),
    );
  }

  /** Rare (crash recovery): each id is first located through gsi4, then resolved like any intent. */
  async resolveById(resolutions: Array<{ id: number; status: ResolvedStatus }>): Promise<void> {
    const at = this.clock.now();
    const located = await mapConcurrent(resolutions, RESOLVE_CONCURRENCY, async ({ id, status }) => {
      const found = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'gsi4',
          KeyConditionExpression: '#gsi4pk = :id',
          ExpressionAttributeNames: namesOf('gsi4pk'),
          ExpressionAttributeValues: { ':id': text(indexPartition.auditById(id)) },
        }),
      );
      const address = found.Items?.[0];
      if (!address?.pk || !address.sk) return undefined;
      // The index holds keys only: the record itself says which chain (policy) and run it is in.
      const key = { pk: address.pk, sk: address.sk };
      const record = await getItem(this.client, this.table, key);
      const [policy, run] = [record?.policy?.S, record?.runId?.S];
      return policy === undefined || run === undefined ? undefined : { key, status, policy, run };
    });
    const targets = located.filter((target) => target !== undefined);
    const touched = new Map<string, Set<string>>();
    for (const { policy, run } of targets) touched.set(policy, (touched.get(policy) ?? new Set()).add(run));
    await this.chains.chained(touched, 'resolve', at, async () =>
      resolved(
        await mapConcurrent(targets, RESOLVE_CONCURRENCY, ({ key, status }) =>
          this.resolve(key, status, at, undefined, RECOVERY),
        ),
      ),
    );
  }

  /**
   * Oldest first (id order), from the sparse pending index. The index is eventually consistent:
   * an intent written a moment ago may be missing (the next run's recovery finds it); the
   * records themselves are read consistently, so a resolved one never comes back as pending.
   */
  async pending(policy: string, exceptRunId?: string): Promise<AuditRecord[]> {
    const records: AuditRecord[] = [];
    for await (const item of indexedItems(
      this.client,
      indexPartitionQuery(this.table, 'gsi3', indexPartition.pendingByPolicy(policy), 'oldest first'),
    )) {
      const record = toAuditRecord(item);
      if (record.status === 'pending' && record.runId !== exceptRunId) records.push(record);
    }
    return records;
  }

  /**
   * Newest first (id order). Reads the narrowest source: the run's partition, then the key's, then
   * the policy's; the other filters (action, status, time) are tested on each record read.
   */
  async query(query: AuditQuery): Promise<AuditRecord[]> {
    const { runId, policy, key, limit } = query;
    const matches = (record: AuditRecord) =>
      (runId === undefined || record.runId === runId) &&
      (policy === undefined || record.policy === policy) &&
      (key === undefined || record.key === key) &&
      matchesFilters(record, query);
    if (runId !== undefined || (policy === undefined && key === undefined)) {
      // A run's records sit in one partition in key order (unfiltered: anywhere): read all, order by id.
      const all: AuditRecord[] = [];
      for await (const item of runId !== undefined
        ? partitionItems(this.client, this.table, auditPartition(runId))
        : this.allAuditItems()) {
        const record = toAuditRecord(item);
        if (matches(record)) all.push(record);
      }
      return all.sort((a, b) => b.id - a.id).slice(0, limit);
    }
    const newest: AuditRecord[] = [];
    if (limit <= 0) return newest;
    const [index, partition] =
      key !== undefined
        ? (['gsi2', indexPartition.auditByKey(key)] as const)
        : (['gsi1', indexPartition.auditByPolicy(policy!)] as const);
    for await (const item of indexedItems(
      this.client,
      indexPartitionQuery(this.table, index, partition, 'newest first', limit),
    )) {
      const record = toAuditRecord(item);
      if (!matches(record)) continue;
      newest.push(record);
      if (newest.length >= limit) break;
    }
    return newest;
  }

  /** No filter at all: a full table scan (the CLI always passes one; the interface allows none). */
  private async *allAuditItems(): AsyncGenerator<DynamoItem> {
    for await (const page of paginateScan(
      { client: this.client },
      {
        TableName: this.table,
        FilterExpression: 'begins_with(#pk, :audit)',
        ExpressionAttributeNames: namesOf('pk'),
        ExpressionAttributeValues: { ':audit': text(auditPartition('')) },
        ConsistentRead: true,
      },
    )) {
      yield* page.Items ?? [];
    }
  }

  /**
   * Only a record in one of the `from` statuses changes; resolving takes it out of the pending
   * index (gsi3). Returns the record as changed, or nothing when the condition refused it.
   */
  private async resolve(
    key: DynamoItem,
    status: ResolvedStatus,
    at: Date,
    error: string | undefined,
    from: Condition,
  ): Promise<DynamoItem | undefined> {
    const withError = error !== undefined;
    try {
      const response = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression: `SET #status = :status, #resolvedAt = :at${withError ? ', #error = :error' : ''} REMOVE #gsi3pk, #gsi3sk`,
          ConditionExpression: from.expression,
          ExpressionAttributeNames: namesOf(
            'status',
            'resolvedAt',
            'gsi3pk',
            'gsi3sk',
            ...(withError ? ['error'] : []),
          ),
          ExpressionAttributeValues: {
            ':status': text(status),
            ...from.values,
            ':at': instant(at),
            ...(withError ? { ':error': text(error) } : {}),
          },
          // The record as it now is: its new state is what the chain's entry covers.
          ReturnValues: 'ALL_NEW',
        }),
      );
      return response.Attributes;
    } catch (failure) {
      // Resolved already (a concurrent recovery), or no such intent in this policy: nothing to change.
      if (!isConditionalCheckFailed(failure)) throw failure;
      return undefined;
    }
  }
}

/** Action, status and the time the record was last written (resolved, else created), as PostgreSQL filters them. */
function matchesFilters(record: AuditRecord, query: AuditQuery): boolean {
  const at = (record.resolvedAt ?? record.createdAt).getTime();
  return (
    (query.action === undefined || record.action === query.action) &&
    (query.status === undefined || record.status === query.status) &&
    (query.since === undefined || at >= query.since.getTime()) &&
    (query.until === undefined || at < query.until.getTime())
  );
}

/** The records the resolutions changed (those a condition refused are not). */
function resolved(items: Array<DynamoItem | undefined>): AuditRecord[] {
  return items.filter((item) => item !== undefined).map(toAuditRecord);
}

/** The chains (policies) a batch of new records goes to, with their runs. */
function touchedBy(entries: AuditEntry[]): Map<string, Set<string>> {
  const touched = new Map<string, Set<string>>();
  for (const entry of entries) touched.set(entry.policy, (touched.get(entry.policy) ?? new Set()).add(entry.runId));
  return touched;
}

interface Condition {
  expression: string;
  values: DynamoItem;
}

/**
 * A run resolving its own intents also overwrites `abandoned`: a run that took over after this
 * one stalled found the item present and said so, then this one deleted it. The record must say
 * what happened (the deletion), not what a recovery guessed.
 */
const OWN_RUN: Condition = {
  expression: '#status IN (:pending, :abandoned)',
  values: { ':pending': text('pending'), ':abandoned': text('abandoned') },
};
/** A recovery never overwrites a resolution. */
const RECOVERY: Condition = { expression: '#status = :pending', values: { ':pending': text('pending') } };

/**
 * The (run, policy) pairs of the intents in `entries`. An intent is addressed by (run, policy,
 * key), so two intents for one address would be one record: the engine never sends that (a run
 * scans each key once), and if it ever did, failing beats losing an audit record to an overwrite.
 */
function distinctIntentPolicies(entries: AuditEntry[]): Array<[runId: string, policy: string]> {
  const addresses = new Set<string>();
  const pairs = new Map<string, [string, string]>();
  for (const entry of entries) {
    if (entry.status !== 'pending') continue;
    const address = JSON.stringify([entry.runId, entry.policy, entry.key]);
    if (addresses.has(address)) {
      throw new ControlStoreError(`two intents for key "${entry.key}" in one batch of run ${entry.runId}`, {
        runId: entry.runId,
        policy: entry.policy,
        key: entry.key,
      });
    }
    addresses.add(address);
    pairs.set(JSON.stringify([entry.runId, entry.policy]), [entry.runId, entry.policy]);
  }
  return [...pairs.values()];
}
