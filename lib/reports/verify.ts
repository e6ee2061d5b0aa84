import type { PolicyConfig } from '../config/schema.ts';
import type { AuditRecord, RunRecord } from '../core/control.ts';
import { durationMs } from '../core/durations.ts';
import type { Cutoffs, Hold, Item } from '../core/types.ts';
import { cutoffFor, holdFor } from '../policy/classify.ts';

/**
 * `retention verify` (pure): "was this deleted, and by what right?" for one key of one policy,
 * from what the store holds now and what the audit trail recorded.
 *
 * - deleted: gone, and a run of this policy deleted it: when, run, rule, cutoff, actor, backup;
 * - held: present and protected by a hold (ids), eligible or not;
 * - unclassified: present, no rule applies (per-purpose retention without a default): kept;
 * - overdue: present and past its cutoff (since when; the last failed attempt, if any);
 * - retained: present and younger than its retention (when it becomes eligible);
 * - absent: not in the store, and no run of this policy ever deleted it.
 */
export type VerifyState = 'deleted' | 'held' | 'retained' | 'overdue' | 'unclassified' | 'absent';

export interface VerifyEvidence {
  policy: Pick<PolicyConfig, 'name'> & {
    backup?: { to: string; keepFor: string } | undefined;
    archive?: { table: string } | undefined;
  };
  key: string;
  /** Cutoffs at the moment of the question (`computedAt`), by the store's clock where it has one. */
  cutoffs: Cutoffs;
  holds: Hold[];
  /** What the store holds now under that key (for rows: by row key or linked file). */
  items: Item[];
  /** The trail of the key and of the rows it names, newest first. */
  records: AuditRecord[];
  /** The run that deleted it, for the policy hash it ran with. */
  deletingRun?: RunRecord | null;
  /** The policy hash of the configuration in force now. */
  currentPolicyHash: string;
}

export interface Verification {
  policy: string;
  key: string;
  state: VerifyState;
  /** The state in one sentence. */
  summary: string;
  /** The item the answer is about (a row found by its linked file has its own key). */
  item?: { key: string; linkedKey?: string; timestamp: string };
  rule?: string;
  cutoff?: string;
  deletedAt?: string;
  runId?: string;
  actor?: string;
  /** Where the copy is, while the policy keeps it, and how to bring it back. */
  backup?: { location: string; restore: string };
  /** The deleting run's policy hash, and whether the configuration changed since. */
  policyHash?: string;
  configChanged?: boolean;
  /** A later restore of the deleted item (it is gone again). */
  restoredAt?: string;
  holds?: Array<{ id: number; key: string; prefix: boolean; reason: string; by: string }>;
  eligibleAt?: string;
  overdueSince?: string;
  overdueSeconds?: number;
  /** The last attempt to delete it, when it did not succeed. */
  lastAttempt?: { runId: string; status: string; error: string | null; at: string };
  attribute?: { name: string; value: string | null };
  /** Other rows linked to the same file. */
  otherItems?: string[];
  /** The file is there compressed, under this key (policies with `compress`): the answer is about it. */
  compressedAs?: string;
}

export function verifyKey(evidence: VerifyEvidence): Verification {
  const { policy, key, items } = evidence;
  const base = { policy: policy.name, key };
  const item = items.find((candidate) => candidate.key === key) ?? items[0];
  if (!item) return gone(evidence, base);
  const others = items.filter((candidate) => candidate !== item).map((candidate) => candidate.key);
  const about = {
    ...base,
    item: {
      key: item.key,
      ...(item.linkedKey !== undefined ? { linkedKey: item.linkedKey } : {}),
      timestamp: item.timestamp.toISOString(),
    },
    ...(others.length > 0 ? { otherItems: others } : {}),
  };
  const holds = holdsOn(item, evidence.holds);
  const applied = cutoffFor(item, evidence.cutoffs);
  if (holds.length > 0) {
    const ids = holds.map((hold) => `#${hold.id}`).join(', ');
    return {
      ...about,
      state: 'held',
      summary: `present and held by hold ${ids}: never deleted while held`,
      holds: holds.map((hold) => ({
        id: hold.id,
        key: hold.key,
        prefix: hold.prefix,
        reason: hold.reason,
        by: hold.createdBy,
      })),
      ...(applied ? { rule: applied.rule, eligibleAt: eligibleAt(item, applied.cutoff, evidence.cutoffs) } : {}),
    };
  }
  if (!applied) {
    const name = evidence.cutoffs.by ?? 'retention';
    const value = name === 'prefix' ? item.key : (item.attributes?.[name] ?? null);
    return {
      ...about,
      state: 'unclassified',
      summary: `present; no retention rule applies to ${name}=${value ?? 'NULL'} and there is no default: kept`,
      attribute: { name, value },
    };
  }
  const since = eligibleAt(item, applied.cutoff, evidence.cutoffs);
  const rule = { rule: applied.rule, cutoff: applied.cutoff.toISOString() };
  if (item.timestamp.getTime() < applied.cutoff.getTime()) {
    const attempt = lastAttempt(evidence.records, item.key);
    const overdueSeconds = (applied.cutoff.getTime() - item.timestamp.getTime()) / 1000;
    const failed = attempt ? `; last attempt ${attempt.status}${attempt.error ? `: ${attempt.error}` : ''}` : '';
    return {
      ...about,
      state: 'overdue',
      summary: `present and past its retention (${applied.rule}) since ${since}${failed}`,
      ...rule,
      overdueSince: since,
      overdueSeconds,
      ...(attempt ? { lastAttempt: attempt } : {}),
    };
  }
  return {
    ...about,
    state: 'retained',
    summary: `present and within its retention (${applied.rule}); eligible after ${since}`,
    ...rule,
    eligibleAt: since,
  };
}

/** Not in the store: deleted by a run of this policy (the newest deletion on record), or never seen. */
function gone(evidence: VerifyEvidence, base: { policy: string; key: string }): Verification {
  const deletion = evidence.records.find(
    (record) => record.action === 'delete' && (record.status === 'deleted' || record.status === 'pending'),
  );
  if (!deletion) {
    const seen = evidence.records.find((record) => record.action === 'delete' && record.status === 'missing');
    const already = seen ? ` (run ${seen.runId} found it already gone when it came to delete it)` : '';
    return { ...base, state: 'absent', summary: `not in the store, and no run of ${base.policy} deleted it${already}` };
  }
  const at = deletion.resolvedAt ?? deletion.createdAt;
  const restore = evidence.records.find(
    (record) => record.action === 'restore' && record.key === deletion.key && record.createdAt > at,
  );
  const ranWith = evidence.deletingRun?.report?.policyHash;
  const backup = backupOf(evidence, deletion, at);
  const pending = deletion.status === 'pending' ? ' (intent still pending: its run crashed or is running)' : '';
  return {
    ...base,
    state: 'deleted',
    summary: `deleted at ${at.toISOString()} by run ${deletion.runId} (${deletion.actor}) under ${deletion.rule}, cutoff ${deletion.cutoff.toISOString()}${pending}`,
    item: {
      key: deletion.key,
      ...(deletion.linkedKey !== undefined ? { linkedKey: deletion.linkedKey } : {}),
      timestamp: deletion.itemTimestamp.toISOString(),
    },
    rule: deletion.rule,
    cutoff: deletion.cutoff.toISOString(),
    deletedAt: at.toISOString(),
    runId: deletion.runId,
    actor: deletion.actor,
    ...(backup ? { backup } : {}),
    ...(ranWith ? { policyHash: ranWith, configChanged: ranWith !== evidence.currentPolicyHash } : {}),
    ...(restore ? { restoredAt: restore.createdAt.toISOString() } : {}),
  };
}

/** Every hold on the item's key or its linked file's (as `classify.itemHold`, all of them). */
function holdsOn(item: Item, holds: Hold[]): Hold[] {
  return holds.filter(
    (hold) =>
      holdFor(item.key, [hold]) !== undefined ||
      (item.linkedKey !== undefined && holdFor(item.linkedKey, [hold]) !== undefined),
  );
}

/** The instant the item is past its cutoff: its timestamp plus the retention the cutoff stands for. */
function eligibleAt(item: Item, cutoff: Date, cutoffs: Cutoffs): string {
  return new Date(item.timestamp.getTime() + (cutoffs.computedAt.getTime() - cutoff.getTime())).toISOString();
}

/** The newest attempt to delete the item that left it in place (failed, kept, abandoned). */
function lastAttempt(records: AuditRecord[], key: string): Verification['lastAttempt'] {
  const attempt = records.find(
    (record) =>
      record.action === 'delete' && record.key === key && ['failed', 'kept', 'abandoned'].includes(record.status),
  );
  if (!attempt) return undefined;
  const at = (attempt.resolvedAt ?? attempt.createdAt).toISOString();
  return { runId: attempt.runId, status: attempt.status, error: attempt.error, at };
}

/** The copy the deleting run made, while the policy still keeps it (backups are pruned after `keepFor`). */
function backupOf(evidence: VerifyEvidence, deletion: AuditRecord, at: Date): Verification['backup'] {
  const { backup, archive } = evidence.policy;
  const restore = `retention restore --run ${deletion.runId} --key ${deletion.key}`;
  if (archive) return { location: `archive table ${archive.table}`, restore };
  if (!backup) return undefined;
  if (at.getTime() < evidence.cutoffs.computedAt.getTime() - durationMs(backup.keepFor)) return undefined;
  return { location: `${backup.to} (run ${deletion.runId})`, restore };
}
