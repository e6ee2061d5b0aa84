import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import type { AuditRecord } from '../core/control.ts';
import type { Store } from '../core/store.ts';
import type { Item } from '../core/types.ts';
import { policyHash } from '../engine/start.ts';
import { ConfigError, describeCause, StoreError } from '../errors.ts';
import { computeCutoffs, listingCutoffs } from '../policy/plan.ts';
import { readAuditTrail } from '../reports/auditTrail.ts';
import { type Verification, verifyKey } from '../reports/verify.ts';
import { withOpenStore } from '../stores/registry.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';

export interface VerifyFlags {
  policy?: string[];
  key?: string;
  json?: boolean;
}

export interface VerifyRequest {
  policies: string[];
  key: string;
  json: boolean;
  /** One policy named: the JSON answer is that policy's object, not a list. */
  single: boolean;
}

/** A policy that could not answer: its store (or database) is down, or cannot look the key up. */
export interface Unanswered {
  policy: string;
  key: string;
  state: 'unreachable';
  error: string;
}

/** Checked before the control store opens. Without --policy, every policy answers. */
export function parseVerifyFlags(config: RetentionConfig, flags: VerifyFlags): VerifyRequest {
  if (!flags.key)
    throw ConfigError.single(
      '--key',
      'say which item',
      'e.g. --key docs/contract-1042.pdf (for rows: the row key or its file)',
    );
  const named = flags.policy !== undefined && flags.policy.length > 0;
  const policies = named ? selectPolicies(config, flags.policy, false) : config.policies;
  return {
    policies: policies.map((policy) => policy.name),
    key: flags.key,
    json: flags.json ?? false,
    single: named && policies.length === 1,
  };
}

/**
 * "Was this deleted, and by what right?" per policy: each answers on its own, so a policy whose
 * store is down is reported unreachable while the others answer; the command then exits 1.
 */
export async function verifyCommand(session: Session, request: VerifyRequest): Promise<number> {
  const policies = session.config.policies.filter((policy) => request.policies.includes(policy.name));
  const answers = await Promise.all(policies.map((policy) => verifyIn(session, policy, request.key)));
  if (request.json) {
    session.io.stdout.write(`${JSON.stringify(request.single ? answers[0] : answers, null, 2)}\n`);
  } else {
    for (const answer of answers) session.io.stdout.write(describe(answer));
  }
  const unreachable = answers.filter((answer): answer is Unanswered => answer.state === 'unreachable');
  for (const { policy, error } of unreachable)
    session.io.stderr.write(`error: policy ${policy}: could not answer: ${error}\n`);
  return unreachable.length > 0 ? 1 : 0;
}

async function verifyIn(session: Session, policy: PolicyConfig, key: string): Promise<Verification | Unanswered> {
  try {
    return await withOpenStore(policy, (store) => answerFrom(session, policy, store, key));
  } catch (error) {
    return { policy: policy.name, key, state: 'unreachable', error: describeCause(error) };
  }
}

async function answerFrom(session: Session, policy: PolicyConfig, store: Store, key: string): Promise<Verification> {
  // Database rows are judged by the database's clock, as a run would judge them.
  const now = store.clock ? await store.clock.now() : session.clock.now();
  const find = (wanted: string) => (store.lookup ? store.lookup.find(wanted) : listedFind(store, policy, wanted, now));
  const [found, holds, records] = await Promise.all([
    find(key),
    session.control.listHolds(policy.name),
    trailOf(session, policy.name, store, key),
  ]);
  // A file of a policy that compresses may be there as its .gz (same mtime: the same retention).
  const compressed = found.length === 0 && 'compress' in policy && policy.compress ? await find(`${key}.gz`) : [];
  const items = found.length > 0 ? found : compressed;
  // A row named by its file: the control store keeps the row's records under the row's key.
  const rowKeys = new Set([...items, ...records].map((entry) => entry.key).filter((rowKey) => rowKey !== key));
  const byRow = await Promise.all(
    [...rowKeys].map((rowKey) => session.control.audit({ policy: policy.name, key: rowKey, limit: TRAIL })),
  );
  const all = newestFirst([...records, ...byRow.flat()]);
  const deletion = all.find((record) => record.action === 'delete' && record.status === 'deleted');
  const answer = verifyKey({
    policy,
    key: compressed.length > 0 ? `${key}.gz` : key,
    cutoffs: computeCutoffs(policy.retention, now),
    holds,
    items,
    records: all,
    deletingRun: deletion ? await session.control.getRun(deletion.runId) : null,
    currentPolicyHash: policyHash(policy),
  });
  if (compressed.length === 0) return answer;
  return { ...answer, key, compressedAs: `${key}.gz`, summary: `compressed as ${key}.gz, which is ${answer.summary}` };
}

/** Records read per key: the newest are the ones that decide. */
const TRAIL = 100;

function trailOf(session: Session, policy: string, store: Store, key: string): Promise<AuditRecord[]> {
  return readAuditTrail(session.control, [store], { policy, key, limit: TRAIL });
}

/**
 * One list, newest first. The control store's record of a row does not know the row's file; the
 * rows trail's record of the same deletion does: the file is carried over, so the answer names it.
 */
function newestFirst(records: AuditRecord[]): AuditRecord[] {
  const unique = new Map(records.map((record) => [`${record.source ?? 'control'}#${record.id}`, record]));
  const deletion = (record: AuditRecord) => `${record.runId}\u0000${record.action}\u0000${record.key}`;
  const files = new Map(
    [...unique.values()].flatMap((record) => (record.linkedKey ? [[deletion(record), record.linkedKey]] : [])),
  );
  const at = (record: AuditRecord) => (record.resolvedAt ?? record.createdAt).getTime();
  return [...unique.values()]
    .map((record) => {
      const linkedKey = record.linkedKey ?? files.get(deletion(record));
      return linkedKey ? { ...record, linkedKey } : record;
    })
    .sort((a, b) => at(b) - at(a));
}

/** Items a store without a lookup lists before verify gives up on it. */
const LISTED_ITEMS = 10_000;

/** Stores that cannot look up one key: whether it exists, then its timestamp from a bounded listing. */
async function listedFind(store: Store, policy: PolicyConfig, key: string, now: Date): Promise<Item[]> {
  if (!(await store.present([key])).has(key)) return [];
  const cutoffs = listingCutoffs(policy.retention, now);
  let cursor: string | undefined;
  let listed = 0;
  while (listed < LISTED_ITEMS) {
    const page = await store.scan({ cutoffs, limit: 1_000, ...(cursor !== undefined ? { cursor } : {}) });
    const found = page.items.find((item) => item.key === key);
    if (found) return [found];
    listed += page.items.length;
    if (page.done) return [];
    cursor = page.cursor;
  }
  throw new StoreError(
    `${store.location}: ${key} exists, but is not among the first ${LISTED_ITEMS} items listed, and this store cannot look up one key`,
    { policy: policy.name, key },
  );
}

function describe(answer: Verification | Unanswered): string {
  if (answer.state === 'unreachable') return `${answer.policy}: unreachable: ${answer.error}\n`;
  const lines = [`${answer.policy}: ${answer.state}: ${answer.summary}`];
  if (answer.item && answer.item.key !== answer.key) lines.push(`  row ${answer.item.key} (file ${answer.key})`);
  if (answer.backup) lines.push(`  backup: ${answer.backup.location}; to restore: ${answer.backup.restore}`);
  if (answer.policyHash)
    lines.push(`  policy hash ${answer.policyHash}${answer.configChanged ? ' (the configuration changed since)' : ''}`);
  if (answer.restoredAt) lines.push(`  restored at ${answer.restoredAt}, gone again since`);
  for (const hold of answer.holds ?? []) lines.push(`  hold #${hold.id} by ${hold.by}: ${hold.reason}`);
  return `${lines.join('\n')}\n`;
}
