import { type ChainHead, type ChainLink, canonicalText, GENESIS, type StoreAuditChain } from '../../core/chain.ts';
import type { SqlExecutor } from '../../sql/client.ts';

/**
 * The hash chain of `retention.row_audit` (invariant 13; the scheme is core/chain.ts): one chain
 * per policy, its links the batches. The statement that deletes a batch also moves the policy's
 * head row (`retention.row_audit_heads`) and writes the batch with its `seq`, `prev` and `hash`,
 * so a batch and its link commit together or not at all, and concurrent writers of a policy
 * (a sweep, a restore) take turns on the head row's lock.
 *
 * The hash is computed in SQL, by the deleting statement: the batch's 5,000 keys never travel to
 * the client. The canonical text is core/chain.ts's (a JSON array of strings and nulls), rendered
 * by `to_json(text)` (which escapes as `JSON.stringify` does); the arrays enter it as the SHA-256
 * of their binary form (`array_send`: the wire format, independent of time zone and date style,
 * and cheap: measured +1–2 ms per 5,000-row batch, where rendering them as JSON text cost 7–15).
 * `retention audit verify` reads the same fields back as text and renders the text itself.
 */

/** First field of a batch's canonical text: what it encodes, and the version of the encoding. */
const ROW_BATCH_VERSION = 'row_audit/1';

const digest = (array: string) => `encode(sha256(array_send(${array})), 'hex')`;

/** The fields of a batch `a` with link number `seq` (SQL), each as text or NULL, in canonical order. */
function batchFields(a: string, seq: string): string[] {
  return [
    `${a}.policy`,
    `(${seq})::text`,
    `${a}.id::text`,
    `${a}.run_id`,
    `${a}.store`,
    `${a}.actor`,
    `${a}.trigger`,
    `${a}.action`,
    `${a}.status`,
    `${a}.row_count::text`,
    digest(`${a}.keys`),
    digest(`${a}.item_timestamps`),
    digest(`${a}.rules`),
    digest(`${a}.cutoffs`),
    digest(`${a}.rule_of`),
    `${a}.archived_to`,
    digest(`${a}.linked_files`),
    digest(`${a}.linked_file_statuses`),
    `${a}.txid::text`,
    `(extract(epoch FROM ${a}.created_at) * 1000000)::bigint::text`,
  ];
}

/** `canonicalText([ROW_BATCH_VERSION, ...fields])`, in SQL. */
function canonicalSql(a: string, seq: string): string {
  const fields = [`'${JSON.stringify(ROW_BATCH_VERSION)}'`, ...batchFields(a, seq).map(jsonOf)];
  return `'[' || ${fields.join(` || ',' || `)} || ']'`;
}

const jsonOf = (text: string) => `COALESCE(to_json(${text})::text, 'null')`;

/**
 * The CTEs after `audit_batch` (one row, or none, with every column of the batch): the policy's
 * head moved to this batch, and the batch written with its link. A missing head row (it is made
 * at open, and triggers refuse its deletion) leaves the link NULL, which the table's CHECK
 * refuses: the statement fails and nothing is deleted.
 */
export function chainedInsertCtes(columns: string[]): string[] {
  return [
    `audit_head AS (UPDATE retention.row_audit_heads AS h
        SET seq = h.seq + 1, prev = h.hash,
            hash = encode(sha256(convert_to(h.hash || ${canonicalSql('b', 'h.seq + 1')}, 'UTF8')), 'hex')
       FROM audit_batch AS b WHERE h.policy = b.policy RETURNING h.seq, h.prev, h.hash)`,
    `audited AS (INSERT INTO retention.row_audit (${columns.join(', ')}, seq, prev, hash)
       SELECT ${columns.map((column) => `b.${column}`).join(', ')}, h.seq, h.prev, h.hash
         FROM audit_batch AS b LEFT JOIN audit_head AS h ON TRUE)`,
  ];
}

const TRIGGERS = [
  ['row_audit', 'retention.row_audit_refuse_change'],
  ['row_audit_heads', 'retention.row_audit_head_forward_only'],
] as const;

/**
 * The chain's columns, head table and append-only triggers (idempotent, run at every open with
 * the rest of the table's DDL). Batches written before have no link: verify counts them apart.
 * Triggers as for the control store's trail (see control/postgres/migrations.ts): they hold for
 * every role short of the table's owner changing the schema.
 */
export const ROW_AUDIT_CHAIN_DDL = [
  'ALTER TABLE retention.row_audit ADD COLUMN IF NOT EXISTS seq bigint, ADD COLUMN IF NOT EXISTS prev text, ADD COLUMN IF NOT EXISTS hash text',
  'CREATE UNIQUE INDEX IF NOT EXISTS row_audit_chain ON retention.row_audit (policy, seq) WHERE seq IS NOT NULL',
  'CREATE TABLE IF NOT EXISTS retention.row_audit_heads (policy text PRIMARY KEY, seq bigint NOT NULL, prev text NOT NULL, hash text NOT NULL)',
  `DO $$ BEGIN
     IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'row_audit_chained' AND conrelid = 'retention.row_audit'::regclass) THEN
       ALTER TABLE retention.row_audit ADD CONSTRAINT row_audit_chained
         CHECK (seq IS NOT NULL AND prev IS NOT NULL AND hash IS NOT NULL) NOT VALID;
     END IF;
   END $$`,
  `CREATE OR REPLACE FUNCTION retention.row_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     RAISE EXCEPTION 'retention.% is append-only: % refused', TG_TABLE_NAME, TG_OP
       USING HINT = 'the audit trail is append-only; see "Audit integrity" in the README';
   END $$`,
  `CREATE OR REPLACE FUNCTION retention.row_audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'UPDATE' AND NEW.policy = OLD.policy AND NEW.seq > OLD.seq THEN RETURN NEW; END IF;
     RAISE EXCEPTION 'retention.row_audit_heads only moves forward: % refused', TG_OP
       USING HINT = 'the audit trail is append-only; see "Audit integrity" in the README';
   END $$`,
  ...TRIGGERS.map(
    ([table, fn]) => `DO $$ BEGIN
     IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'append_only' AND tgrelid = 'retention.${table}'::regclass) THEN
       CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON retention.${table} FOR EACH ROW EXECUTE FUNCTION ${fn}();
       CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON retention.${table}
         FOR EACH STATEMENT EXECUTE FUNCTION retention.row_audit_refuse_change();
       ALTER TABLE retention.${table} ENABLE ALWAYS TRIGGER append_only;
       ALTER TABLE retention.${table} ENABLE ALWAYS TRIGGER append_only_truncate;
     END IF;
   END $$`,
  ),
];

/** The policy's head row, made once (seq 0) so that the deleting statements only ever update it. */
export async function ensureChainHead(sql: SqlExecutor, policy: string): Promise<void> {
  await sql.query(
    'INSERT INTO retention.row_audit_heads (policy, seq, prev, hash) VALUES ($1, 0, $2, $2) ON CONFLICT (policy) DO NOTHING',
    [policy, GENESIS],
  );
}

/** How many batches `links` reads per statement. */
const LINKS_PER_READ = 1000;

/** The policy's chain as `retention audit verify` and the run history read it. */
export function rowAuditChain(
  withSql: <T>(use: (sql: SqlExecutor) => Promise<T>) => Promise<T>,
  policy: string,
): StoreAuditChain {
  return {
    head: () =>
      withSql(async (sql): Promise<ChainHead> => {
        const rows = await sql.query<{ seq: string; hash: string }>(
          'SELECT seq, hash FROM retention.row_audit_heads WHERE policy = $1',
          [policy],
        );
        return { chain: policy, seq: Number(rows[0]?.seq ?? 0), hash: rows[0]?.hash ?? GENESIS };
      }),
    links: (afterSeq: number, limit: number) =>
      withSql(async (sql): Promise<ChainLink[]> => {
        const fields = batchFields('a', 'a.seq');
        const rows = await sql.query<LinkRow>(
          `SELECT a.seq::text AS link_seq, a.prev, a.hash, a.id::text AS batch_id, a.run_id AS batch_run, a.row_count::text AS batch_rows, a.created_at,
                ${fields.map((field, index) => `${field} AS f${index}`).join(', ')}
           FROM retention.row_audit AS a WHERE a.policy = $1 AND a.seq > $2 ORDER BY a.seq LIMIT $3`,
          [policy, afterSeq, Math.min(limit, LINKS_PER_READ)],
        );
        return rows.map((row) => ({
          seq: Number(row.link_seq),
          prev: row.prev ?? '',
          hash: row.hash ?? '',
          canonical: canonicalText([ROW_BATCH_VERSION, ...fields.map((_, index) => row[`f${index}`] ?? null)]),
          at: row.created_at,
          label: `retention.row_audit#${row.batch_id} (${row.batch_rows} rows${row.batch_run ? `, run ${row.batch_run}` : ''})`,
        }));
      }),
    unchainedBatches: () =>
      withSql(async (sql) => {
        const rows = await sql.query<{ count: string }>(
          'SELECT count(*) AS count FROM retention.row_audit WHERE policy = $1 AND seq IS NULL',
          [policy],
        );
        return Number(rows[0]?.count ?? 0);
      }),
  };
}

/** A batch's link columns, and its canonical fields as `f0`, `f1`, … (text or NULL). */
type LinkRow = { [field: `f${number}`]: string | null } & {
  link_seq: string;
  prev: string | null;
  hash: string | null;
  batch_id: string;
  batch_run: string | null;
  batch_rows: string;
  created_at: Date;
};
