import {
  type AuditChains,
  type ChainEntry,
  type ChainEntryKind,
  type ChainHead,
  emptyHead,
  GENESIS,
  nextEntry,
} from '../../core/chain.ts';
import type { AuditRecord } from '../../core/control.ts';
import type { SqlExecutor } from '../../sql/client.ts';
import { AUDIT_COLUMNS, type AuditRow, toAuditRecord } from './records.ts';

/**
 * The audit chains in PostgreSQL (invariant 13; the scheme is core/chain.ts). Every write of
 * audit records is one transaction that first locks the head row of each chain it touches
 * (`retention.audit_heads`, one per policy), then changes the records and appends one entry per
 * chain (`retention.audit_chain`) holding the digest of each record's new state. Writers of one
 * chain therefore take turns (a run, a recovery, a stalled run resolving its own intents, a
 * restore), entries are in the order the records changed, and a record never changes without
 * its entry, nor the reverse: no crash can leave them apart.
 */

interface HeadRow {
  chain: string;
  seq: string | number;
  hash: string;
}

const toHead = (row: HeadRow): ChainHead => ({ chain: row.chain, seq: Number(row.seq), hash: row.hash });

/**
 * Locks (and creates, at seq 0) the head row of every chain `source` names (a query returning
 * `chain`), in chain order so that two writers never wait for each other crosswise. The no-op
 * update is what takes the lock on an existing row. `$1` is GENESIS.
 */
function lockHeads(source: string): string {
  return `locked AS (INSERT INTO retention.audit_heads AS h (chain, seq, hash)
      SELECT DISTINCT source.chain, 0, $1::text FROM (${source}) AS source ORDER BY source.chain
      ON CONFLICT (chain) DO UPDATE SET seq = h.seq
      RETURNING h.chain, h.seq, h.hash)`;
}

/** Appends `entries` and moves their chains' heads, after `before` (more CTEs of the same statement). */
async function appendEntries(tx: SqlExecutor, entries: ChainEntry[], before: string[] = [], params: unknown[] = []) {
  const json = JSON.stringify(
    entries.map((entry) => ({
      chain: entry.chain,
      seq: entry.seq,
      kind: entry.kind,
      at: entry.at,
      record_ids: entry.records.map((record) => record.id),
      digests: entry.records.map((record) => record.digest),
      statuses: entry.records.map((record) => record.status),
      prev: entry.prev,
      hash: entry.hash,
    })),
  );
  await tx.query(
    `WITH ${[
      ...before,
      `appended AS (INSERT INTO retention.audit_chain (chain, seq, kind, at, record_ids, digests, statuses, prev, hash)
         SELECT e.chain, e.seq, e.kind, e.at, e.record_ids, e.digests, e.statuses, e.prev, e.hash
           FROM json_to_recordset($${params.length + 1}::json)
             AS e (chain text, seq bigint, kind text, at timestamptz, record_ids bigint[], digests text[], statuses text[],
                   prev text, hash text)
         RETURNING chain, seq, hash)`,
    ].join(',\n')}
     UPDATE retention.audit_heads AS h SET seq = a.seq, hash = a.hash FROM appended AS a WHERE h.chain = a.chain`,
    [...params, json],
  );
}

/** One entry per chain, each following its locked head; records in id order. */
function entriesFor(heads: ChainHead[], kind: ChainEntryKind, at: Date, records: AuditRecord[]): ChainEntry[] {
  const headOf = new Map(heads.map((head) => [head.chain, head]));
  const sorted = [...records].sort((a, b) => a.id - b.id);
  return [...new Set(sorted.map((record) => record.policy))].map((chain) =>
    nextEntry(
      headOf.get(chain) ?? emptyHead(chain),
      kind,
      at,
      sorted.filter((record) => record.policy === chain),
    ),
  );
}

/**
 * New records (intents, events): heads locked, ids drawn and the time read in one statement,
 * so the records' digests are computed here from exactly what is then inserted.
 */
export async function insertChained(
  tx: SqlExecutor,
  build: (ids: number[], now: Date) => { records: AuditRecord[]; insert: { cte: string; params: unknown[] } },
  chains: string[],
  count: number,
): Promise<void> {
  const [locked] = await tx.query<{ heads: HeadRow[]; now: Date; ids: string[] }>(
    `WITH ${lockHeads('SELECT unnest($2::text[]) AS chain')}
     SELECT (SELECT json_agg(locked) FROM locked) AS heads, now() AS now,
            ARRAY(SELECT nextval('retention.audit_id_seq') FROM generate_series(1, $3)) AS ids`,
    [GENESIS, chains, count],
  );
  const { records, insert } = build(locked!.ids.map(Number), locked!.now);
  const entries = entriesFor(locked!.heads.map(toHead), 'record', locked!.now, records);
  // The insert's parameters come first: its CTE numbers them from $1.
  await appendEntries(tx, entries, [insert.cte], insert.params);
}

/**
 * Resolutions: heads of the chains of the records `target` names locked first, then the records
 * updated (`update` returns them whole), then one entry per chain with what actually changed.
 */
export async function resolveChained(
  tx: SqlExecutor,
  target: { chains: string; params: unknown[] },
  update: (now: Date) => Promise<AuditRecord[]>,
): Promise<void> {
  const heads = await tx.query<HeadRow & { now: Date }>(
    `WITH ${lockHeads(target.chains)} SELECT locked.*, now() AS now FROM locked`,
    [GENESIS, ...target.params],
  );
  if (heads.length === 0) return;
  const now = heads[0]!.now;
  const changed = await update(now);
  if (changed.length === 0) return;
  await appendEntries(tx, entriesFor(heads.map(toHead), 'resolve', now, changed));
}

interface EntryRow {
  chain: string;
  seq: string;
  kind: ChainEntryKind;
  at: Date;
  record_ids: string[];
  digests: string[];
  statuses: string[];
  prev: string;
  hash: string;
}

/** The chains as run history and `retention audit verify` read them. */
export function postgresAuditChains(
  sql: SqlExecutor,
  guard: <T>(operation: string, context: Record<string, unknown>, fn: () => Promise<T>) => Promise<T>,
): AuditChains {
  return {
    head: (chain) =>
      guard('chainHead', { chain }, async () => {
        const rows = await sql.query<HeadRow>('SELECT chain, seq, hash FROM retention.audit_heads WHERE chain = $1', [
          chain,
        ]);
        return rows[0] ? toHead(rows[0]) : emptyHead(chain);
      }),
    // Chains with a head, and policies with chained-era records but no head (their records were put there by hand).
    list: () =>
      guard('listChains', {}, async () =>
        (
          await sql.query<HeadRow>(
            `SELECT c.chain, COALESCE(h.seq, 0) AS seq, COALESCE(h.hash, $1) AS hash
               FROM (SELECT chain FROM retention.audit_heads
                     UNION SELECT policy FROM retention.audit WHERE id >= (SELECT min(first_id) FROM retention.audit_chain_start)) AS c
               LEFT JOIN retention.audit_heads AS h USING (chain) ORDER BY c.chain`,
            [GENESIS],
          )
        ).map(toHead),
      ),
    entries: (chain, fromSeq, limit) =>
      guard('chainEntries', { chain }, async () =>
        (
          await sql.query<EntryRow>(
            `SELECT chain, seq, kind, at, record_ids, digests, statuses, prev, hash FROM retention.audit_chain
              WHERE chain = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
            [chain, fromSeq, limit],
          )
        ).map((row) => ({
          chain: row.chain,
          seq: Number(row.seq),
          kind: row.kind,
          at: row.at,
          records: row.record_ids.map((id, index) => ({
            id: Number(id),
            digest: row.digests[index] ?? '',
            status: row.statuses[index] ?? '',
          })),
          prev: row.prev,
          hash: row.hash,
        })),
      ),
    records: (chain, afterId, limit) =>
      guard('chainRecords', { chain }, async () =>
        (
          await sql.query<AuditRow>(
            `SELECT ${AUDIT_COLUMNS} FROM retention.audit WHERE policy = $1 AND id > $2 ORDER BY id LIMIT $3`,
            [chain, afterId, limit],
          )
        ).map(toAuditRecord),
      ),
    firstChainedId: () =>
      guard('firstChainedId', {}, async () => {
        const rows = await sql.query<{ first: string }>(
          'SELECT min(first_id) AS first FROM retention.audit_chain_start',
        );
        return Number(rows[0]?.first ?? 1);
      }),
    unrepaired: async () => [],
  };
}
