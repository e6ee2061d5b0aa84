import { durationMs } from '../../core/durations.ts';
import type { AuditQuery, AuditRecord } from '../../core/control.ts';
import type { Cutoffs, EligibleItem, Hold, Item } from '../../core/types.ts';
import { ConfigError, describeCause, RetentionError, SqlError, StoreError } from '../../errors.ts';
import { createSqlClient, type SqlClient } from '../../sql/client.ts';
import { copyTable, inspectRowsTable, type RowsTableRequest, type RowsWarning, type SourceTable } from './catalog.ts';
import { dropExpiredPartitions } from './partitions.ts';
import { ensureRowAuditTable, selectRowAudit } from './rowAudit.ts';
import { batchFailureReason, deleteRows, type RowsDeleteContext } from './delete.ts';
import type { PostgresStoreConfig } from '../../sql/schema.ts';
import type { RowsStoreConfig } from './schema.ts';
import { countEligibleStatement, countInScopeStatement, holdMatchStatement, keyParts, parseKeys, presentStatement, scanStatement, type Cursor, type RowsShape, type Statement } from './sql.ts';
import { backupRows, backupRowsWithFiles, pruneCopies, restoreRows, restoreRowsWithFiles, type LinkedFiles } from './copies.ts';
import { purposeSegments, sweepSegments, type Segment, type SegmentCursor } from './segments.ts';
import { sweepRows, type SweepMode } from './sweep.ts';
import type { CopyTable } from './writeSql.ts';
import type { BackupOutcome, BackupRef, Census, CensusQuery, DeleteOptions, DeleteOutcome, OpenContext, Page, PartitionDropOptions, PartitionOutcome, RestoreOutcome, RunContext, ScanQuery, Store, SweptBatch } from '../../core/store.ts';

export interface RowsStoreDeps<BlobConfig = unknown> {
  /** Injected client (tests, a shared pool); the store closes only a client it created. */
  sql?: SqlClient;
  /** Builds the blob store of `blob.store` (the stores registry, which loads stores lazily). */
  blobStoreFor?: (config: BlobConfig) => Store | Promise<Store>;
}

export interface PostgresRowsStore extends Store {
  /** Found by open(): foreign keys without index, … (empty before open). */
  readonly warnings: RowsWarning[];
  /** The database clock: cutoffs of database rows are computed from it, once per run. */
  now(): Promise<Date>;
  bindRun(run: RunContext): void;
  /**
   * One fused batch (select + lock + delete + audit in ONE statement; see postgresRowsSweep.ts).
   * Not for policies with `blob` or `children` (they need scan + delete).
   */
  sweepExpired(query: { cutoffs: Cutoffs; holds: Hold[]; cursor?: string; limit: number; detail: 'rows' | 'summary' }): Promise<SweptBatch>;
  readonly auditsOwnDeletions: boolean;
  /** `retention.row_audit` of this policy (empty without `audit: true`). */
  auditTrail(query: AuditQuery): Promise<AuditRecord[]>;
  /** Drops (or archives) partitions entirely past the cutoffs; see partitions.ts. */
  dropExpiredPartitions(cutoffs: Cutoffs, holds: Hold[], options?: PartitionDropOptions): Promise<PartitionOutcome[]>;
}

export function createPostgresRowsStore<BlobConfig>(config: RowsStoreConfig<BlobConfig>, deps: RowsStoreDeps<BlobConfig> = {}): PostgresRowsStore {
  return createTableStore(config, deps, { path: (field) => field, backups: true });
}

export interface TableStoreOptions {
  /** Maps a field of the rows policy to where the operator wrote it, for ConfigError paths. */
  path: (field: string) => string;
  /** Offer backup/restore through copy tables (not for credentials: a copy would defeat deleting them). */
  backups: boolean;
}

/** How long `holdMatches` may search a table (by text, unindexed) before it says it cannot tell. */
const HOLD_CHECK_TIMEOUT_MS = 5_000;

/** Counted exactly up to here; beyond it the census is an estimate (`exact: false`). */
const CENSUS_EXACT_LIMIT = 1_000_000;

interface Opened {
  sql: SqlClient;
  shape: RowsShape;
  source: SourceTable;
  /** Backup tables checked so far, by name. */
  copies: Map<string, CopyTable>;
  partitionDropBlocked?: string;
  blobStore?: Store;
  /** With `backup`: the linked files' store and where it copies them. */
  linkedFiles?: LinkedFiles;
}

/** The rows machinery over one table (rows policies, and tokens kept in PostgreSQL). */
export function createTableStore<BlobConfig>(config: RowsStoreConfig<BlobConfig>, deps: RowsStoreDeps<BlobConfig>, options: TableStoreOptions): PostgresRowsStore {
  const { path } = options;
  const location = `${describeUrl(config.store.url)}/${config.table}`;
  const errorContext = { policy: config.name, store: location, table: config.table };
  const warnings: RowsWarning[] = [];
  let run: RunContext | undefined;
  /** Once a run's range statement met a row in use, its later batches skip locked rows directly. */
  let sweepMode: SweepMode = 'range';
  /** The purposes present are looked up once per run (per cutoffs). */
  let segments: { cutoffs: Cutoffs; found: Promise<Segment[] | undefined> } | undefined;
  function segmentsFor(sql: SqlClient, shape: RowsShape, cutoffs: Cutoffs): Promise<Segment[] | undefined> {
    if (segments?.cutoffs !== cutoffs) segments = { cutoffs, found: purposeSegments(sql, shape, cutoffs) };
    return segments.found;
  }
  let opening: Promise<Opened> | undefined;

  function opened(): Promise<Opened> {
    opening ??= openTable(config, deps, options, errorContext, warnings).catch((error: unknown) => {
      opening = undefined;
      throw error;
    });
    return opening;
  }

  async function guarded<T>(operation: string, fn: (table: Opened) => Promise<T>): Promise<T> {
    const table = await opened();
    try {
      return await fn(table);
    } catch (error) {
      if (error instanceof RetentionError && !(error instanceof SqlError)) throw error;
      throw new StoreError(`${location}: ${operation} failed: ${describeCause(error)}`, { ...errorContext, operation }, { cause: error });
    }
  }

  async function copyTableFor(table: Opened, name: string): Promise<CopyTable> {
    const known = table.copies.get(name);
    if (known) return known;
    const found = await copyTable(table.sql, name, path('backup.to'), table.source);
    if ('path' in found) throw new ConfigError([found], errorContext);
    table.copies.set(name, found);
    return found;
  }

  function deleteContext(table: Opened): RowsDeleteContext {
    return {
      sql: table.sql,
      shape: table.shape,
      statementTimeoutMs: durationMs(config.statementTimeout),
      lockTimeoutMs: durationMs(config.lockTimeout),
      audit: config.audit ? { policy: config.name, store: location, runId: run?.runId ?? null, actor: run?.actor ?? null, trigger: run?.trigger ?? null } : undefined,
      blobStore: table.blobStore,
      errorContext,
    };
  }

  const store: PostgresRowsStore = {
    kind: 'postgres',
    location,
    order: 'timestamp',
    warnings,
    // The engine waits between batches, before its lease check (never after it).
    pacingMs: config.pauseBetweenBatchesMs,
    // Linked files must go before their row and children first: those batches need two steps.
    sweepsInOneStatement: !config.blob && !config.children?.length,

    async open(run?: OpenContext) {
      const table = await opened();
      // The linked files' store, opened (and checked) with the table, takes the run's deadline.
      await table.blobStore?.open(run);
    },

    scan: ({ cutoffs, cursor, limit }: ScanQuery): Promise<Page> =>
      guarded('scan', async ({ sql, shape }) => {
        checkCutoffs(cutoffs, shape, location);
        const rows = await query<{ walk_end: { ts: string; key: string } | null; key: string | null; ts: string; ts_raw?: string } & ScannedColumns>(
          sql,
          scanStatement(shape, cutoffs, timestampPosition(cursor === undefined ? undefined : parseCursor(cursor, shape, location)), limit),
        );
        const found = rows.filter((row): row is typeof row & { key: string } => row.key !== null);
        const page = found.slice(0, limit);
        const last = page.at(-1);
        // A short page before the end of the walk: the next page starts where the walk stopped.
        const walkEnd = found.length <= limit ? rows[0]?.walk_end : null;
        if (walkEnd) return { items: page.map((row) => toItem(row, shape)), cursor: cursorAfter({ ts: walkEnd.ts, key: walkEnd.key }, shape, location), done: false };
        return {
          items: page.map((row) => toItem(row, shape)),
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
        const parts = (await segmentsFor(sql, shape, cutoffs)) ?? [{ shape, cutoffs }];
        const counted = await Promise.all(parts.map(async (part) => (await query<{ count: string; held: string; oldest_overdue_seconds: number }>(sql, countEligibleStatement(part.shape, part.cutoffs, holds, cap + 1)))[0]!));
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
        return { total, eligible: eligibleCount, held: eligible.held, oldestOverdueSeconds: eligible.oldest_overdue_seconds, exact };
      }),

    delete: (items: EligibleItem[], options?: DeleteOptions): Promise<DeleteOutcome[]> =>
      guarded('delete', async (table) => {
        if (items.length === 0) return [];
        return deleteRows(deleteContext(table), items, options);
      }),

    present: (keys: string[]): Promise<Set<string>> =>
      guarded('present', async ({ sql, shape }) => {
        const { batch } = parseKeys(shape, keys);
        if (batch.keys.length === 0) return new Set();
        const rows = await query<{ ord: string }>(sql, presentStatement(shape, batch));
        return new Set(rows.map((row) => batch.keys[Number(row.ord) - 1]!));
      }),

    holdMatches: (hold) =>
      guarded('holdMatches', async ({ sql, shape }) => {
        const statement = holdMatchStatement(shape, hold);
        try {
          const [row] = await sql.transaction(async (tx) => {
            await tx.query(`SELECT set_config('statement_timeout', $1, true)`, [String(HOLD_CHECK_TIMEOUT_MS)]);
            return tx.query<{ matched: boolean; example: { key: string; linked: string | null } | null }>(statement.text, statement.params);
          });
          const example = row?.example;
          return { matched: row?.matched ?? false, ...(example ? { example: { key: example.key, ...(example.linked === null ? {} : { linkedKey: example.linked }) } } : {}) };
        } catch (error) {
          if (batchFailureReason(error) !== 'statement timeout') throw error;
          return { matched: undefined, note: `${shape.table} was not searched through within ${HOLD_CHECK_TIMEOUT_MS / 1000} s` };
        }
      }),

    ...(options.backups
      ? {
          /**
           * `ref.to` names a table with the same columns (`CREATE TABLE … (LIKE …)`); rows are
           * copied there, and their linked files to `blob.backupTo` (checked at open).
           */
          backup: (items: EligibleItem[], ref: BackupRef): Promise<BackupOutcome[]> =>
            guarded('backup', async (table) => {
              const copy = await copyTableFor(table, ref.to);
              return table.linkedFiles ? backupRowsWithFiles(table, copy, items, table.linkedFiles, ref) : backupRows(table, copy, items);
            }),
          /** From `ref.to`: the backup table (with the linked files' backup), or the archive table of an `archive` policy. */
          restore: (ref: BackupRef, keys: string[]): Promise<RestoreOutcome[]> =>
            guarded('restore', async (table) => {
              const copy = await copyTableFor(table, ref.to);
              const { audit } = deleteContext(table);
              return table.linkedFiles ? restoreRowsWithFiles(table, copy, keys, audit, table.linkedFiles, ref) : restoreRows(table, copy, keys, audit);
            }),
          /** Copies made before `olderThan` (rows by their `retention_copied_at`, files by run); returns how many went. */
          pruneBackups: (to: string, policy: string, olderThan: Date): Promise<number> =>
            guarded('pruneBackups', async (table) => {
              const rows = await pruneCopies(table.sql, await copyTableFor(table, to), olderThan);
              return rows + ((await table.linkedFiles?.store.pruneBackups?.(table.linkedFiles.backupTo, policy, olderThan)) ?? 0);
            }),
        }
      : {}),

    sweepExpired: ({ cutoffs, holds, cursor, limit, detail }) =>
      guarded('sweepExpired', async (table) => {
        checkCutoffs(cutoffs, table.shape, location);
        if (table.shape.blob || table.shape.children.length > 0) throw new StoreError(`${location}: linked files and children are deleted by scan + delete, not sweepExpired`, errorContext);
        const position = cursor === undefined ? undefined : parseCursor(cursor, table.shape, location);
        const context = { ...deleteContext(table), mode: sweepMode };
        const segments = await segmentsFor(table.sql, table.shape, cutoffs);
        // A position of the other kind (the index was added or dropped since the checkpoint): from the start.
        const along = timestampPosition(position);
        const within = position && 'purpose' in position ? position : undefined;
        const { cursor: after, ...swept } = segments
          ? await sweepSegments(table.sql, segments, { holds, limit, detail, ...(within ? { cursor: within } : {}) }, context)
          : await sweepRows(table.sql, table.shape, { cutoffs, holds, limit, detail, ...(along ? { cursor: along } : {}) }, context);
        sweepMode = swept.mode;
        return { ...swept, audited: context.audit !== undefined, mayHaveSkipped: swept.mode === 'skip_locked', ...(after ? { cursor: JSON.stringify(after) } : {}) };
      }),

    auditsOwnDeletions: config.audit,

    auditTrail: (query: AuditQuery) =>
      guarded('auditTrail', async ({ sql }) => (config.audit && (query.policy === undefined || query.policy === config.name) ? selectRowAudit(sql, config.name, query) : [])),

    now: () => guarded('now', async ({ sql }) => (await sql.query<{ now: Date }>('SELECT now() AS now'))[0]!.now),

    bindRun(context: RunContext) {
      run = context;
      sweepMode = 'range';
    },

    dropExpiredPartitions: (cutoffs: Cutoffs, holds: Hold[], options?: PartitionDropOptions) =>
      guarded('dropExpiredPartitions', async (table) => {
        checkCutoffs(cutoffs, table.shape, location);
        return table.partitionDropBlocked ? [] : dropExpiredPartitions(deleteContext(table), cutoffs, holds, options);
      }),

    async close() {
      const table = await opening?.catch(() => undefined);
      opening = undefined;
      await table?.blobStore?.close?.();
      if (table && !deps.sql) await table.sql.close();
    },
  };
  return store;
}

async function openTable<BlobConfig>(
  config: RowsStoreConfig<BlobConfig>,
  deps: RowsStoreDeps<BlobConfig>,
  options: TableStoreOptions,
  context: Record<string, unknown>,
  warnings: RowsWarning[],
): Promise<Opened> {
  const { path } = options;
  const sql = deps.sql ?? createClient(config.store, config.statementTimeout, path);
  try {
    const request: RowsTableRequest = {
      table: config.table,
      timestamp: config.timestamp,
      ...(config.timeZone !== undefined ? { timeZone: config.timeZone } : {}),
      ...(config.key !== undefined ? { key: config.key } : {}),
      ...(typeof config.retention === 'string' ? {} : { by: config.retention.by }),
      filter: config.filter ?? [],
      children: config.children ?? [],
      ...(config.blob ? { blob: config.blob.column } : {}),
      ...(config.size !== undefined ? { size: config.size } : {}),
      ...(config.archive ? { archive: config.archive.table } : {}),
      allowSeqScan: config.allowSeqScan,
      audit: config.audit,
    };
    const inspected = await inspectRowsTable(sql, request, path, context);
    const copies = new Map<string, CopyTable>();
    if (options.backups && config.backup) {
      // Checked now, like every other table the policy names: never a runtime error mid-run.
      const backup = await copyTable(sql, config.backup.to, path('backup.to'), inspected.source, { prunable: true });
      if ('path' in backup) throw new ConfigError([backup], context);
      copies.set(config.backup.to, backup);
    }
    if (config.audit) await ensureRowAuditTable(sql).catch((error: unknown) => rethrowAuditSetup(error, path, context));
    let blobStore: Store | undefined;
    let linkedFiles: LinkedFiles | undefined;
    if (config.blob) {
      if (!deps.blobStoreFor) throw new StoreError('a blob column is configured but no blob store factory was given', context);
      blobStore = await deps.blobStoreFor(config.blob.store);
      if (options.backups && config.backup) linkedFiles = linkedFilesBackup(config.blob, blobStore, path, context);
      await blobStore.open();
    }
    warnings.splice(0, warnings.length, ...inspected.warnings);
    return {
      sql,
      shape: inspected.shape,
      source: inspected.source,
      copies,
      ...(inspected.partitionDropBlocked ? { partitionDropBlocked: inspected.partitionDropBlocked } : {}),
      ...(blobStore ? { blobStore } : {}),
      ...(linkedFiles ? { linkedFiles } : {}),
    };
  } catch (error) {
    if (!deps.sql) await sql.close();
    if (error instanceof RetentionError && !(error instanceof SqlError)) throw error;
    throw new StoreError(`${String(context.store)}: cannot inspect ${config.table}: ${describeCause(error)}`, context, { cause: error });
  }
}

/**
 * Rows backed up without their files would come back pointing at nothing (invariant 11): a
 * policy with `backup` and a linked blob needs `blob.backupTo` and a blob store that can back up.
 * The config schema refuses the first; this also covers configs built in code.
 */
function linkedFilesBackup(blob: { backupTo?: string }, store: Store, path: (field: string) => string, context: Record<string, unknown>): LinkedFiles {
  if (blob.backupTo === undefined) {
    throw ConfigError.single(path('blob.backupTo'), 'backup copies the rows but not their linked files', `add blob.backupTo: where the ${store.kind} store copies the files`, context);
  }
  if (!store.backup || !store.restore) {
    throw ConfigError.single(path('blob.store.kind'), `the ${store.kind} store cannot back up files, so rows and files could not be restored together`, 'remove backup, or keep the files in a store that backs up (fs, s3, vercel-blob)', context);
  }
  return { store, backupTo: blob.backupTo };
}

function createClient(store: PostgresStoreConfig, statementTimeout: string, path: (field: string) => string): SqlClient {
  try {
    // The client-side bound sits above the server's statement timeout, so the server's fires first.
    return createSqlClient({ url: store.url, ...(store.driver ? { driver: store.driver } : {}), queryTimeoutMs: durationMs(statementTimeout) + 5_000 });
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(error.issues.map((issue) => ({ ...issue, path: path('store.url') })), {}, { cause: error });
    throw error;
  }
}

function rethrowAuditSetup(error: unknown, path: (field: string) => string, context: Record<string, unknown>): never {
  if (error instanceof SqlError && error.context.sqlState === '42501') {
    throw new ConfigError([{ path: path('audit'), message: 'cannot create retention.row_audit (permission denied)', fix: 'create it once as an owner (see docs/architecture.md), or set "audit": false' }], context, { cause: error });
  }
  throw error;
}

/** Per-purpose SQL must mirror the engine's classification: the rule column is the configured one. */
function checkCutoffs(cutoffs: Cutoffs, shape: RowsShape, location: string): void {
  if (cutoffs.by !== undefined && cutoffs.by !== shape.by?.name) {
    throw new StoreError(`${location}: cutoffs are per "${cutoffs.by}" but the store was opened for ${shape.by ? `"${shape.by.name}"` : 'a flat retention'}`, { store: location });
  }
}

/** What a scanned row carries besides its key and timestamp, each when the shape has it. */
interface ScannedColumns {
  purpose?: string | null;
  linked?: string | null;
  size?: number | null;
}

function toItem(row: { key: string; ts: string } & ScannedColumns, shape: RowsShape): Item {
  return {
    key: row.key,
    timestamp: new Date(row.ts),
    ...(row.size === undefined || row.size === null ? {} : { size: row.size }),
    ...(row.purpose !== undefined && shape.by ? { attributes: { [shape.by.name]: row.purpose } } : {}),
    // The linked file's key, so a hold on the file path holds the row (and the file with it).
    ...(row.linked === undefined || row.linked === null ? {} : { linkedKey: row.linked }),
  };
}

/** The cursor after a scanned row: its timestamp as the column holds it (microseconds included) and its key. */
function cursorAfter(row: { key: string; ts: string; ts_raw?: string }, shape: RowsShape, location: string): string {
  const key = keyParts(shape, row.key);
  if (!key) throw new StoreError(`${location}: scanned key ${row.key} does not parse`, { store: location, key: row.key });
  return JSON.stringify({ ts: row.ts_raw ?? row.ts, key } satisfies Cursor);
}

/** Scans go along the timestamp index: a position within a purpose (from a segmented sweep) restarts them. */
function timestampPosition(position: Cursor | SegmentCursor | undefined): Cursor | undefined {
  return position && !('purpose' in position) ? position : undefined;
}

/** A checkpoint position: along the timestamp index (`{ts, key}`), or within a purpose (`{purpose, position?}`). */
function parseCursor(cursor: string, shape: RowsShape, location: string): Cursor | SegmentCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(cursor);
  } catch {
    parsed = undefined;
  }
  const asPosition = (value: unknown): Cursor | undefined => {
    const candidate = value as Partial<Cursor> | undefined;
    if (typeof candidate?.ts !== 'string' || !Array.isArray(candidate.key) || candidate.key.length !== shape.key.length || !candidate.key.every((part) => typeof part === 'string')) return undefined;
    return { ts: candidate.ts, key: candidate.key };
  };
  const segmented = parsed as { purpose?: unknown; position?: unknown } | undefined;
  if (segmented && typeof segmented === 'object' && 'purpose' in segmented && (segmented.purpose === null || typeof segmented.purpose === 'string')) {
    const position = segmented.position === undefined ? undefined : asPosition(segmented.position);
    if (segmented.position === undefined || position) return { purpose: segmented.purpose, ...(position ? { position } : {}) };
  }
  const position = asPosition(parsed);
  if (!position) throw new StoreError(`${location}: checkpoint cursor ${cursor} is not a position in (${shape.ts}, ${shape.key.join(', ')})`, { store: location, cursor });
  return position;
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

/** `postgres://host:port/database`: where, without credentials. */
function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `postgres://${parsed.hostname}${parsed.port ? `:${parsed.port}` : ''}${parsed.pathname}`;
  } catch {
    return 'postgres://(invalid url)';
  }
}

