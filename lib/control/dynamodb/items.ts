import { createHash } from 'node:crypto';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { DynamoItem } from '../../aws/dynamo.ts';
import type {
  AuditIntent,
  AuditRecord,
  AuditStatus,
  Checkpoint,
  Lease,
  PauseState,
  RunRecord,
} from '../../core/control.ts';
import type { Hold, RunReport } from '../../core/types.ts';

/**
 * Item shapes of the DynamoDB control table (see the layout in dynamo.ts) and their mapping to
 * the ControlStore types. Instants are epoch milliseconds (N), exact round trips of a Date;
 * only `expiresAt`, the TTL attribute, is epoch seconds, because DynamoDB TTL reads seconds.
 */
export const text = (value: string): AttributeValue => ({ S: value });
export const num = (value: number): AttributeValue => ({ N: String(value) });
export const bool = (value: boolean): AttributeValue => ({ BOOL: value });
export const instant = (value: Date): AttributeValue => num(value.getTime());

/**
 * `#name` placeholders for every attribute an expression names. Always used, not only for
 * reserved words (owner, status, key, size, …): one rule instead of a word list to keep current.
 */
export function namesOf(...attributes: string[]): Record<string, string> {
  return Object.fromEntries(attributes.map((attribute) => [`#${attribute}`, attribute]));
}

function textOf(item: DynamoItem, name: string): string {
  const value = item[name]?.S;
  if (value === undefined) throw new Error(`control item ${describeKey(item)} has no string attribute "${name}"`);
  return value;
}

function numberOf(item: DynamoItem, name: string): number {
  const value = item[name]?.N;
  if (value === undefined) throw new Error(`control item ${describeKey(item)} has no number attribute "${name}"`);
  return Number(value);
}

const dateOf = (item: DynamoItem, name: string): Date => new Date(numberOf(item, name));
const optionalDate = (item: DynamoItem, name: string): Date | null =>
  item[name]?.N === undefined ? null : dateOf(item, name);
const describeKey = (item: DynamoItem): string => `${item.pk?.S ?? '?'}/${item.sk?.S ?? '?'}`;

/** Ids as fixed-width strings, so that string order (sort keys) is numeric order. */
export const sortableId = (id: number): string => String(id).padStart(16, '0');

/**
 * Policy names are kebab-case (no `#`), so `<policy>#<key>` is unambiguous. Item keys can be up
 * to 1 KiB (S3) but a whole sort key holds 1 KiB: long keys are addressed by their digest.
 */
function intentSortKey(policy: string, key: string): string {
  return Buffer.byteLength(key) <= 800
    ? `intent#${policy}#${key}`
    : `intent#${policy}#sha256:${createHash('sha256').update(key).digest('hex')}`;
}

export type CounterName = 'hold' | 'audit';

export const keys = {
  lease: (policy: string): DynamoItem => ({ pk: text(`lease#${policy}`), sk: text('lease') }),
  pause: (scope: string): DynamoItem => ({ pk: text(PAUSES_PK), sk: text(scope) }),
  hold: (id: number): DynamoItem => ({ pk: text(HOLDS_PK), sk: text(sortableId(id)) }),
  counter: (name: CounterName): DynamoItem => ({ pk: text('counter'), sk: text(name) }),
  run: (runId: string): DynamoItem => ({ pk: text(`run#${runId}`), sk: text('run') }),
  /** Intents are addressed by (run, policy, key): a resolution needs no lookup. */
  intent: (runId: string, policy: string, key: string): DynamoItem => ({
    pk: text(auditPartition(runId)),
    sk: text(intentSortKey(policy, key)),
  }),
  /** Which policies a run recorded intents for (one, in practice): resolutions come by run and key. */
  runPolicy: (runId: string, policy: string): DynamoItem => ({
    pk: text(runPoliciesPartition(runId)),
    sk: text(policy),
  }),
  /** Already-resolved events (restores) are addressed by id: a key may be restored more than once. */
  event: (runId: string, id: number): DynamoItem => ({
    pk: text(auditPartition(runId)),
    sk: text(`event#${sortableId(id)}`),
  }),
};

export const PAUSES_PK = 'pause';
export const HOLDS_PK = 'hold';
export const auditPartition = (runId: string): string => `audit#${runId}`;
export const runPoliciesPartition = (runId: string): string => `auditpolicies#${runId}`;

/** Index partitions (gsi1…gsi4, see dynamo.ts). */
export const indexPartition = {
  auditByPolicy: (policy: string) => `audit#${policy}`,
  auditByKey: (key: string) => `auditkey#${key}`,
  pendingByPolicy: (policy: string) => `pending#${policy}`,
  auditById: (id: number) => `auditid#${id}`,
  runsByPolicy: (policy: string) => `runs#${policy}`,
  allRuns: 'runs',
};

export function toLease(item: DynamoItem): Lease {
  return {
    policy: textOf(item, 'policy'),
    owner: textOf(item, 'owner'),
    token: numberOf(item, 'token'),
    expiresAt: dateOf(item, 'leaseUntil'),
  };
}

/** The checkpoint lives on the lease item (so a save can be conditioned on the token); absent = none. */
export function toCheckpoint(item: DynamoItem): Checkpoint | null {
  if (item.cursor?.S === undefined) return null;
  return {
    policy: textOf(item, 'policy'),
    cursor: textOf(item, 'cursor'),
    runId: textOf(item, 'checkpointRunId'),
    updatedAt: dateOf(item, 'checkpointAt'),
  };
}

export function pauseItem(scope: string, by: string, reason: string, at: Date): DynamoItem {
  return { ...keys.pause(scope), scope: text(scope), pausedBy: text(by), reason: text(reason), pausedAt: instant(at) };
}

export function toPause(item: DynamoItem): PauseState {
  return {
    scope: textOf(item, 'scope'),
    by: textOf(item, 'pausedBy'),
    reason: textOf(item, 'reason'),
    at: dateOf(item, 'pausedAt'),
  };
}

export function holdItem(hold: Hold): DynamoItem {
  return {
    ...keys.hold(hold.id),
    id: num(hold.id),
    // Absent, not NULL: a global hold simply has no policy.
    ...(hold.policy === null ? {} : { policy: text(hold.policy) }),
    key: text(hold.key),
    prefix: bool(hold.prefix),
    reason: text(hold.reason),
    createdBy: text(hold.createdBy),
    createdAt: instant(hold.createdAt),
  };
}

export function toHold(item: DynamoItem): Hold {
  return {
    id: numberOf(item, 'id'),
    policy: item.policy?.S ?? null,
    key: textOf(item, 'key'),
    prefix: item.prefix?.BOOL === true,
    reason: textOf(item, 'reason'),
    createdBy: textOf(item, 'createdBy'),
    createdAt: dateOf(item, 'createdAt'),
  };
}

/**
 * The attributes a run keeps from its first write on: identity, both history indexes (sort
 * key: start time then run id, as the PostgreSQL order) and the TTL that expires old history.
 */
export function runIdentity(
  run: { runId: string; policy: string; dryRun: boolean; startedAt: Date },
  ttlDays: number,
): DynamoItem {
  const startOrder = text(`${run.startedAt.toISOString()}#${run.runId}`);
  return {
    runId: text(run.runId),
    policy: text(run.policy),
    dryRun: bool(run.dryRun),
    startedAt: instant(run.startedAt),
    gsi1pk: text(indexPartition.runsByPolicy(run.policy)),
    gsi1sk: startOrder,
    gsi2pk: text(indexPartition.allRuns),
    gsi2sk: startOrder,
    expiresAt: num(Math.floor(run.startedAt.getTime() / 1000) + ttlDays * 86_400),
  };
}

/** DynamoDB items hold 400 KB; a report listing every key (`--list`) can be larger. */
const MAX_REPORT_BYTES = 300_000;

/** The report as stored: whole, or without its key list when that would not fit (the CLI printed it). */
export function storedReport(report: RunReport): string {
  const whole = JSON.stringify(report);
  if (Buffer.byteLength(whole) <= MAX_REPORT_BYTES) return whole;
  const { items: _tooLarge, ...summary } = report;
  return JSON.stringify(summary);
}

export function toRun(item: DynamoItem): RunRecord {
  const report = item.report?.S;
  return {
    runId: textOf(item, 'runId'),
    policy: textOf(item, 'policy'),
    status: textOf(item, 'status') as RunRecord['status'],
    dryRun: item.dryRun?.BOOL === true,
    startedAt: dateOf(item, 'startedAt'),
    finishedAt: optionalDate(item, 'finishedAt'),
    report: report === undefined ? null : (JSON.parse(report) as RunReport),
  };
}

export type AuditEntry = AuditIntent & { status: AuditStatus; error?: string };

/**
 * One audit record. Pending entries are write-ahead intents, keyed by (run, policy, key) and listed in
 * the sparse pending index (gsi3) until resolved; any other status is recorded resolved.
 */
export function auditItem(entry: AuditEntry, id: number, at: Date): DynamoItem {
  const pending = entry.status === 'pending';
  const order = text(sortableId(id));
  return {
    ...(pending ? keys.intent(entry.runId, entry.policy, entry.key) : keys.event(entry.runId, id)),
    id: num(id),
    runId: text(entry.runId),
    policy: text(entry.policy),
    store: text(entry.store),
    key: text(entry.key),
    itemTimestamp: instant(entry.itemTimestamp),
    ...(entry.size === undefined ? {} : { size: num(entry.size) }),
    rule: text(entry.rule),
    cutoff: instant(entry.cutoff),
    actor: text(entry.actor),
    trigger: text(entry.trigger),
    action: text(entry.action),
    status: text(entry.status),
    createdAt: instant(at),
    ...(pending
      ? { gsi3pk: text(indexPartition.pendingByPolicy(entry.policy)), gsi3sk: order }
      : { resolvedAt: instant(at) }),
    ...(entry.error === undefined ? {} : { error: text(entry.error) }),
    gsi1pk: text(indexPartition.auditByPolicy(entry.policy)),
    gsi1sk: order,
    gsi2pk: text(indexPartition.auditByKey(entry.key)),
    gsi2sk: order,
    gsi4pk: text(indexPartition.auditById(id)),
  };
}

export function toAuditRecord(item: DynamoItem): AuditRecord {
  return {
    id: numberOf(item, 'id'),
    runId: textOf(item, 'runId'),
    policy: textOf(item, 'policy'),
    store: textOf(item, 'store'),
    key: textOf(item, 'key'),
    itemTimestamp: dateOf(item, 'itemTimestamp'),
    ...(item.size?.N === undefined ? {} : { size: numberOf(item, 'size') }),
    rule: textOf(item, 'rule'),
    cutoff: dateOf(item, 'cutoff'),
    actor: textOf(item, 'actor'),
    trigger: textOf(item, 'trigger') as AuditRecord['trigger'],
    action: textOf(item, 'action') as AuditRecord['action'],
    status: textOf(item, 'status') as AuditStatus,
    createdAt: dateOf(item, 'createdAt'),
    resolvedAt: optionalDate(item, 'resolvedAt'),
    error: item.error?.S ?? null,
  };
}
