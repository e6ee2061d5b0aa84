import {
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { type BatchOptions, type DynamoItem, isConditionalCheckFailed } from '../../aws/dynamo.ts';
import type {
  AttentionItem,
  AuditCount,
  AuditCountQuery,
  AuditIntent,
  AuditQuery,
  AuditRecord,
  AuditResolution,
  AuditStatus,
  Checkpoint,
  ControlStore,
  FailureStreakUpdate,
  Lease,
  NewHold,
  PauseState,
  RunRecord,
} from '../../core/control.ts';
import type { Clock, Hold, RunReport } from '../../core/types.ts';
import { ControlStoreError, describeCause, RetentionError, StoreError } from '../../errors.ts';
import { batchContext, holdsContext, leaseContext, leaseLost, positiveTtl } from '../errorContext.ts';
import { DynamoFailureStreaks } from './attention.ts';
import { DynamoAuditTrail } from './audit.ts';
import { countDynamoAudit } from './auditCounts.ts';
import { DynamoAuditChains, REPAIR_AFTER_MS } from './chain.ts';
import {
  HOLDS_PK,
  holdItem,
  keys,
  namesOf,
  num,
  PAUSES_PK,
  pauseItem,
  text,
  toCheckpoint,
  toHold,
  toLease,
  toPause,
} from './items.ts';
import { DynamoRunHistory } from './runs.ts';
import { allocateIds, getItem, migrateControlTable, partitionItems, writeAll } from './table.ts';

/**
 * The control store in one DynamoDB table, for deployments that must not depend on a database
 * connection: a lease is a conditional write, with no session, pool or lock server.
 *
 * Layout (single-table design; all key attributes are strings; ids are zero-padded to 16 digits
 * so that string order is numeric order; every index projects keys only, see table.ts):
 *
 *   item            pk                    sk                     gsi1 (pk / sk)           gsi2 (pk / sk)          gsi3, sparse (pk / sk)   gsi4 (pk)
 *   lease           lease#<policy>        lease
 *   pause           pause                 <scope>
 *   hold            hold                  <id>
 *   id counter      counter               hold|audit
 *   run             run#<runId>           run                    runs#<policy> / <start>  runs / <start>
 *   audit intent    audit#<runId>         intent#<policy>#<key>  audit#<policy> / <id>    auditkey#<key> / <id>   pending#<policy> / <id>  auditid#<id>
 *   audit event     audit#<runId>         event#<id>             audit#<policy> / <id>    auditkey#<key> / <id>                            auditid#<id>
 *   run's policies  auditpolicies#<runId> <policy>
 *   failure streak  attention#<policy>    <key> (attention.ts)
 *
 * (<start> is `<startedAt ISO>#<runId>`.) Lists read one partition: pauses, holds (id order),
 * runs newest first (gsi1 per policy, gsi2 all), audit newest first (gsi1 by policy, gsi2 by key,
 * the base table by run), pending intents oldest first (gsi3).
 *
 * Time: a DynamoDB condition cannot read a server clock, so lease expiry is compared with the
 * injected Clock's value, passed into the condition. Hosts' clocks must agree to well within a
 * lease's ttl (NTP-synced hosts and Lambda are within milliseconds); the fencing token, not the
 * clock, is what stops a stale holder.
 *
 * Leases and fencing: acquire is one conditional UpdateItem (free or expired, `<=` now), which
 * DynamoDB serialises per item: of concurrent acquirers exactly one wins. The token is
 * incremented on every handover and on breakLease; release only expires the lease; the item is
 * never deleted and carries no TTL attribute (lease expiry is `leaseUntil`, not `expiresAt`), so
 * tokens never go back. The checkpoint lives on the lease item: a save is an UpdateItem
 * conditioned on owner and token, so no transaction is needed.
 *
 * Audit sink: items in this same table. The write-ahead rule needs each intent durably stored
 * before the store is touched: BatchWriteItem (25 per call, unprocessed items retried with
 * backoff) returns only once every intent is written, else it throws and nothing is deleted.
 * Intents are keyed by (run, policy, key), so a resolution is one conditional UpdateItem with no
 * lookup (the run's policies, one in practice, are read once per batch), idempotent, and never
 * overwrites an earlier resolution. Rejected: the PostgreSQL audit table (brings back the
 * database connection this backend exists to avoid) and JSONL objects in S3 (immutable: each
 * resolution would be another object, the intents of one batch would need one PUT before and one
 * after, and "pending intents of policy X" would be a listing plus reads).
 * Trade-offs: about 7 write units per deleted item (the record and its 4 index entries, then the
 * resolution and its exit from the pending index); index reads (by policy, by key, pending) are
 * eventually consistent, so an intent written a moment ago may not be listed yet (the records
 * themselves are read consistently); no SQL for ad-hoc questions (export the table to S3 for
 * Athena); audit records have no TTL (how long to keep them is the operator's decision).
 *
 * Audit and hold ids: a counter item each; each batch reserves a block of consecutive ids with
 * one atomic ADD. Ids are unique and increase in write order, like a PostgreSQL bigserial
 * ("newest first" is id order); a failed write leaves a gap. A time-based number was rejected:
 * two writers in the same millisecond collide, and clock skew between hosts would break the order.
 *
 * Run history carries `expiresAt` (epoch seconds, runTtlDays after the run started), the
 * table's TTL attribute: DynamoDB removes old runs itself. The store owns the injected client:
 * `close()` destroys it.
 */
const DEFAULT_RUN_TTL_DAYS = 400;

/** Audit and hold batches: 8 BatchWriteItem calls in flight; unprocessed writes retried for up to ~10 s. */
const BATCH_WRITES: BatchOptions = { concurrency: 8, retry: { attempts: 8, baseDelayMs: 50, maxDelayMs: 5_000 } };

export class DynamoControlStore implements ControlStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly clock: Clock;
  private readonly runs: DynamoRunHistory;
  private readonly auditTrail: DynamoAuditTrail;
  private readonly writes: BatchOptions;
  private readonly streaks: DynamoFailureStreaks;
  readonly chains: DynamoAuditChains;

  /** `sleep`: the wait between retries of unprocessed audit and hold writes (tests pass a fast one). */
  constructor(opts: {
    client: DynamoDBClient;
    table: string;
    clock: Clock;
    runTtlDays?: number;
    sleep?: (ms: number) => Promise<void>;
  }) {
    this.client = opts.client;
    this.table = opts.table;
    this.clock = opts.clock;
    this.runs = new DynamoRunHistory(opts.client, opts.table, opts.runTtlDays ?? DEFAULT_RUN_TTL_DAYS);
    this.writes = { ...BATCH_WRITES, ...(opts.sleep ? { sleep: opts.sleep } : {}) };
    this.chains = new DynamoAuditChains(opts.client, opts.table);
    this.auditTrail = new DynamoAuditTrail(opts.client, opts.table, opts.clock, this.writes, this.chains);
    this.streaks = new DynamoFailureStreaks(opts.client, opts.table, opts.clock, this.writes);
  }

  migrate(): Promise<void> {
    return this.guard('migrate', {}, async () => {
      // Only checks: the health function opens the store with read-only grants. Where the chains
      // start is written by the first audit write instead (DynamoAuditTrail.record).
      await migrateControlTable(this.client, this.table);
    });
  }

  acquireLease(policy: string, owner: string, ttlMs: number): Promise<Lease | null> {
    return this.guard('acquireLease', { policy, owner }, async () => {
      const now = this.clock.now().getTime();
      // `if_not_exists`: the first holder gets token 1; later ones continue from the stored token.
      const item = await this.updateIf({
        Key: keys.lease(policy),
        UpdateExpression:
          'SET #policy = :policy, #owner = :owner, #token = if_not_exists(#token, :zero) + :one, #acquiredAt = :now, #leaseUntil = :until',
        ConditionExpression: 'attribute_not_exists(#pk) OR #leaseUntil <= :now',
        ExpressionAttributeNames: namesOf('policy', 'owner', 'token', 'acquiredAt', 'leaseUntil', 'pk'),
        ExpressionAttributeValues: {
          ':policy': text(policy),
          ':owner': text(owner),
          ':zero': num(0),
          ':one': num(1),
          ':now': num(now),
          ':until': num(now + positiveTtl(ttlMs)),
        },
      });
      return item ? toLease(item) : null;
    });
  }

  renewLease(lease: Lease, ttlMs: number): Promise<Lease | null> {
    return this.guard('renewLease', leaseContext(lease), async () => {
      // The token alone decides (as in PostgreSQL): unchanged means nobody else held it since.
      const item = await this.fencedUnlessPaused(lease, {
        update: 'SET #leaseUntil = :until',
        names: ['leaseUntil'],
        values: { ':until': num(this.clock.now().getTime() + positiveTtl(ttlMs)) },
      });
      return item ? toLease(item) : null;
    });
  }

  releaseLease(lease: Lease): Promise<void> {
    return this.guard('releaseLease', leaseContext(lease), async () => {
      // Expire, never extend: an already expired lease keeps its earlier expiry.
      await this.fenced(lease, {
        update: 'SET #leaseUntil = :now',
        alsoIf: '#leaseUntil > :now',
        names: ['leaseUntil'],
        values: { ':now': num(this.clock.now().getTime()) },
      });
    });
  }

  getLease(policy: string): Promise<Lease | null> {
    return this.guard('getLease', { policy }, async () => {
      const item = await this.get(keys.lease(policy));
      return item ? toLease(item) : null;
    });
  }

  breakLease(policy: string): Promise<boolean> {
    return this.guard('breakLease', { policy }, async () => {
      // An update cannot take a minimum: a live lease is cut to now, an expired one keeps its
      // expiry; both get a new token, since a stuck holder may still try to renew or checkpoint.
      const bump = (expire: boolean) =>
        this.updateIf({
          Key: keys.lease(policy),
          UpdateExpression: expire ? 'SET #token = #token + :one, #leaseUntil = :now' : 'SET #token = #token + :one',
          ConditionExpression: expire ? 'attribute_exists(#pk) AND #leaseUntil > :now' : 'attribute_exists(#pk)',
          ExpressionAttributeNames: namesOf('token', 'pk', ...(expire ? ['leaseUntil'] : [])),
          ExpressionAttributeValues: { ':one': num(1), ...(expire ? { ':now': num(this.clock.now().getTime()) } : {}) },
        });
      return (await bump(true)) !== undefined || (await bump(false)) !== undefined;
    });
  }

  getCheckpoint(policy: string): Promise<Checkpoint | null> {
    return this.guard('getCheckpoint', { policy }, async () => {
      const item = await this.get(keys.lease(policy));
      return item ? toCheckpoint(item) : null;
    });
  }

  saveCheckpoint(lease: Lease, runId: string, cursor: string): Promise<void> {
    return this.guard('saveCheckpoint', { ...leaseContext(lease), runId }, async () => {
      const saved = await this.fencedUnlessPaused(lease, {
        update: 'SET #cursor = :cursor, #checkpointRunId = :runId, #checkpointAt = :now',
        names: ['cursor', 'checkpointRunId', 'checkpointAt'],
        values: { ':cursor': text(cursor), ':runId': text(runId), ':now': num(this.clock.now().getTime()) },
      });
      if (!saved) throw leaseLost(lease, 'saveCheckpoint');
    });
  }

  clearCheckpoint(lease: Lease): Promise<void> {
    return this.guard('clearCheckpoint', leaseContext(lease), async () => {
      const cleared = await this.fencedUnlessPaused(lease, {
        update: 'REMOVE #cursor, #checkpointRunId, #checkpointAt',
        names: ['cursor', 'checkpointRunId', 'checkpointAt'],
      });
      if (!cleared) throw leaseLost(lease, 'clearCheckpoint');
    });
  }

  pause(scope: string, by: string, reason: string): Promise<void> {
    return this.guard('pause', { scope }, async () => {
      await this.client.send(
        new PutItemCommand({ TableName: this.table, Item: pauseItem(scope, by, reason, this.clock.now()) }),
      );
    });
  }

  resume(scope: string): Promise<boolean> {
    return this.guard('resume', { scope }, () => this.deleteExisting(keys.pause(scope)));
  }

  pausedBy(policy: string): Promise<PauseState | null> {
    return this.guard('pausedBy', { policy }, async () => {
      const pause = await this.pauseOf(policy);
      return pause ? toPause(pause) : null;
    });
  }

  /** The pause item that applies: the global one wins when both exist (resuming the policy alone would not unpause it). */
  private async pauseOf(policy: string): Promise<DynamoItem | undefined> {
    const [global, own] = await Promise.all([this.get(keys.pause('*')), this.get(keys.pause(policy))]);
    return global ?? own;
  }

  listPauses(): Promise<PauseState[]> {
    return this.guard('listPauses', {}, async () => {
      const pauses = (await this.partition(PAUSES_PK)).map(toPause);
      return pauses.sort(
        (a, b) => a.at.getTime() - b.at.getTime() || (a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : 0),
      );
    });
  }

  addHold(hold: NewHold): Promise<Hold> {
    return this.guard('addHold', holdsContext([hold]), async () => (await this.putHolds([hold]))[0]!);
  }

  addHolds(holds: NewHold[]): Promise<Hold[]> {
    return this.guard('addHolds', holdsContext(holds), () => this.putHolds(holds));
  }

  listHolds(policy?: string): Promise<Hold[]> {
    return this.guard('listHolds', policy === undefined ? {} : { policy }, async () => {
      // One partition in id order (sort keys are padded ids); holds are few, filtering is local.
      const holds = (await this.partition(HOLDS_PK)).map(toHold);
      return policy === undefined ? holds : holds.filter((hold) => hold.policy === null || hold.policy === policy);
    });
  }

  removeHold(id: number): Promise<boolean> {
    return this.guard('removeHold', { holdId: id }, () => this.deleteExisting(keys.hold(id)));
  }

  startRun(run: { runId: string; policy: string; dryRun: boolean; startedAt: Date }): Promise<void> {
    return this.guard('startRun', { runId: run.runId, policy: run.policy }, () => this.runs.start(run));
  }

  finishRun(report: RunReport): Promise<void> {
    return this.guard('finishRun', { runId: report.runId, policy: report.policy }, () => this.runs.finish(report));
  }

  /**
   * Also re-chains what dead writers left of the policy's audit chain (chain.ts): the lease
   * holder's start is where the policy's crashes are cleaned up.
   */
  closeCrashedRuns(policy: string, exceptRunId: string): Promise<string[]> {
    return this.guard('closeCrashedRuns', { policy }, async () => {
      const now = this.clock.now();
      const closed = await this.runs.closeCrashed(policy, exceptRunId, now);
      await this.chains.repair(policy, now, new Date(now.getTime() - REPAIR_AFTER_MS));
      return closed;
    });
  }

  listRuns(query: { policy?: string; limit: number }): Promise<RunRecord[]> {
    return this.guard('listRuns', query.policy === undefined ? {} : { policy: query.policy }, () =>
      this.runs.list(query),
    );
  }

  getRun(runId: string): Promise<RunRecord | null> {
    return this.guard('getRun', { runId }, () => this.runs.get(runId));
  }

  recordIntents(intents: AuditIntent[]): Promise<void> {
    return this.guard('recordIntents', batchContext(intents), () =>
      this.auditTrail.record(intents.map((intent) => ({ ...intent, status: 'pending' as const }))),
    );
  }

  resolveIntents(runId: string, resolutions: AuditResolution[]): Promise<void> {
    return this.guard('resolveIntents', { runId, count: resolutions.length }, () =>
      this.auditTrail.resolveByKey(runId, resolutions),
    );
  }

  pendingIntents(policy: string, exceptRunId?: string): Promise<AuditRecord[]> {
    return this.guard('pendingIntents', { policy }, () => this.auditTrail.pending(policy, exceptRunId));
  }

  resolveStaleIntents(resolutions: Array<{ id: number; status: Exclude<AuditStatus, 'pending'> }>): Promise<void> {
    return this.guard('resolveStaleIntents', { count: resolutions.length }, () =>
      this.auditTrail.resolveById(resolutions),
    );
  }

  recordEvents(
    events: Array<AuditIntent & { status: Exclude<AuditStatus, 'pending'>; error?: string }>,
  ): Promise<void> {
    return this.guard('recordEvents', batchContext(events), () => this.auditTrail.record(events));
  }

  audit(query: AuditQuery): Promise<AuditRecord[]> {
    return this.guard('audit', { ...query }, () => this.auditTrail.query(query));
  }

  auditCounts(query: AuditCountQuery): Promise<AuditCount[]> {
    return this.guard('auditCounts', { policy: query.policy }, () => countDynamoAudit(this.client, this.table, query));
  }

  noteFailureStreaks(update: FailureStreakUpdate): Promise<void> {
    const context = { policy: update.policy, runId: update.runId, failed: update.failed.length };
    return this.guard('noteFailureStreaks', context, () => this.streaks.note(update));
  }

  attentionItems(policy: string, minFailures: number): Promise<AttentionItem[]> {
    return this.guard('attentionItems', { policy }, () => this.streaks.list(policy, minFailures));
  }

  dismissAttention(policy: string, key: string, by: string, reason: string): Promise<AttentionItem | null> {
    return this.guard('dismissAttention', { policy, key }, () => this.streaks.dismiss(policy, key, by, reason));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private get(key: DynamoItem): Promise<DynamoItem | undefined> {
    return getItem(this.client, this.table, key);
  }

  private async partition(pk: string): Promise<DynamoItem[]> {
    const items: DynamoItem[] = [];
    for await (const item of partitionItems(this.client, this.table, pk)) items.push(item);
    return items;
  }

  /**
   * One atomic ADD reserves the block of ids (as for audit records), then BatchWriteItem writes
   * the holds; it throws unless every one was written (some may have been: holds only protect).
   */
  private async putHolds(holds: NewHold[]): Promise<Hold[]> {
    if (holds.length === 0) return [];
    const firstId = await allocateIds(this.client, this.table, 'hold', holds.length);
    const createdAt = this.clock.now();
    const created: Hold[] = holds.map((hold, index) => ({ id: firstId + index, ...hold, createdAt }));
    const requests = created.map((hold) => ({ PutRequest: { Item: holdItem(hold) } }));
    await writeAll(this.client, this.table, requests, this.writes, 'hold', holdsContext(holds));
    return created;
  }

  /**
   * A fenced update that also reports failure when the policy is paused (how a pause reaches a
   * run in flight, as in PostgreSQL). A condition cannot read the pause items, so they are read
   * alongside the update: a pause written before this call started is seen.
   */
  private async fencedUnlessPaused(
    lease: Lease,
    change: { update: string; names: string[]; values?: DynamoItem },
  ): Promise<DynamoItem | undefined> {
    const [item, paused] = await Promise.all([this.fenced(lease, change), this.pauseOf(lease.policy)]);
    return paused ? undefined : item;
  }

  /** An update of the lease item that applies only while `lease` is current: same owner, same token. */
  private fenced(
    lease: Lease,
    change: { update: string; names: string[]; values?: DynamoItem; alsoIf?: string },
  ): Promise<DynamoItem | undefined> {
    return this.updateIf({
      Key: keys.lease(lease.policy),
      UpdateExpression: change.update,
      ConditionExpression: `#owner = :owner AND #token = :token${change.alsoIf ? ` AND ${change.alsoIf}` : ''}`,
      ExpressionAttributeNames: namesOf('owner', 'token', ...change.names),
      ExpressionAttributeValues: { ':owner': text(lease.owner), ':token': num(lease.token), ...change.values },
    });
  }

  /** The item after the update, or undefined when the condition refused it. */
  private async updateIf(
    input: Omit<UpdateItemCommandInput, 'TableName' | 'ReturnValues'>,
  ): Promise<DynamoItem | undefined> {
    try {
      return (
        await this.client.send(new UpdateItemCommand({ TableName: this.table, ReturnValues: 'ALL_NEW', ...input }))
      ).Attributes;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
  }

  /** True when there was an item to delete. */
  private async deleteExisting(key: DynamoItem): Promise<boolean> {
    const response = await this.client.send(
      new DeleteItemCommand({ TableName: this.table, Key: key, ReturnValues: 'ALL_OLD' }),
    );
    return response.Attributes !== undefined;
  }

  /**
   * Adds the operation and its subject to any failure; our own errors (LeaseLostError, …) pass
   * as they are, except StoreError from the DynamoDB helpers shared with the stores.
   */
  private async guard<T>(operation: string, context: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof RetentionError && !(error instanceof StoreError)) throw error;
      throw new ControlStoreError(
        `control store (dynamodb:${this.table}): ${operation} failed: ${describeCause(error)}`,
        { operation, table: this.table, ...context },
        { cause: error },
      );
    }
  }
}
