import type { AuditCountQuery, AuditQuery } from '../../core/control.ts';
import type {
  BackendClock,
  BackupRef,
  HoldCheck,
  OneStatementSweep,
  OwnAuditTrail,
  PartitionDrops,
  RunContext,
  StoreBackups,
} from '../../core/store.ts';
import type { Cutoffs, EligibleItem, Hold } from '../../core/types.ts';
import { ConfigError } from '../../errors.ts';
import type { SqlClient } from '../../sql/client.ts';
import { copyTable } from './catalog.ts';
import { backupRows, backupRowsWithFiles, pruneCopies, restoreRows, restoreRowsWithFiles } from './copies.ts';
import { parseCursor, timestampPosition } from './cursors.ts';
import { batchFailureReason, type RowsDeleteContext } from './delete.ts';
import { dropExpiredPartitions } from './partitions.ts';
import { selectRowAudit } from './rowAudit.ts';
import { rowAuditChain } from './rowAuditChain.ts';
import { countRowAudit } from './rowAuditCounts.ts';
import type { RowsStoreConfig } from './schema.ts';
import { type Segment, sweepSegments } from './segments.ts';
import { holdMatchStatement, type RowsShape } from './sql.ts';
import { type SweepMode, sweepRows } from './sweep.ts';
import { checkCutoffs, type OpenedTable, type TableStoreOptions } from './table.ts';
import type { CopyTable } from './writeSql.ts';

/**
 * What a rows store offers beyond the required core, each built over the store's opened table.
 * The run a call works for comes with the call (the sweep: with its session), never from state
 * the store keeps between runs.
 */
export interface TableAccess<BlobConfig = unknown> {
  config: RowsStoreConfig<BlobConfig>;
  options: TableStoreOptions;
  location: string;
  errorContext: Record<string, unknown>;
  /** Runs `fn` on the opened table; failures become a StoreError naming `operation`. */
  guarded<T>(operation: string, fn: (table: OpenedTable) => Promise<T>): Promise<T>;
  segmentsFor(sql: SqlClient, shape: RowsShape, cutoffs: Cutoffs): Promise<Segment[] | undefined>;
  /** `run`: who deletes, for the audit rows the deleting statement writes (absent: recorded without a run). */
  deleteContext(table: OpenedTable, run: RunContext | undefined): RowsDeleteContext;
}

/** How long a hold check may search a table (by text, unindexed) before it says it cannot tell. */
const HOLD_CHECK_TIMEOUT_MS = 5_000;

/** Database rows carry database timestamps: their cutoffs come from the database clock. */
export function databaseClock(access: TableAccess): BackendClock {
  return {
    now: () =>
      access.guarded('now', async ({ sql }) => (await sql.query<{ now: Date }>('SELECT now() AS now'))[0]!.now),
  };
}

/** Every row, and the linked file's key, by SQL: what `present` and `scan` cannot answer for. */
export function rowsHoldCheck(access: TableAccess): HoldCheck {
  return {
    matches: (hold) =>
      access.guarded('holdMatches', async ({ sql, shape }) => {
        const statement = holdMatchStatement(shape, hold);
        try {
          const [row] = await sql.transaction(async (tx) => {
            await tx.query(`SELECT set_config('statement_timeout', $1, true)`, [String(HOLD_CHECK_TIMEOUT_MS)]);
            return tx.query<{ matched: boolean; example: { key: string; linked: string | null } | null }>(
              statement.text,
              statement.params,
            );
          });
          const example = row?.example;
          return {
            matched: row?.matched ?? false,
            ...(example
              ? { example: { key: example.key, ...(example.linked === null ? {} : { linkedKey: example.linked }) } }
              : {}),
          };
        } catch (error) {
          if (batchFailureReason(error) !== 'statement timeout') throw error;
          return {
            matched: undefined,
            note: `${shape.table} was not searched through within ${HOLD_CHECK_TIMEOUT_MS / 1000} s`,
          };
        }
      }),
  };
}

/** Drops (or archives) partitions entirely past the cutoffs; see partitions.ts. */
export function rowsPartitions(access: TableAccess): PartitionDrops {
  return {
    dropExpired: (cutoffs: Cutoffs, holds: Hold[], options = {}) =>
      access.guarded('dropExpiredPartitions', async (table) => {
        checkCutoffs(cutoffs, table.shape, access.location);
        return table.partitionDropBlocked
          ? []
          : dropExpiredPartitions(access.deleteContext(table, options.run), cutoffs, holds, options);
      }),
  };
}

/** `retention.row_audit` of this policy, written by every statement that deletes (only with `audit: true`). */
export function rowsAuditTrail(access: TableAccess): OwnAuditTrail | undefined {
  const { config } = access;
  if (!config.audit) return undefined;
  return {
    trail: (query: AuditQuery) =>
      access.guarded('auditTrail', async ({ sql }) =>
        query.policy === undefined || query.policy === config.name ? selectRowAudit(sql, config.name, query) : [],
      ),
    counts: (query: AuditCountQuery) =>
      access.guarded('auditCounts', ({ sql }) => countRowAudit(sql, config.name, query)),
    chain: rowAuditChain((use) => access.guarded('auditChain', ({ sql }) => use(sql)), config.name),
  };
}

/**
 * One fused batch (select + lock + delete + audit in ONE statement; see sweep.ts), for tables
 * without linked files or children (they need scan + delete) whose deletions are audited.
 */
export function rowsSweep(access: TableAccess): OneStatementSweep {
  const { location } = access;
  return {
    begin(run: RunContext, { cutoffs, holds }) {
      /** Once this run's range statement met a row in use, its later batches skip locked rows directly. */
      let mode: SweepMode = 'range';
      return {
        next: ({ cursor, limit, detail }) =>
          access.guarded('sweepExpired', async (table) => {
            checkCutoffs(cutoffs, table.shape, location);
            const position = cursor === undefined ? undefined : parseCursor(cursor, table.shape, location);
            const context = { ...access.deleteContext(table, run), mode };
            const segments = await access.segmentsFor(table.sql, table.shape, cutoffs);
            // A position of the other kind (the index was added or dropped since the checkpoint): from the start.
            const along = timestampPosition(position);
            const within = position && 'purpose' in position ? position : undefined;
            const { cursor: after, ...swept } = segments
              ? await sweepSegments(
                  table.sql,
                  segments,
                  { holds, limit, detail, ...(within ? { cursor: within } : {}) },
                  context,
                )
              : await sweepRows(
                  table.sql,
                  table.shape,
                  { cutoffs, holds, limit, detail, ...(along ? { cursor: along } : {}) },
                  context,
                );
            mode = swept.mode;
            return {
              ...swept,
              audited: context.audit !== undefined,
              mayHaveSkipped: swept.mode === 'skip_locked',
              ...(after ? { cursor: JSON.stringify(after) } : {}),
            };
          }),
      };
    },
  };
}

/**
 * `ref.to` names a table with the same columns (`CREATE TABLE … (LIKE …)`); rows are copied
 * there, and their linked files to `blob.backupTo` (checked at open). Restores come from the
 * backup table, or from the archive table of an `archive` policy.
 */
export function rowsBackups(access: TableAccess): StoreBackups {
  const { guarded, errorContext } = access;
  async function copyTableFor(table: OpenedTable, name: string): Promise<CopyTable> {
    const known = table.copies.get(name);
    if (known) return known;
    const found = await copyTable(table.sql, name, access.options.path('backup.to'), table.source);
    if ('path' in found) throw new ConfigError([found], errorContext);
    table.copies.set(name, found);
    return found;
  }
  return {
    backup: (items: EligibleItem[], ref: BackupRef) =>
      guarded('backup', async (table) => {
        const copy = await copyTableFor(table, ref.to);
        return table.linkedFiles
          ? backupRowsWithFiles(table, copy, items, table.linkedFiles, ref)
          : backupRows(table, copy, items);
      }),
    restore: (ref: BackupRef, keys: string[]) =>
      guarded('restore', async (table) => {
        const copy = await copyTableFor(table, ref.to);
        // Restores are recorded without a run (the deleting run is in `ref`).
        const { audit } = access.deleteContext(table, undefined);
        return table.linkedFiles
          ? restoreRowsWithFiles(table, copy, keys, audit, table.linkedFiles, ref)
          : restoreRows(table, copy, keys, audit);
      }),
    /** Copies made before `olderThan` (rows by their `retention_copied_at`, files by run); returns how many went. */
    prune: (to: string, policy: string, olderThan: Date) =>
      guarded('pruneBackups', async (table) => {
        const rows = await pruneCopies(table.sql, await copyTableFor(table, to), olderThan);
        return rows + ((await table.linkedFiles?.backups.prune(table.linkedFiles.backupTo, policy, olderThan)) ?? 0);
      }),
  };
}
