import { createHash } from 'node:crypto';

/**
 * The audit trail's hash chains (invariant 13): the one canonical encoding of what is chained,
 * and the link `sha256(previous hash ‖ canonical text)`. Writers (both control stores, the rows
 * store's in-transaction trail) and `retention audit verify` all go through these functions; the
 * rows store renders the same text in SQL (`rowAudit.ts`), which every verify re-renders here.
 *
 * A chain is one policy's records in one trail. Its links are appended, never rewritten: a
 * control store appends one entry per write (the records it wrote, or the records a resolution
 * changed, each as the digest of its whole state then); the rows trail's links are its batches.
 */

/** The `previous hash` of every chain's first link. */
export const GENESIS = '0'.repeat(64);

/** Strings and nulls only: numbers and instants are decimal strings, so SQL can render the same bytes. */
export type CanonicalField = string | null;

/**
 * The canonical text: a compact JSON array (`JSON.stringify`), the first field naming what it
 * encodes and its version (`audit/1`). PostgreSQL's `to_json(text)` escapes exactly as
 * `JSON.stringify` does for every string it can hold, which is what lets SQL render it too.
 */
export function canonicalText(fields: readonly CanonicalField[]): string {
  return JSON.stringify(fields);
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A link's hash. `previous` is always 64 hex characters, so the concatenation is unambiguous. */
export function chainLink(previous: string, canonical: string): string {
  return sha256Hex(previous + canonical);
}

/** Instants as epoch microseconds (PostgreSQL's precision; JavaScript dates have whole milliseconds). */
export function microsField(instant: Date | null): CanonicalField {
  return instant === null ? null : String(BigInt(instant.getTime()) * 1000n);
}

export const numberField = (value: number | null | undefined): CanonicalField =>
  value === null || value === undefined ? null : String(value);

/** Where a chain stands: its last link. `seq` 0 and GENESIS for an empty chain. */
export interface ChainHead {
  chain: string;
  seq: number;
  hash: string;
}

export const emptyHead = (chain: string): ChainHead => ({ chain, seq: 0, hash: GENESIS });

/** What a control store's audit record is, as far as the chain is concerned (AuditRecord has these). */
export interface ChainedAuditRecord {
  id: number;
  runId: string;
  policy: string;
  store: string;
  key: string;
  itemTimestamp: Date;
  size?: number;
  rule: string;
  cutoff: Date;
  actor: string;
  trigger: string;
  action: string;
  status: string;
  createdAt: Date;
  resolvedAt: Date | null;
  error: string | null;
}

/** Every field of the record, the mutable ones (status, resolution time, error) included. */
export function auditRecordDigest(record: ChainedAuditRecord): string {
  return sha256Hex(
    canonicalText([
      'audit/1',
      numberField(record.id),
      record.runId,
      record.policy,
      record.store,
      record.key,
      microsField(record.itemTimestamp),
      numberField(record.size),
      record.rule,
      microsField(record.cutoff),
      record.actor,
      record.trigger,
      record.action,
      record.status,
      microsField(record.createdAt),
      microsField(record.resolvedAt),
      record.error,
    ]),
  );
}

/**
 * `record`: records written (intents, events); `resolve`: records a resolution changed;
 * `repair`: records re-chained after a write that was interrupted before its entry (DynamoDB,
 * which cannot write records and their entry atomically).
 */
export type ChainEntryKind = 'record' | 'resolve' | 'repair';

/**
 * One record in an entry: its id, the digest of its whole state when the entry was written, and
 * its status then (verify ranks a record's chained states by it, see reports/chainCheck.ts).
 */
export interface ChainedRecord {
  id: number;
  digest: string;
  status: string;
}

/** One link of a control store's chain. `prev` repeats the previous link's hash, so a reordering shows as such. */
export interface ChainEntry {
  chain: string;
  seq: number;
  kind: ChainEntryKind;
  at: Date;
  records: ChainedRecord[];
  prev: string;
  hash: string;
}

export function entryCanonical(entry: Pick<ChainEntry, 'chain' | 'seq' | 'kind' | 'at' | 'records'>): string {
  return canonicalText([
    'entry/1',
    entry.chain,
    numberField(entry.seq),
    entry.kind,
    microsField(entry.at),
    ...entry.records.flatMap((record) => [numberField(record.id), record.digest, record.status]),
  ]);
}

/** The entry that follows `head`: the records' digests, in the order given, chained to it. */
export function nextEntry(
  head: ChainHead,
  kind: ChainEntryKind,
  at: Date,
  records: readonly ChainedAuditRecord[],
): ChainEntry {
  const body = {
    chain: head.chain,
    seq: head.seq + 1,
    kind,
    at,
    records: records.map((record) => ({ id: record.id, digest: auditRecordDigest(record), status: record.status })),
  };
  return { ...body, prev: head.hash, hash: chainLink(head.hash, entryCanonical(body)) };
}

/** Records by chain (their policy), in first-seen order: one entry per chain per write. */
export function byChain<R extends { policy: string }>(records: readonly R[]): Map<string, R[]> {
  const chains = new Map<string, R[]>();
  for (const record of records) {
    const list = chains.get(record.policy);
    if (list) list.push(record);
    else chains.set(record.policy, [record]);
  }
  return chains;
}

/**
 * One link as a verifier sees it: the canonical text re-rendered from what is stored now, the
 * hashes as stored. `label` names the link for the operator (`retention.row_audit#812`).
 */
export interface ChainLink {
  seq: number;
  prev: string;
  hash: string;
  canonical: string;
  at: Date;
  label: string;
}

/** A control store's chains, as the run history (heads at finish) and `retention audit verify` read them. */
export interface AuditChains {
  /** The chain's last entry (seq 0 and GENESIS while it has none). */
  head(chain: string): Promise<ChainHead>;
  /** Every chain the store knows of, with its head as stored (PostgreSQL: its head row; DynamoDB: its last entry). */
  list(): Promise<ChainHead[]>;
  /** Entries in seq order from `fromSeq` on, at most `limit`. */
  entries(chain: string, fromSeq: number, limit: number): Promise<ChainEntry[]>;
  /** The chain's records (their `policy` is the chain) in id order after `afterId`, at most `limit`, as now. */
  records(chain: string, afterId: number, limit: number): Promise<ChainedAuditRecord[]>;
  /** Records with a lower id were written before the store had chains (an upgrade): they cannot be verified. */
  firstChainedId(): Promise<number>;
  /** Writes interrupted between their records and their entry, not repaired yet (DynamoDB; never on PostgreSQL). */
  unrepaired(chain: string): Promise<Array<{ at: Date; runIds: string[] }>>;
}

/** A store's own trail's chain (rows: `retention.row_audit` of the policy), links being its batches. */
export interface StoreAuditChain {
  head(): Promise<ChainHead>;
  /** Links in seq order after `afterSeq`, at most `limit`. */
  links(afterSeq: number, limit: number): Promise<ChainLink[]>;
  /** Batches written before the trail had a chain (an upgrade): they cannot be verified. */
  unchainedBatches(): Promise<number>;
}
