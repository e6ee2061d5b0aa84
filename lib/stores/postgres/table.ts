import { durationMs } from '../../core/durations.ts';
import type { Store } from '../../core/store.ts';
import type { Cutoffs } from '../../core/types.ts';
import { ConfigError, describeCause, RetentionError, SqlError, StoreError } from '../../errors.ts';
import { createSqlClient, type SqlClient } from '../../sql/client.ts';
import type { PostgresStoreConfig } from '../../sql/schema.ts';
import { copyTable, inspectRowsTable, type RowsTableRequest, type RowsWarning, type SourceTable } from './catalog.ts';
import type { LinkedFiles } from './copies.ts';
import { ensureRowAuditTable } from './rowAudit.ts';
import type { RowsStoreConfig } from './schema.ts';
import type { RowsShape } from './sql.ts';
import type { CopyTable } from './writeSql.ts';

/**
 * Opening a rows store: the table inspected against the policy (columns, indexes, keys), every
 * copy table and the audit table checked, the linked files' store opened. Everything the policy
 * names is checked here, never as a runtime error mid-run.
 */
export interface RowsStoreDeps<BlobConfig = unknown> {
  /** Injected client (tests, a shared pool); the store closes only a client it created. */
  sql?: SqlClient;
  /** Builds the blob store of `blob.store` (the stores registry, which loads stores lazily). */
  blobStoreFor?: (config: BlobConfig) => Store | Promise<Store>;
}

export interface TableStoreOptions {
  /** Maps a field of the rows policy to where the operator wrote it, for ConfigError paths. */
  path: (field: string) => string;
  /** Offer backup/restore through copy tables (not for credentials: a copy would defeat deleting them). */
  backups: boolean;
}

export interface OpenedTable {
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

export async function openTable<BlobConfig>(
  config: RowsStoreConfig<BlobConfig>,
  deps: RowsStoreDeps<BlobConfig>,
  options: TableStoreOptions,
  context: Record<string, unknown>,
  warnings: RowsWarning[],
): Promise<OpenedTable> {
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
    if (config.audit)
      await ensureRowAuditTable(sql, config.name).catch((error: unknown) => rethrowAuditSetup(error, path, context));
    let blobStore: Store | undefined;
    let linkedFiles: LinkedFiles | undefined;
    if (config.blob) {
      if (!deps.blobStoreFor)
        throw new StoreError('a blob column is configured but no blob store factory was given', context);
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
    throw new StoreError(`${String(context.store)}: cannot inspect ${config.table}: ${describeCause(error)}`, context, {
      cause: error,
    });
  }
}

/**
 * Rows backed up without their files would come back pointing at nothing (invariant 11): a
 * policy with `backup` and a linked blob needs `blob.backupTo` and a blob store that can back up.
 * The config schema refuses the first; this also covers configs built in code.
 */
function linkedFilesBackup(
  blob: { backupTo?: string },
  store: Store,
  path: (field: string) => string,
  context: Record<string, unknown>,
): LinkedFiles {
  if (blob.backupTo === undefined) {
    throw ConfigError.single(
      path('blob.backupTo'),
      'backup copies the rows but not their linked files',
      `add blob.backupTo: where the ${store.kind} store copies the files`,
      context,
    );
  }
  if (!store.backups) {
    throw ConfigError.single(
      path('blob.store.kind'),
      `the ${store.kind} store cannot back up files, so rows and files could not be restored together`,
      'remove backup, or keep the files in a store that backs up (fs, s3, vercel-blob)',
      context,
    );
  }
  return { store, backups: store.backups, backupTo: blob.backupTo };
}

function createClient(
  store: PostgresStoreConfig,
  statementTimeout: string,
  path: (field: string) => string,
): SqlClient {
  try {
    // The client-side bound sits above the server's statement timeout, so the server's fires first.
    return createSqlClient({
      url: store.url,
      ...(store.driver ? { driver: store.driver } : {}),
      queryTimeoutMs: durationMs(statementTimeout) + 5_000,
    });
  } catch (error) {
    if (error instanceof ConfigError)
      throw new ConfigError(
        error.issues.map((issue) => ({ ...issue, path: path('store.url') })),
        {},
        { cause: error },
      );
    throw error;
  }
}

function rethrowAuditSetup(error: unknown, path: (field: string) => string, context: Record<string, unknown>): never {
  if (error instanceof SqlError && error.context.sqlState === '42501') {
    throw new ConfigError(
      [
        {
          path: path('audit'),
          message: 'cannot create retention.row_audit (permission denied)',
          fix: 'create it once as an owner (see docs/architecture.md), or set "audit": false',
        },
      ],
      context,
      { cause: error },
    );
  }
  throw error;
}

/** `postgres://host:port/database`: where, without credentials. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `postgres://${parsed.hostname}${parsed.port ? `:${parsed.port}` : ''}${parsed.pathname}`;
  } catch {
    return 'postgres://(invalid url)';
  }
}

/** Per-purpose SQL must mirror the engine's classification: the rule column is the configured one. */
export function checkCutoffs(cutoffs: Cutoffs, shape: RowsShape, location: string): void {
  if (cutoffs.by !== undefined && cutoffs.by !== shape.by?.name) {
    throw new StoreError(
      `${location}: cutoffs are per "${cutoffs.by}" but the store was opened for ${shape.by ? `"${shape.by.name}"` : 'a flat retention'}`,
      { store: location },
    );
  }
}
