import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { PolicyConfig } from '../config/schema.ts';
import type { ControlStore, Lease } from '../core/control.ts';
import { toInputIssues } from '../core/issues.ts';
import type { Store } from '../core/store.ts';
import type { RunReport } from '../core/types.ts';
import { clip, type InputIssue, LeaseLostError } from '../errors.ts';
import type { RunMonitor } from '../observe/sentry.ts';
import { type InventoryRow, inventoryShardStore, rowItem, type ShardRows, shardRows } from '../stores/s3/inventory.ts';
import { SHARD_FAILED_ERROR, SHARD_RETRIED_ERROR } from './inventoryMap.ts';
import type { Invocation } from './payload.ts';
import { type HandlerResult, isErrorResult } from './result.ts';

/**
 * One shard of an S3 Inventory, as the deployment's Distributed Map hands it to the blobs
 * function (serverless/inventoryMap.ts builds the Task's payload): `{ policy, shard: { manifest:
 * { bucket, key }, id, items } }`, `items` the rows ItemBatcher put in the batch, exactly as
 * ItemReader read them. Everything is checked before anything opens: the manifest must be under
 * the policy's `store.inventory`, every row of the policy's bucket with a key and a date it can
 * read, or the whole shard is refused (`bad_payload`) and nothing is touched. A row outside the
 * policy's prefixes or include/exclude is not refused: an inventory covers a bucket, a policy a
 * scope; it is counted (`outOfScope`) and never a candidate.
 */

/** ItemBatcher's MaxItemsPerBatch is 1,000 (inventoryMap.ts); far past it is not a batch of ours. */
const MAX_SHARD_ITEMS = 10_000;
/** A batch of hostile rows is refused naming this many of them (and how many more). */
const MAX_ISSUES_SHOWN = 20;
const ID = /^[\w.:@+/-]{1,200}$/;

const Text = z.string({ error: 'must be a string, as ItemReader passes every inventory column' });
const Row = z.object({ Bucket: Text, Key: Text, LastModifiedDate: Text }).catchall(Text);

const ShardPayload = z.strictObject({
  policy: z.string().min(1, { error: 'must name a policy' }),
  /** Report what the shard would delete; delete nothing. */
  dryRun: z.boolean({ error: 'must be true or false' }).optional(),
  shard: z.strictObject({
    manifest: z.strictObject({ bucket: z.string().min(1), key: z.string().min(1) }),
    /** The child execution's name: on every log line of the shard's run, never part of the lease. */
    id: z.string().regex(ID, { error: 'must be 1 to 200 letters, digits or . _ : @ + / -' }),
    items: z
      .array(Row)
      .min(1, { error: 'must hold the batch of inventory rows' })
      .max(MAX_SHARD_ITEMS, { error: `must hold at most ${MAX_SHARD_ITEMS} rows (ItemBatcher sends 1,000)` }),
  }),
});

export interface InventoryShard {
  id: string;
  manifest: { bucket: string; key: string };
  rows: InventoryRow[];
}

/** A shard's invocation: the run's options as for any invocation, and the shard. */
export interface ShardInvocation extends Invocation {
  trigger: 'inventory';
  shard: InventoryShard;
}

export function isShardInvocation(invocation: Invocation): invocation is ShardInvocation {
  return invocation.trigger === 'inventory';
}

export type ParsedShard = { ok: true; invocation: ShardInvocation } | { ok: false; issues: InputIssue[] };

export function isShardEvent(event: unknown): boolean {
  return typeof event === 'object' && event !== null && !Array.isArray(event) && 'shard' in event;
}

export function parseShard(event: unknown): ParsedShard {
  const parsed = ShardPayload.safeParse(event, { reportInput: true });
  if (!parsed.success) return { ok: false, issues: toInputIssues(parsed.error, 'payload') };
  const { policy, dryRun, shard } = parsed.data;
  const invocation: ShardInvocation = {
    policy,
    trigger: 'inventory',
    dryRun: dryRun ?? false,
    force: false,
    list: false,
    continuation: null,
    shard: { id: shard.id, manifest: shard.manifest, rows: shard.items },
  };
  return { ok: true, invocation };
}

/** The shard checked against its policy: its items, or the issues that refuse it (nothing touched). */
export function shardOf(policy: PolicyConfig, shard: InventoryShard): { rows: ShardRows } | { issues: InputIssue[] } {
  const s3 = policy.class === 'blobs' && policy.store.kind === 's3' ? policy.store : undefined;
  const inventory = s3?.inventory;
  if (!s3 || !inventory)
    return {
      issues: [
        {
          path: 'payload.policy',
          message: `policy "${policy.name}" has no store.inventory: its shards would come from no inventory of its own`,
          fix: 'set store.inventory on an s3 policy, or invoke it without "shard"',
        },
      ],
    };
  const issues: InputIssue[] = [];
  const { bucket, key } = shard.manifest;
  if (bucket !== inventory.bucket || !key.startsWith(inventory.prefix) || !key.endsWith('/manifest.json'))
    issues.push({
      path: 'payload.shard.manifest',
      message: `s3://${clip(bucket)}/${clip(key)} is not a manifest.json under s3://${inventory.bucket}/${inventory.prefix}`,
      fix: "start the state machine with a manifest of the policy's store.inventory",
    });
  shard.rows.forEach((row, index) => {
    const at = `payload.shard.items[${index}]`;
    if (row.Bucket !== s3.bucket)
      issues.push({
        path: `${at}.Bucket`,
        message: `${JSON.stringify(clip(row.Bucket ?? ''))} is not the policy's bucket ${s3.bucket}`,
        fix: "use an inventory of the policy's bucket",
      });
    const read = rowItem(row);
    if ('problem' in read)
      issues.push({ path: at, message: read.problem, fix: 'pass the rows as ItemReader read them' });
  });
  if (issues.length > MAX_ISSUES_SHOWN) {
    const more = issues.length - MAX_ISSUES_SHOWN;
    issues.splice(MAX_ISSUES_SHOWN, more, {
      path: 'payload.shard.items',
      message: `and ${more} more problems`,
      fix: 'fix the rows above first',
    });
  }
  return issues.length > 0 ? { issues } : { rows: shardRows(shard.rows, s3) };
}

/**
 * The shard's own lease (and checkpoint) name: the policy, then a digest of the manifest and the
 * shard's rows. The same batch retried (a Lambda retry, a redriven execution) takes the same lease
 * and resumes from its checkpoint; shards of one execution hold different leases and run at once.
 */
export function shardLeaseName(policy: string, shard: InventoryShard): string {
  // Every row's key, in scope or not: two shards of one manifest never share a lease.
  const digest = createHash('sha256').update(`${shard.manifest.bucket}/${shard.manifest.key}\n`);
  for (const row of shard.rows) digest.update(`${row.Key}\n`);
  return `${policy}/inventory/${digest.digest('hex').slice(0, 24)}`;
}

/**
 * The control store as one shard's run sees it. Lease and checkpoint go under the shard's name;
 * everything else (history, audit, holds, pauses) stays the policy's. Three calls change:
 * - renewal and fenced checkpoint writes also ask the *policy's* pause (the store checks the
 *   lease's name, here the shard's), so a pause of the policy stops every shard before its next
 *   batch (invariant 8);
 * - recovery resolves only pending intents of this shard's keys (an earlier attempt of this shard,
 *   or a crashed run of the policy): a sibling shard's intents are its own, in flight;
 * - no run is closed as crashed: a shard cannot tell a sibling still running from a dead one;
 * - a shard does not start while the policy's own lease is held (a listing run).
 */
export function shardControl(
  control: ControlStore,
  policy: string,
  leaseName: string,
  keys: Set<string>,
): ControlStore {
  const named = (name: string) => (name === policy ? leaseName : name);
  const paused = async () => (await control.pausedBy(policy)) !== null;
  const refuseIfPaused = async (lease: Lease) => {
    if (await paused()) throw new LeaseLostError(`policy ${policy} is paused`, { policy, token: lease.token });
  };
  let blockedBy: Lease | null = null;
  const overrides: Partial<ControlStore> = {
    async acquireLease(name, owner, ttlMs) {
      const lease = await control.acquireLease(named(name), owner, ttlMs);
      if (!lease || name !== policy) return lease;
      // A listing run of the policy (`retention run`) may be deleting these keys: the shard waits
      // (skipped_locked, retried). Both instants are the control store's clock: the shard lease was
      // granted until its now + ttl.
      const holder = await control.getLease(policy);
      if (!holder || holder.expiresAt.getTime() <= lease.expiresAt.getTime() - ttlMs) return lease;
      await control.releaseLease(lease);
      blockedBy = holder;
      return null;
    },
    getLease: async (name) => (name === policy && blockedBy ? blockedBy : control.getLease(named(name))),
    breakLease: (name) => control.breakLease(named(name)),
    getCheckpoint: (name) => control.getCheckpoint(named(name)),
    renewLease: async (lease, ttlMs) => ((await paused()) ? null : control.renewLease(lease, ttlMs)),
    saveCheckpoint: async (lease, runId, cursor) => {
      await refuseIfPaused(lease);
      return control.saveCheckpoint(lease, runId, cursor);
    },
    clearCheckpoint: async (lease) => {
      await refuseIfPaused(lease);
      return control.clearCheckpoint(lease);
    },
    closeCrashedRuns: async () => [],
    // A shard's pass covers its keys only: it must not end the streaks of keys in other shards.
    noteFailureStreaks: (update) => control.noteFailureStreaks({ ...update, wholePass: false }),
    pendingIntents: async (name, exceptRunId) =>
      (await control.pendingIntents(name, exceptRunId)).filter((record) => keys.has(record.key)),
  };
  return new Proxy(control, {
    get(target, property, receiver) {
      const override = overrides[property as keyof ControlStore];
      if (override !== undefined) return override;
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The store and control store a shard's run goes through. */
export function shardDeps(
  policy: PolicyConfig,
  shard: InventoryShard,
  rows: ShardRows,
  deps: { store: Store; control: ControlStore },
): { store: Store; control: ControlStore; leaseName: string } {
  const leaseName = shardLeaseName(policy.name, shard);
  const keys = new Set(rows.items.map((item) => item.key));
  return {
    store: inventoryShardStore(deps.store, rows),
    control: shardControl(deps.control, policy.name, leaseName, keys),
    leaseName,
  };
}

/**
 * What the Distributed Map makes of a shard's end: Step Functions reads a Lambda's thrown error
 * name. `RetentionShardUnfinished` (the budget ran out, or another attempt of the same shard holds
 * its lease) is retried by the Task, and the retry resumes from the shard's checkpoint;
 * `RetentionShardFailed` (a failed run, a safety limit, a pause, a refused payload) is not, and
 * with ToleratedFailurePercentage 0 it stops the whole map: an operator looks first.
 */
export class ShardError extends Error {
  constructor(
    override readonly name: typeof SHARD_RETRIED_ERROR | typeof SHARD_FAILED_ERROR,
    message: string,
  ) {
    super(message);
  }
}

/** A completed shard's report is the Task's result; anything else (a refusal too) is thrown as a ShardError. */
export function shardResult(result: HandlerResult): RunReport {
  if (isErrorResult(result)) throw new ShardError(SHARD_FAILED_ERROR, `shard refused: ${result.error.message}`);
  const report = result;
  const what = `inventory shard of policy ${report.policy}: run ${report.runId} ended ${report.status}`;
  if (report.status === 'completed') return report;
  if (report.status === 'skipped_locked' || (report.status === 'partial' && report.stopReason === 'budget'))
    throw new ShardError(SHARD_RETRIED_ERROR, what);
  const why = report.stopReason ? ` (${report.stopReason})` : '';
  throw new ShardError(SHARD_FAILED_ERROR, `${what}${why}`);
}

/**
 * Sentry for a shard: SLA events and errors as for any run, but no cron check-in. The policy's
 * monitor expects one run per schedule slot; an execution has up to 10^6 shards, none on a schedule.
 */
export function shardMonitor(monitor: RunMonitor): RunMonitor {
  return {
    checkIn: () => ({ finish: () => undefined }),
    reportSla: (report) => monitor.reportSla(report),
    captureError: (error, tags) => monitor.captureError(error, tags),
    flush: (timeoutMs) => monitor.flush(timeoutMs),
  };
}
