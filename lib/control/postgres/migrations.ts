import type { SqlClient } from '../../sql/client.ts';
import { AUDIT_COUNTS_INDEX } from './auditCounts.ts';

/**
 * The control schema, as versioned migrations. A migration is applied once, in order, and
 * recorded in `retention.schema_migrations`; never edit a released one, append a new version.
 */
interface Migration {
  version: number;
  name: string;
  statements: string[];
}

const APPEND_ONLY_HINT = 'the audit trail is append-only; see "Audit integrity" in the README';

/**
 * The audit trail is append-only for everyone who does not change the schema (invariant 13):
 * triggers, not grants, because the embedded store has one role, a superuser that grants do not
 * bind, and anyone who can run the CLI can connect as it. `ENABLE ALWAYS` makes them fire under
 * `session_replication_role = replica` too, so only DDL (disabling or dropping a trigger, which
 * takes the owner, and shows) gets past them; the hash chains catch whatever does.
 */
const APPEND_ONLY = [
  `CREATE FUNCTION retention.refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     RAISE EXCEPTION 'retention.% is append-only: % refused', TG_TABLE_NAME, TG_OP USING HINT = '${APPEND_ONLY_HINT}';
   END $$`,
  // The one change a record has: its resolution (pending → an outcome; abandoned → what its own run did).
  `CREATE FUNCTION retention.audit_resolution_only() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'UPDATE' AND OLD.status IN ('pending', 'abandoned')
        AND ROW(NEW.id, NEW.run_id, NEW.policy, NEW.store, NEW.key, NEW.item_timestamp, NEW.size, NEW.rule, NEW.cutoff,
                NEW.actor, NEW.trigger, NEW.action, NEW.created_at)
            IS NOT DISTINCT FROM
            ROW(OLD.id, OLD.run_id, OLD.policy, OLD.store, OLD.key, OLD.item_timestamp, OLD.size, OLD.rule, OLD.cutoff,
                OLD.actor, OLD.trigger, OLD.action, OLD.created_at) THEN
       RETURN NEW;
     END IF;
     RAISE EXCEPTION 'retention.audit is append-only: % of record % refused (only a pending or abandoned record is resolved)',
       TG_OP, OLD.id USING HINT = '${APPEND_ONLY_HINT}';
   END $$`,
  `CREATE FUNCTION retention.audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'UPDATE' AND NEW.chain = OLD.chain AND NEW.seq >= OLD.seq THEN RETURN NEW; END IF;
     RAISE EXCEPTION 'retention.audit_heads only moves forward: % refused', TG_OP USING HINT = '${APPEND_ONLY_HINT}';
   END $$`,
  ...appendOnlyTriggers('audit', 'retention.audit_resolution_only'),
  ...appendOnlyTriggers('audit_chain', 'retention.refuse_audit_change'),
  ...appendOnlyTriggers('audit_chain_start', 'retention.refuse_audit_change'),
  ...appendOnlyTriggers('audit_heads', 'retention.audit_head_forward_only'),
];

function appendOnlyTriggers(table: string, rowFunction: string): string[] {
  return [
    `CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON retention.${table} FOR EACH ROW EXECUTE FUNCTION ${rowFunction}()`,
    `CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON retention.${table} FOR EACH STATEMENT EXECUTE FUNCTION retention.refuse_audit_change()`,
    `ALTER TABLE retention.${table} ENABLE ALWAYS TRIGGER append_only`,
    `ALTER TABLE retention.${table} ENABLE ALWAYS TRIGGER append_only_truncate`,
  ];
}

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'control tables',
    statements: [
      // Released leases are expired, never deleted: the row keeps the fencing token, so a later
      // holder always gets a higher one than any zombie still carrying an old lease.
      `CREATE TABLE retention.leases (
        policy text PRIMARY KEY,
        owner text NOT NULL,
        token bigint NOT NULL,
        acquired_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      )`,
      `CREATE TABLE retention.checkpoints (
        policy text PRIMARY KEY,
        cursor text NOT NULL,
        run_id text NOT NULL,
        updated_at timestamptz NOT NULL
      )`,
      `CREATE TABLE retention.pauses (
        scope text PRIMARY KEY,
        paused_by text NOT NULL,
        reason text NOT NULL,
        paused_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE retention.holds (
        id serial PRIMARY KEY,
        policy text,
        key text NOT NULL,
        prefix boolean NOT NULL,
        reason text NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX holds_policy ON retention.holds (policy)`,
      `CREATE TABLE retention.runs (
        run_id text PRIMARY KEY,
        policy text NOT NULL,
        status text NOT NULL,
        dry_run boolean NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        report jsonb
      )`,
      `CREATE INDEX runs_policy_started ON retention.runs (policy, started_at DESC)`,
      `CREATE INDEX runs_started ON retention.runs (started_at DESC)`,
      `CREATE TABLE retention.audit (
        id bigserial PRIMARY KEY,
        run_id text NOT NULL,
        policy text NOT NULL,
        store text NOT NULL,
        key text NOT NULL,
        item_timestamp timestamptz NOT NULL,
        size bigint,
        rule text NOT NULL,
        cutoff timestamptz NOT NULL,
        actor text NOT NULL,
        trigger text NOT NULL,
        action text NOT NULL,
        status text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        resolved_at timestamptz,
        error text
      )`,
      `CREATE INDEX audit_run_key ON retention.audit (run_id, key)`,
      `CREATE INDEX audit_pending ON retention.audit (policy, status) WHERE status = 'pending'`,
      `CREATE INDEX audit_policy_key ON retention.audit (policy, key)`,
    ],
  },
  {
    version: 2,
    name: 'audit chains, append-only audit',
    statements: [
      // One entry per write per chain (chain.ts): the ids, state digests and statuses of the
      // records it wrote or changed, `prev` repeating the previous entry's hash.
      `CREATE TABLE retention.audit_chain (
        chain text NOT NULL,
        seq bigint NOT NULL,
        kind text NOT NULL,
        at timestamptz NOT NULL,
        record_ids bigint[] NOT NULL,
        digests text[] NOT NULL,
        statuses text[] NOT NULL,
        prev text NOT NULL,
        hash text NOT NULL,
        PRIMARY KEY (chain, seq)
      )`,
      // The last entry of each chain: its row lock is what makes one chain's writers take turns.
      `CREATE TABLE retention.audit_heads (chain text PRIMARY KEY, seq bigint NOT NULL, hash text NOT NULL)`,
      // Records written before this upgrade have no entries: verify counts them apart.
      `CREATE TABLE retention.audit_chain_start (first_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
      `INSERT INTO retention.audit_chain_start (first_id) SELECT COALESCE(max(id), 0) + 1 FROM retention.audit`,
      ...APPEND_ONLY,
    ],
  },
  { version: 3, name: 'audit counts by period', statements: [AUDIT_COUNTS_INDEX] },
  {
    version: 4,
    name: 'failure streaks (the attention queue)',
    statements: [
      // One row per item whose deletion failed in consecutive live runs (core/attention.ts);
      // state, not record: rows go when a streak ends. Dismissals are audited as governance records.
      `CREATE TABLE retention.attention (
        policy text NOT NULL,
        key text NOT NULL,
        failures integer NOT NULL,
        first_failed_at timestamptz NOT NULL,
        last_failed_at timestamptz NOT NULL,
        last_run_id text NOT NULL,
        last_error text NOT NULL,
        dismissed_by text,
        dismissed_reason text,
        dismissed_at timestamptz,
        PRIMARY KEY (policy, key)
      )`,
    ],
  },
];

export const LATEST_SCHEMA_VERSION = Math.max(...MIGRATIONS.map((migration) => migration.version));

/**
 * Any constant shared by every process that migrates this schema. The lock is transaction-scoped
 * (released at COMMIT/ROLLBACK), so it also works through a transaction-mode pooler (PgBouncer,
 * Neon), where session-level advisory locks would leak across clients.
 */
const MIGRATION_LOCK_KEY = 0x7265_7465; // "rete"

/**
 * Brings the schema to the latest version in ONE transaction. Concurrent callers queue on the
 * advisory lock, and each sees what the previous one committed, so every migration runs once.
 * A failing migration rolls back entirely: the schema is never left half-upgraded.
 */
export async function migrateControlSchema(sql: SqlClient): Promise<void> {
  await sql.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.query('CREATE SCHEMA IF NOT EXISTS retention');
    await tx.query(`CREATE TABLE IF NOT EXISTS retention.schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const applied = await tx.query<{ version: number }>('SELECT version FROM retention.schema_migrations');
    const appliedVersions = new Set(applied.map((row) => row.version));
    for (const migration of MIGRATIONS) {
      if (appliedVersions.has(migration.version)) continue;
      for (const statement of migration.statements) await tx.query(statement);
      await tx.query('INSERT INTO retention.schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
    }
  });
}
