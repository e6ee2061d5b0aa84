import * as z from 'zod';
import { type Problem, problemCheck } from '../../core/issues.ts';
import type { RetentionSpec } from '../../core/retention.ts';
import { identifierProblem, qualifiedNameProblem } from '../../sql/identifiers.ts';
import { type PostgresStoreConfig, PostgresStoreSchema } from '../../sql/schema.ts';
import type { RowFilter } from './sql.ts';

/**
 * Configuration schemas of the PostgreSQL rows and tokens stores (the connection itself is
 * sql/schema.ts). Only zod here: validating a config must not load a database driver.
 */

/** A name checked as the store will quote it (an empty one is reported once, as empty). */
const sqlName = (check: (name: string) => Problem | undefined) =>
  z
    .string()
    .min(1)
    .superRefine(problemCheck((name: string) => (name === '' ? undefined : check(name))));
/** A column name. */
const Column = sqlName(identifierProblem);
/** `schema.table` or `table`. */
const Table = sqlName(qualifiedNameProblem);
const FilterScalar = z.union([z.string(), z.number(), z.boolean()]);

/** `{ column, op, value }`: the value is always a bound parameter, never SQL. */
export const RowFilterSchema = z
  .strictObject({
    column: Column,
    op: z.enum(['=', '<>', '<', '<=', '>', '>=', 'in', 'is_null', 'not_null']),
    value: z.union([FilterScalar, z.array(FilterScalar).min(1)]).optional(),
  })
  .superRefine((filter, ctx) => {
    const problem = (message: string, fix: string) =>
      ctx.addIssue({ code: 'custom', message, path: ['value'], params: { fix } });
    const unary = filter.op === 'is_null' || filter.op === 'not_null';
    if (unary && filter.value !== undefined) problem(`"${filter.op}" takes no value`, 'remove value');
    else if (!unary && filter.value === undefined) problem(`"${filter.op}" needs a value`, 'add value');
    else if (filter.op === 'in' && !Array.isArray(filter.value))
      problem('"in" takes a list', 'write value as a list, e.g. ["a", "b"]');
    else if (filter.op !== 'in' && Array.isArray(filter.value))
      problem(`"${filter.op}" takes one value`, 'use op "in" for a list');
  });

/**
 * Fields shared by every store built on this machinery (rows, tokens). The timeout schema comes
 * from the caller: `DatabaseTimeout` (core/retention.ts: whole ms from 1ms, unlike the 1s minimum
 * of policy durations).
 */
export function sweepFields(timeout: z.ZodString) {
  return {
    /** Key columns; default: the primary key. */
    key: z.union([Column.transform((column) => [column]), z.array(Column).min(1)]).optional(),
    filter: z.array(RowFilterSchema).optional(),
    /** Column holding the row's size in bytes (e.g. of its linked file): reported as bytes freed. */
    size: Column.optional(),
    /** Also write `retention.row_audit` rows in the deleting statement (see postgresRowsAudit.ts). */
    audit: z.boolean().default(true),
    /** Run without an index that starts with the timestamp column (each batch scans the table). */
    allowSeqScan: z.boolean().default(false),
    pauseBetweenBatchesMs: z.number().int().min(0).max(60_000).default(0),
    statementTimeout: timeout.default('30s'),
    lockTimeout: timeout.default('5s'),
    /**
     * VACUUM (ANALYZE) the table after a live run that deleted at least this share of the rows in
     * its scope: outside the deleting transactions, never FULL, within what is left of the budget.
     */
    vacuum: z.strictObject({ minDeletedFraction: z.number().gt(0).max(1).default(0.1) }).optional(),
  };
}

/**
 * The rows-specific fields of a `rows` policy, to spread into its zod object next to the
 * common policy fields. A function of the timeout and blob-store schemas for the reason above.
 */
export function rowsPolicyFields<B extends z.ZodType>(schemas: { timeout: z.ZodString; blobStore: B }) {
  return {
    /** `schema.table` or `table` (search_path); names are case-sensitive, as in the catalog. */
    table: Table,
    /** timestamptz column, or timestamp read in `timeZone` (default UTC). */
    timestamp: Column,
    /** Checked against PostgreSQL's own list when the store opens. */
    timeZone: z.string().min(1).optional(),
    ...sweepFields(schemas.timeout),
    /** Tables whose `column` holds this table's key: their rows go first, in the same transaction. */
    children: z.array(z.strictObject({ table: Table, column: Column })).optional(),
    /**
     * A column naming a file in `store`: the file is deleted before its row. With `backup`, the
     * files are copied to `backupTo` (a location of `store`'s kind: a directory for fs,
     * `s3://bucket/prefix` for S3, a pathname prefix for Vercel Blob) with their rows, so a
     * restore brings both back.
     */
    blob: z
      .strictObject({ column: Column, store: schemas.blobStore, backupTo: z.string().min(1).optional() })
      .optional(),
    /** Deleted rows are moved here (same columns), in the deleting statement. */
    archive: z.strictObject({ table: Table }).optional(),
  };
}

/** Everything the store reads of a `rows` policy (the parsed policy satisfies it). */
export interface RowsStoreConfig<BlobConfig = unknown> {
  name: string;
  retention: RetentionSpec;
  store: PostgresStoreConfig;
  table: string;
  timestamp: string;
  timeZone?: string;
  key?: string[];
  filter?: RowFilter[];
  children?: Array<{ table: string; column: string }>;
  blob?: { column: string; store: BlobConfig; backupTo?: string };
  size?: string;
  archive?: { table: string };
  /** A copy table (`to`), pruned of copies older than `keepFor`. */
  backup?: { to: string; keepFor: string };
  audit: boolean;
  allowSeqScan: boolean;
  pauseBetweenBatchesMs: number;
  statementTimeout: string;
  lockTimeout: string;
  vacuum?: { minDeletedFraction: number };
}

/**
 * The store of a `tokens` policy kept in PostgreSQL: the connection and the table of
 * credentials, whose expiry column is the timestamp (the policy's retention is the grace after
 * expiry). The table lives in the store config, next to the connection, as for other token stores.
 */
export function postgresTokensStoreSchema(schemas: { timeout: z.ZodString }) {
  return z.strictObject({
    ...PostgresStoreSchema.shape,
    table: Table,
    /** timestamptz (or timestamp, read in UTC) expiry column; NULL = never expires. */
    expiresAt: Column.default('expires_at'),
    ...sweepFields(schemas.timeout),
  });
}
export type PostgresTokensStoreConfig = z.output<ReturnType<typeof postgresTokensStoreSchema>>;
