import type { AuditChains } from '../../core/chain.ts';
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
import type { Hold, RunReport } from '../../core/types.ts';
import { ControlStoreError, describeCause, RetentionError, SqlError } from '../../errors.ts';
import type { SqlClient } from '../../sql/client.ts';
import { batchContext, holdsContext, leaseContext, leaseLost, positiveTtl } from '../errorContext.ts';
import { dismissStreak, noteStreaks, selectStreaks } from './attention.ts';
import {
  insertAuditEntries,
  resolveIntentsById,
  resolveRunIntents,
  selectAudit,
  selectPendingIntents,
} from './audit.ts';
import { countAudit } from './auditCounts.ts';
import { postgresAuditChains } from './chain.ts';
import { migrateControlSchema } from './migrations.ts';
import type { CheckpointRow, HoldRow, LeaseRow, PauseRow, RunRow } from './records.ts';
import {
  CHECKPOINT_COLUMNS,
  HOLD_COLUMNS,
  LEASE_COLUMNS,
  PAUSE_COLUMNS,
  RUN_COLUMNS,
  toCheckpoint,
  toHold,
  toLease,
  toPause,
  toRun,
} from './records.ts';

/**
 * The control store in PostgreSQL (embedded locally, Neon in the cloud), schema `retention`.
 * Every time-based decision uses the database clock (`now()`), and nothing needs a session:
 * leases are rows, so it works through a transaction-mode pooler. Batches (intents,
 * resolutions, events) are one statement each via `unnest` of array parameters.
 * The store owns the injected client: `close()` closes it.
 */
export class PostgresControlStore implements ControlStore {
  readonly chains: AuditChains;

  constructor(private readonly sql: SqlClient) {
    this.chains = postgresAuditChains(sql, (operation, context, fn) => this.guard(operation, context, fn));
  }

  migrate(): Promise<void> {
    return this.guard('migrate', {}, () => migrateControlSchema(this.sql));
  }

  acquireLease(policy: string, owner: string, ttlMs: number): Promise<Lease | null> {
    return this.guard('acquireLease', { policy, owner }, async () => {
      // One statement, so concurrent acquirers serialise on the row: the first takes it, the
      // others re-check `expires_at` against the winner's row and get nothing back.
      const rows = await this.sql.query<LeaseRow>(
        `INSERT INTO retention.leases AS held (policy, owner, token, acquired_at, expires_at)
         VALUES ($1, $2, 1, now(), now() + $3::double precision * interval '1 millisecond')
         ON CONFLICT (policy) DO UPDATE
           SET owner = EXCLUDED.owner, token = held.token + 1, acquired_at = now(), expires_at = EXCLUDED.expires_at
           WHERE held.expires_at <= now()
         RETURNING ${LEASE_COLUMNS}`,
        [policy, owner, positiveTtl(ttlMs)],
      );
      return rows[0] ? toLease(rows[0]) : null;
    });
  }

  renewLease(lease: Lease, ttlMs: number): Promise<Lease | null> {
    return this.guard('renewLease', leaseContext(lease), async () => {
      // The token alone decides: it changes whenever someone else takes or breaks the lease, so
      // an unchanged token means nobody else has held it since, even if it has expired meanwhile.
      // A paused policy's lease is not renewed: that is how a pause reaches a run in flight.
      const rows = await this.sql.query<LeaseRow>(
        `UPDATE retention.leases
            SET expires_at = now() + $4::double precision * interval '1 millisecond'
          WHERE policy = $1 AND owner = $2 AND token = $3 AND ${NOT_PAUSED}
         RETURNING ${LEASE_COLUMNS}`,
        [lease.policy, lease.owner, lease.token, positiveTtl(ttlMs)],
      );
      return rows[0] ? toLease(rows[0]) : null;
    });
  }

  releaseLease(lease: Lease): Promise<void> {
    return this.guard('releaseLease', leaseContext(lease), async () => {
      // Expire rather than delete: the row keeps the token (see the schema).
      await this.sql.query(
        `UPDATE retention.leases SET expires_at = LEAST(expires_at, now())
          WHERE policy = $1 AND owner = $2 AND token = $3`,
        [lease.policy, lease.owner, lease.token],
      );
    });
  }

  getLease(policy: string): Promise<Lease | null> {
    return this.guard('getLease', { policy }, async () => {
      const rows = await this.sql.query<LeaseRow>(`SELECT ${LEASE_COLUMNS} FROM retention.leases WHERE policy = $1`, [
        policy,
      ]);
      return rows[0] ? toLease(rows[0]) : null;
    });
  }

  breakLease(policy: string): Promise<boolean> {
    return this.guard('breakLease', { policy }, async () => {
      // Bumped even when already expired: a stuck holder may still try to renew or checkpoint.
      const rows = await this.sql.query(
        `UPDATE retention.leases SET token = token + 1, expires_at = LEAST(expires_at, now())
          WHERE policy = $1 RETURNING policy`,
        [policy],
      );
      return rows.length > 0;
    });
  }

  getCheckpoint(policy: string): Promise<Checkpoint | null> {
    return this.guard('getCheckpoint', { policy }, async () => {
      const rows = await this.sql.query<CheckpointRow>(
        `SELECT ${CHECKPOINT_COLUMNS} FROM retention.checkpoints WHERE policy = $1`,
        [policy],
      );
      return rows[0] ? toCheckpoint(rows[0]) : null;
    });
  }

  saveCheckpoint(lease: Lease, runId: string, cursor: string): Promise<void> {
    return this.guard('saveCheckpoint', { ...leaseContext(lease), runId }, async () => {
      const rows = await this.sql.query(
        `WITH ${FENCE}
         INSERT INTO retention.checkpoints (policy, cursor, run_id, updated_at)
         SELECT fence.policy, $4, $5, now() FROM fence
         ON CONFLICT (policy) DO UPDATE
           SET cursor = EXCLUDED.cursor, run_id = EXCLUDED.run_id, updated_at = EXCLUDED.updated_at
         RETURNING policy`,
        [lease.policy, lease.owner, lease.token, cursor, runId],
      );
      if (rows.length === 0) throw leaseLost(lease, 'saveCheckpoint');
    });
  }

  clearCheckpoint(lease: Lease): Promise<void> {
    return this.guard('clearCheckpoint', leaseContext(lease), async () => {
      // The DELETE runs whatever the SELECT returns; `fenced` tells whether it could match.
      const rows = await this.sql.query<{ fenced: boolean }>(
        `WITH ${FENCE},
         cleared AS (DELETE FROM retention.checkpoints USING fence WHERE checkpoints.policy = fence.policy)
         SELECT EXISTS (SELECT 1 FROM fence) AS fenced`,
        [lease.policy, lease.owner, lease.token],
      );
      if (!rows[0]?.fenced) throw leaseLost(lease, 'clearCheckpoint');
    });
  }

  pause(scope: string, by: string, reason: string): Promise<void> {
    return this.guard('pause', { scope }, async () => {
      await this.sql.query(
        `INSERT INTO retention.pauses (scope, paused_by, reason) VALUES ($1, $2, $3)
         ON CONFLICT (scope) DO UPDATE SET paused_by = EXCLUDED.paused_by, reason = EXCLUDED.reason, paused_at = now()`,
        [scope, by, reason],
      );
    });
  }

  resume(scope: string): Promise<boolean> {
    return this.guard('resume', { scope }, async () => {
      const rows = await this.sql.query('DELETE FROM retention.pauses WHERE scope = $1 RETURNING scope', [scope]);
      return rows.length > 0;
    });
  }

  pausedBy(policy: string): Promise<PauseState | null> {
    return this.guard('pausedBy', { policy }, async () => {
      // The global pause wins when both exist: resuming the policy alone would not unpause it.
      const rows = await this.sql.query<PauseRow>(
        `SELECT ${PAUSE_COLUMNS} FROM retention.pauses WHERE scope IN ($1, '*') ORDER BY scope = '*' DESC LIMIT 1`,
        [policy],
      );
      return rows[0] ? toPause(rows[0]) : null;
    });
  }

  listPauses(): Promise<PauseState[]> {
    return this.guard('listPauses', {}, async () => {
      const rows = await this.sql.query<PauseRow>(
        `SELECT ${PAUSE_COLUMNS} FROM retention.pauses ORDER BY paused_at, scope`,
      );
      return rows.map(toPause);
    });
  }

  addHold(hold: NewHold): Promise<Hold> {
    return this.guard('addHold', holdsContext([hold]), async () => (await this.insertHolds([hold]))[0]!);
  }

  addHolds(holds: NewHold[]): Promise<Hold[]> {
    return this.guard('addHolds', holdsContext(holds), () => this.insertHolds(holds));
  }

  listHolds(policy?: string): Promise<Hold[]> {
    return this.guard('listHolds', policy === undefined ? {} : { policy }, async () => {
      const rows = await this.sql.query<HoldRow>(
        `SELECT ${HOLD_COLUMNS} FROM retention.holds
          WHERE $1::text IS NULL OR policy = $1 OR policy IS NULL ORDER BY id`,
        [policy ?? null],
      );
      return rows.map(toHold);
    });
  }

  removeHold(id: number): Promise<boolean> {
    return this.guard('removeHold', { holdId: id }, async () => {
      const rows = await this.sql.query('DELETE FROM retention.holds WHERE id = $1 RETURNING id', [id]);
      return rows.length > 0;
    });
  }

  startRun(run: { runId: string; policy: string; dryRun: boolean; startedAt: Date }): Promise<void> {
    return this.guard('startRun', { runId: run.runId, policy: run.policy }, async () => {
      // A duplicate run id is a bug upstream; the primary key makes it fail before any deletion.
      await this.sql.query(
        `INSERT INTO retention.runs (run_id, policy, status, dry_run, started_at) VALUES ($1, $2, 'running', $3, $4)`,
        [run.runId, run.policy, run.dryRun, run.startedAt],
      );
    });
  }

  finishRun(report: RunReport): Promise<void> {
    return this.guard('finishRun', { runId: report.runId, policy: report.policy }, async () => {
      // An upsert, so a report is kept even if its startRun never reached the database.
      await this.sql.query(
        `INSERT INTO retention.runs (run_id, policy, status, dry_run, started_at, finished_at, report)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
         ON CONFLICT (run_id) DO UPDATE
           SET status = EXCLUDED.status, finished_at = EXCLUDED.finished_at, report = EXCLUDED.report`,
        [
          report.runId,
          report.policy,
          report.status,
          report.dryRun,
          report.startedAt,
          report.finishedAt,
          JSON.stringify(report),
        ],
      );
    });
  }

  closeCrashedRuns(policy: string, exceptRunId: string): Promise<string[]> {
    return this.guard('closeCrashedRuns', { policy }, async () => {
      const rows = await this.sql.query<{ run_id: string }>(
        `UPDATE retention.runs SET status = 'crashed', finished_at = now()
          WHERE policy = $1 AND status = 'running' AND NOT dry_run AND run_id <> $2 RETURNING run_id`,
        [policy, exceptRunId],
      );
      return rows.map((row) => row.run_id);
    });
  }

  listRuns(query: { policy?: string; limit: number }): Promise<RunRecord[]> {
    return this.guard('listRuns', query.policy === undefined ? {} : { policy: query.policy }, async () => {
      const rows = await this.sql.query<RunRow>(
        `SELECT ${RUN_COLUMNS} FROM retention.runs WHERE $1::text IS NULL OR policy = $1
          ORDER BY started_at DESC, run_id DESC LIMIT $2`,
        [query.policy ?? null, query.limit],
      );
      return rows.map(toRun);
    });
  }

  getRun(runId: string): Promise<RunRecord | null> {
    return this.guard('getRun', { runId }, async () => {
      const rows = await this.sql.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM retention.runs WHERE run_id = $1`, [runId]);
      return rows[0] ? toRun(rows[0]) : null;
    });
  }

  recordIntents(intents: AuditIntent[]): Promise<void> {
    const entries = intents.map((intent) => ({ ...intent, status: 'pending' as const }));
    return this.guard('recordIntents', batchContext(intents), () => insertAuditEntries(this.sql, entries));
  }

  resolveIntents(runId: string, resolutions: AuditResolution[]): Promise<void> {
    return this.guard('resolveIntents', { runId, count: resolutions.length }, () =>
      resolveRunIntents(this.sql, runId, resolutions),
    );
  }

  pendingIntents(policy: string, exceptRunId?: string): Promise<AuditRecord[]> {
    return this.guard('pendingIntents', { policy }, () => selectPendingIntents(this.sql, policy, exceptRunId));
  }

  resolveStaleIntents(resolutions: Array<{ id: number; status: Exclude<AuditStatus, 'pending'> }>): Promise<void> {
    return this.guard('resolveStaleIntents', { count: resolutions.length }, () =>
      resolveIntentsById(this.sql, resolutions),
    );
  }

  recordEvents(
    events: Array<AuditIntent & { status: Exclude<AuditStatus, 'pending'>; error?: string }>,
  ): Promise<void> {
    return this.guard('recordEvents', batchContext(events), () => insertAuditEntries(this.sql, events));
  }

  audit(query: AuditQuery): Promise<AuditRecord[]> {
    return this.guard('audit', { ...query }, () => selectAudit(this.sql, query));
  }

  auditCounts(query: AuditCountQuery): Promise<AuditCount[]> {
    return this.guard('auditCounts', { policy: query.policy }, () => countAudit(this.sql, query));
  }

  noteFailureStreaks(update: FailureStreakUpdate): Promise<void> {
    const context = { policy: update.policy, runId: update.runId, failed: update.failed.length };
    return this.guard('noteFailureStreaks', context, () => noteStreaks(this.sql, update));
  }

  attentionItems(policy: string, minFailures: number): Promise<AttentionItem[]> {
    return this.guard('attentionItems', { policy }, () => selectStreaks(this.sql, policy, minFailures));
  }

  dismissAttention(policy: string, key: string, by: string, reason: string): Promise<AttentionItem | null> {
    return this.guard('dismissAttention', { policy, key }, () => dismissStreak(this.sql, { policy, key, by, reason }));
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  /**
   * One statement whatever the count. Ids come from the serial in the order rows are inserted,
   * which is the input order (ORDER BY ordinality), so sorting the result by id keeps that order.
   */
  private async insertHolds(holds: NewHold[]): Promise<Hold[]> {
    if (holds.length === 0) return [];
    const rows = await this.sql.query<HoldRow>(
      `WITH added AS (
         INSERT INTO retention.holds (policy, key, prefix, reason, created_by)
         SELECT policy, key, prefix, reason, created_by
           FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[], $5::text[]) WITH ORDINALITY
             AS batch (policy, key, prefix, reason, created_by, ord)
          ORDER BY ord
         RETURNING ${HOLD_COLUMNS})
       SELECT ${HOLD_COLUMNS} FROM added ORDER BY id`,
      [
        holds.map((h) => h.policy),
        holds.map((h) => h.key),
        holds.map((h) => h.prefix),
        holds.map((h) => h.reason),
        holds.map((h) => h.createdBy),
      ],
    );
    return rows.map(toHold);
  }

  /**
   * Adds the operation and its subject to any failure; our own errors (LeaseLostError, …) pass as
   * they are. The message says what the driver said (`releaseLease failed: Connection terminated
   * unexpectedly`); which statement it was goes to the context.
   */
  private async guard<T>(operation: string, context: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof RetentionError && !(error instanceof SqlError)) throw error;
      const underneath = error instanceof SqlError && error.cause !== undefined ? error.cause : error;
      const statement = error instanceof SqlError ? error.context : {};
      const message = `control store (${this.sql.driver}): ${operation} failed: ${describeCause(underneath)}`;
      throw new ControlStoreError(message, { operation, ...context, ...statement }, { cause: error });
    }
  }
}

/** Neither the policy ($1) nor everything is paused. */
const NOT_PAUSED = `NOT EXISTS (SELECT 1 FROM retention.pauses WHERE scope IN ($1, '*'))`;

/**
 * The lease row still carries this token and the policy is not paused; FOR SHARE makes a
 * concurrent takeover wait for us (or us see it).
 */
const FENCE = `fence AS (SELECT policy FROM retention.leases WHERE policy = $1 AND owner = $2 AND token = $3 AND ${NOT_PAUSED} FOR SHARE)`;
