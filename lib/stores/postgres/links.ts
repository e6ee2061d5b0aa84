import type { LinkedFileIndex, LinkedRowsPage } from '../../core/store.ts';
import { StoreError } from '../../errors.ts';
import type { TableAccess } from './capabilities.ts';
import { keyParts, type RowsShape, RowsSql, type Statement } from './sql.ts';

/**
 * A rows table's links to its files, for `retention reconcile`: which file keys some row names
 * (a file no row names is an orphan) and the rows that name a file (whose file may be gone).
 * Offered by stores of tables with a `blob` column only.
 */
export function rowsLinks(access: TableAccess): LinkedFileIndex {
  const { config, location } = access;
  const blob = config.blob!;
  return {
    column: `${config.table}.${blob.column}`,
    files: () =>
      access.guarded('linked files', async (table) => {
        if (!table.blobStore) throw new StoreError(`${location}: no linked blob store`, access.errorContext);
        return table.blobStore;
      }),
    referenced: (keys) =>
      access.guarded('referenced', async ({ sql, shape }) => {
        if (keys.length === 0) return new Set<string>();
        const statement = referencedStatement(shape, keys);
        const rows = await sql.query<{ key: string }>(statement.text, statement.params);
        return new Set(rows.map((row) => row.key));
      }),
    links: ({ cursor, limit }) =>
      access.guarded('links', async ({ sql, shape }): Promise<LinkedRowsPage> => {
        const after = cursor === undefined ? undefined : parseKeyCursor(cursor, location);
        const statement = linkedRowsStatement(shape, after, limit);
        const rows = await sql.query<{ key: string; ts: string; linked: string }>(statement.text, statement.params);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        const lastParts = last ? keyParts(shape, last.key) : undefined;
        if (last && !lastParts)
          throw new StoreError(`${location}: key ${last.key} does not parse`, { store: location, key: last.key });
        return {
          rows: page.map((row) => ({ key: row.key, timestamp: new Date(row.ts), linkedKey: row.linked })),
          ...(lastParts ? { cursor: JSON.stringify(lastParts) } : cursor === undefined ? {} : { cursor }),
          done: rows.length <= limit,
        };
      }),
  };
}

/**
 * The keys among `keys` that some row of the table names in its file column: every row, in the
 * policy's scope or not (a row the policy does not govern still needs its file). One statement
 * per batch: with an index on the file column one probe per key, without one a single pass over
 * the table (a hashed semi-join), never one pass per key.
 */
export function referencedStatement(shape: RowsShape, keys: string[]): Statement {
  const sql = new RowsSql(shape);
  return sql.statement(
    `SELECT f.key FROM unnest(${sql.param(keys, 'text[]')}) AS f(key)
      WHERE EXISTS (SELECT 1 FROM ${shape.table} AS t WHERE t.${shape.blob}::text = f.key)`,
  );
}

/**
 * Rows in the policy's scope whose file column is set, in key order from strictly after `after`
 * (the key column texts; untyped parameters, read as the columns' own types), one past `limit`
 * to tell the last page without another round trip. The key's unique index drives the walk.
 */
export function linkedRowsStatement(shape: RowsShape, after: string[] | undefined, limit: number): Statement {
  const sql = new RowsSql(shape);
  const keyColumns = shape.key.map((column) => `t.${column}`).join(', ');
  const from = after ? ` AND (${keyColumns}) > (${after.map((part) => sql.param(part)).join(', ')})` : '';
  return sql.statement(
    `SELECT ${sql.keyText()} AS key, to_jsonb(${sql.rowTime()}) #>> '{}' AS ts, t.${shape.blob}::text AS linked
       FROM ${shape.table} AS t
      WHERE t.${shape.blob} IS NOT NULL AND ${sql.filter()}${from}
      ORDER BY ${keyColumns} LIMIT ${sql.param(limit + 1)}`,
  );
}

function parseKeyCursor(cursor: string, location: string): string[] {
  try {
    const parts: unknown = JSON.parse(cursor);
    if (Array.isArray(parts) && parts.every((part) => typeof part === 'string')) return parts as string[];
  } catch {
    // Reported below, with the cursor.
  }
  throw new StoreError(`${location}: ${cursor} is not a position in the table's key`, { store: location, cursor });
}
