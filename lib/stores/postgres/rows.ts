import { RequestDeadline } from '../../core/deadline.ts';
import { durationMs } from '../../core/durations.ts';
import type {
  Census,
  CensusQuery,
  DeleteOptions,
  DeleteOutcome,
  Page,
  RunContext,
  ScanQuery,
  Store,
} from '../../core/store.ts';
import type { Cutoffs, EligibleItem, Item } from '../../core/types.ts';
import { describeCause, RetentionError, SqlError, StoreError } from '../../errors.ts';
import type { SqlClient } from '../../sql/client.ts';
import {
  databaseClock,
  rowsAuditTrail,
  rowsBackups,
  rowsHoldCheck,
  rowsPartitions,
  rowsSweep,
  type TableAccess,
} from './capabilities.ts';
import type { RowsWarning } from './catalog.ts';
import { cursorAfter, parseCursor, type ScannedColumns, timestampPosition, toItem } from './cursors.ts';
import { deleteRows, type RowsDeleteContext } from './delete.ts';
import { rowsLinks } from './links.ts';
import { rowsLookup } from './lookup.ts';
import type { RowsStoreConfig } from './schema.ts';
import { purposeSegments, type Segment } from './segments.ts';
import {
  countEligibleStatement,
  countInScopeStatement,
  parseKeys,
  presentStatement,
  type RowsShape,
  type Statement,
  scanStatement,
} from './sql.ts';
import {
  checkCutoffs,
  describeUrl,
  type OpenedTable,
  openTable,
  type RowsStoreDeps,
  type TableStoreOptions,
} from './table.ts';
import { rowsMaintenance } from './vacuum.ts';

export type { RowsStoreDeps, TableStoreOptions };

/**
 * A rows store: the required core over one table, plus what only a database offers: its clock,
 * one-statement sweeps, partition drops, its own audit trail, hold checks by SQL, and backups
 * through copy tables. Which of these a policy gets is decided here, from its configuration.
 */
export interface PostgresRowsStore extends Store {
  /** Found by open(): foreign keys without index, … (empty before open). */
  readonly warnings: RowsWarning[];
  /** The database clock: cutoffs of database rows are computed from it, once per run. */
  readonly clock: NonNullable<Store['clock']>;
  readonly partitions: NonNullable<Store['partitions']>;
  readonly holdCheck: NonNullable<Store['holdCheck']>;
}

export function createPostgresRowsStore<BlobConfig>(
  config: RowsStoreConfig<BlobConfig>,
  deps: RowsStoreDeps<BlobConfig> = {},
): PostgresRowsStore {
  return createTableStore(config, deps, { path: (field) => field, backups: true });
}

/** Counted exactly up to here; beyond it the census is an estimate (`exact: false`). */
const CENSUS_EXACT_LIMIT = 1_000_000;

/** The rows machinery over one table (rows policies, and tokens kept in PostgreSQL). */
export function createTableStore<BlobConfig>(
  config: RowsStoreConfig<BlobConfig>,
  deps: RowsStoreDeps<BlobConfig>,
  options: TableStoreOptions,
): PostgresRowsStore {
  const location = `${describeUrl(config.store.url)}/${config.table}`;
  const errorContext = { policy: config.name, store: location, table: config.table };
  const warnings: RowsWarning[] = [];
  /** The purposes present, looked up once per cutoffs (a run's census and sweep share them). */
  let segments: { cutoffs: Cutoffs; found: Promise<Segment[] | undefined> } | undefined;
  let opening: Promise<OpenedTable> | undefined;
  /** The run's deadline, bound by `open(run)`: every statement stops waiting once it passes. */
  const deadline = new RequestDeadline(location);

  function opened(): Promise<OpenedTable> {
    opening ??= openTable(config, deps, options, errorContext, warnings).catch((error: unknown) => {
      opening = undefined;
      throw error;
    });
    return opening;
  }

  const access: TableAccess<BlobConfig> = {
    config,
    options,
    location,
    errorContext,
    async guarded<T>(operation: string, fn: (table: OpenedTable) => Promise<T>): Promise<T> {
      const table = await opened();
      try {
        return await fn(deadline.signal ? { ...table, sql: table.sql.withSignal(deadline.signal) } : table);
      } catch (error) {
        deadline.throwIfPassed(operation, error);
        if (error instanceof RetentionError && !(error instanceof SqlError)) throw error;
        throw new StoreError(
          `${location}: ${operation} failed: ${describeCause(error)}`,
          { ...errorContext, operation },
          { cause: error },
        );
      }
    },
    segmentsFor(sql: SqlClient, shape: RowsShape, cutoffs: Cutoffs): Promise<Segment[] | undefined> {
      if (segments?.cutoffs !== cutoffs) segments = { cutoffs, found: purposeSegments(sql, shape, cutoffs) };
      return segments.found;
    },
    deleteContext(table: OpenedTable, run: RunContext | undefined): RowsDeleteContext {
      return {
        sql: table.sql,
        shape: table.shape,
        statementTimeoutMs: durationMs(config.statementTimeout),
        lockTimeoutMs: durationMs(config.lockTimeout),
        audit: config.audit
          ? {
              policy: config.name,
              store: location,
              runId: run?.runId ?? null,
              actor: run?.actor ?? null,
              trigger: run?.trigger ?? null,
            }
          : undefined,
        blobStore: table.blobStore,
        errorContext,
      };
    },
  };
  const { guarded } = access;

  const ownTrail = rowsAuditTrail(access);
  const maintenance = rowsMaintenance(access);
  return {
    kind: 'postgres',
    location,
    order: 'timestamp',
    warnings,
    // The engine waits between batches, before its lease check (never after it).
    pacingMs: config.pauseBetweenBatchesMs,

    async open(run?: RunContext) {
      deadline.bind(run);
      const table = await opened();
      // The linked files' store, opened (and checked) with the table, takes the run's deadline.
      await table.blobStore?.open(run);
    },

    scan: ({ cutoffs, cursor, limit }: ScanQuery): Promise<Page> =>
      guarded('scan', async ({ sql, shape }) => {
        checkCutoffs(cutoffs, shape, location);
        const rows = await query<
          {
            walk_end: { ts: string; key: string } | null;
            key: string | null;
            ts: string;
            ts_raw?: string;
          } & ScannedColumns
        >(
          sql,
          scanStatement(
            shape,
            cutoffs,
            timestampPosition(cursor === undefined ? undefined : parseCursor(cursor, shape, location)),
            limit,
          ),
        );
        const found = rows.filter((row): row is typeof row & { key: string } => row.key !== null);
        const page = found.slice(0, limit);
        const last = page.at(-1);
        // A short page before the end of the walk: the next page starts where the walk stopped.
        const walkEnd = found.length <= limit ? rows[0]?.walk_end : null;
        const items: Item[] = page.map((row) => toItem(row, shape));
        if (walkEnd)
          return { items, cursor: cursorAfter({ ts: walkEnd.ts, key: walkEnd.key }, shape, location), done: false };
        return {
          items,
          ...(last ? { cursor: cursorAfter(last, shape, location) } : cursor === undefined ? {} : { cursor }),
          done: found.length <= limit,
        };
      }),

    census: ({ cutoffs, holds, bound }: CensusQuery): Promise<Census> =>
      guarded('census', async ({ sql, shape }) => {
        checkCutoffs(cutoffs, shape, location);
        const cap = bound ?? CENSUS_EXACT_LIMIT;
        const [scoped] = await query<{ count: string }>(sql, countInScopeStatement(shape, cap + 1));
        // One count per purpose when the table is swept by purpose (each an index range of what is due).
        const parts = (await access.segmentsFor(sql, shape, cutoffs)) ?? [{ shape, cutoffs }];
        const counted = await Promise.all(
          parts.map(
            async (part) =>
              (
                await query<{ count: string; held: string; oldest_overdue_seconds: number }>(
                  sql,
                  countEligibleStatement(part.shape, part.cutoffs, holds, cap + 1),
                )
              )[0]!,
          ),
        );
        const eligible = {
          count: counted.reduce((sum, part) => sum + Number(part.count), 0),
          held: counted.reduce((sum, part) => sum + Number(part.held), 0),
          oldest_overdue_seconds: Math.max(0, ...counted.map((part) => part.oldest_overdue_seconds)),
        };
        let total = Number(scoped!.count);
        const eligibleCount = Math.min(eligible.count, cap);
        const exact = total <= cap && eligible.count + eligible.held <= cap;
        // Past the cap: the bound itself when one was asked for, else the planner's estimate
        // (reltuples, the whole table: filters and rows deleted since ANALYZE are not reflected).
        if (total > cap) total = bound ?? Math.max(cap, await estimatedRows(sql, shape));
        return {
          total,
          eligible: eligibleCount,
          held: eligible.held,
          oldestOverdueSeconds: eligible.oldest_overdue_seconds,
          exact,
        };
      }),

    delete: (items: EligibleItem[], options?: DeleteOptions): Promise<DeleteOutcome[]> =>
      guarded('delete', async (table) => {
        if (items.length === 0) return [];
        return deleteRows(access.deleteContext(table, options?.run), items, options);
      }),

    present: (keys: string[]): Promise<Set<string>> =>
      guarded('present', async ({ sql, shape }) => {
        const { batch } = parseKeys(shape, keys);
        if (batch.keys.length === 0) return new Set();
        const rows = await query<{ ord: string }>(sql, presentStatement(shape, batch));
        return new Set(rows.map((row) => batch.keys[Number(row.ord) - 1]!));
      }),

    async close() {
      const table = await opening?.catch(() => undefined);
      opening = undefined;
      await table?.blobStore?.close();
      if (table && !deps.sql) await table.sql.close();
    },

    clock: databaseClock(access),
    holdCheck: rowsHoldCheck(access),
    lookup: rowsLookup(access),
    ...(config.blob ? { linked: rowsLinks(access) } : {}),
    partitions: rowsPartitions(access),
    ...(maintenance ? { maintenance } : {}),
    ...(options.backups ? { backups: rowsBackups(access) } : {}),
    ...(ownTrail ? { audit: ownTrail } : {}),
    // One statement per batch only where it records the deletions itself (no write-ahead intent
    // then) and nothing must go first: linked files before their row, children before their parent.
    ...(ownTrail && !config.blob && !config.children?.length ? { sweep: rowsSweep(access) } : {}),
  };
}

async function estimatedRows(sql: SqlClient, shape: RowsShape): Promise<number> {
  const [row] = await sql.query<{ estimate: number }>(
    `SELECT COALESCE(sum(c.reltuples) FILTER (WHERE c.reltuples > 0), 0)::float8 AS estimate
       FROM pg_partition_tree($1::text::regclass) AS tree JOIN pg_class c ON c.oid = tree.relid WHERE tree.isleaf`,
    [shape.table],
  );
  return Math.round(row?.estimate ?? 0);
}

function query<R>(sql: SqlClient, statement: Statement): Promise<R[]> {
  return sql.query<R>(statement.text, statement.params);
}
