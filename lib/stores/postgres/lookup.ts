import type { ItemLookup } from '../../core/store.ts';
import type { Item } from '../../core/types.ts';
import { SqlError } from '../../errors.ts';
import type { SqlClient } from '../../sql/client.ts';
import type { TableAccess } from './capabilities.ts';
import { toItem } from './cursors.ts';
import { keyParts, parseKeys, type RowsShape, RowsSql, type Statement, sizeColumn } from './sql.ts';

/** How long a search of the (unindexed) linked-file column may take before the lookup gives up. */
const LINKED_LOOKUP_TIMEOUT_MS = 5_000;
/** Rows sharing one linked file that a lookup returns: enough to say which rows, not a listing. */
const LINKED_ROWS = 10;

/**
 * A row in scope by its key (one index lookup), and, for tables with a linked file, the rows
 * whose file is `key` (invariant 9: an operator names a document by its file path as often as
 * by its id). The file column is not indexed: that search is bounded by a statement timeout.
 */
export function rowsLookup(access: TableAccess): ItemLookup {
  return {
    find: (key: string) =>
      access.guarded('lookup', async ({ sql, shape }) => {
        const byKey = keyParts(shape, key) ? await rowsByKey(sql, shape, key) : [];
        if (!shape.blob) return byKey;
        const byFile = await sql.transaction(async (tx) => {
          await tx.query(`SELECT set_config('statement_timeout', $1, true)`, [String(LINKED_LOOKUP_TIMEOUT_MS)]);
          const statement = lookupStatement(shape, 'file', key);
          return tx.query<LookedUp>(statement.text, statement.params);
        });
        const seen = new Set(byKey.map((item) => item.key));
        return [...byKey, ...byFile.map((row) => toItem(row, shape)).filter((item) => !seen.has(item.key))];
      }),
  };
}

interface LookedUp {
  key: string;
  ts: string;
  purpose?: string | null;
  linked?: string | null;
  size?: number | null;
}

/** A key that is not a value of the key column's type (`abc` for a bigint id) names no row. */
async function rowsByKey(sql: SqlClient, shape: RowsShape, key: string): Promise<Item[]> {
  const statement = lookupStatement(shape, 'key', key);
  try {
    return (await sql.query<LookedUp>(statement.text, statement.params)).map((row) => toItem(row, shape));
  } catch (error) {
    // SQLSTATE class 22, data exception: invalid_text_representation, invalid_datetime_format, …
    if (error instanceof SqlError && String(error.context.sqlState).startsWith('22')) return [];
    throw error;
  }
}

/** The row(s) in scope `key` names, by its key or its linked file, with what a scan reads of each. */
function lookupStatement(shape: RowsShape, by: 'key' | 'file', key: string): Statement {
  const sql = new RowsSql(shape);
  const purpose = shape.by ? `, t.${shape.by.column}::text AS purpose` : '';
  const linked = shape.blob ? `, t.${shape.blob}::text AS linked` : '';
  const columns = `${sql.keyText()} AS key, to_jsonb(${sql.rowTime()}) #>> '{}' AS ts${purpose}${linked}${sizeColumn(shape)}`;
  if (by === 'file') {
    return sql.statement(
      `SELECT ${columns} FROM ${shape.table} AS t
        WHERE t.${shape.blob}::text = ${sql.param(key, 'text')} AND ${sql.filter()}
        ORDER BY ${sql.keyText()} LIMIT ${sql.param(LINKED_ROWS)}`,
    );
  }
  const { batch } = parseKeys(shape, [key]);
  const { from, where } = sql.lookup(batch);
  return sql.statement(`WITH ${sql.input(batch)} SELECT ${columns} FROM ${from} WHERE ${where} AND ${sql.filter()}`);
}
