import { ConfigError } from '../errors.ts';

/**
 * The ONE place SQL identifiers are quoted: values are always bound parameters, and names from
 * config (schemas, tables, columns) pass through here, never straight into SQL text.
 * Names are taken literally, as they appear in the catalog (case-sensitive, not SQL syntax):
 * `quoteIdent('Events')` is `"Events"`, and a `"` inside a name is doubled.
 */

/** PostgreSQL silently truncates longer names (NAMEDATALEN - 1), which could name another table. */
const MAX_IDENTIFIER_BYTES = 63;

export function quoteIdent(name: string): string {
  if (name.length === 0) {
    throw ConfigError.single('identifier', 'an SQL identifier is empty', 'give the schema, table or column name');
  }
  if (name.includes('\0')) {
    throw ConfigError.single('identifier', `"${name.replaceAll('\0', '\\0')}" contains a NUL character`, 'remove it');
  }
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw ConfigError.single('identifier', `"${name}" is longer than ${MAX_IDENTIFIER_BYTES} bytes`, 'PostgreSQL would truncate it; use the real name');
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/** `schema.table` → `"schema"."table"`; a bare `table` → `"table"` (resolved by search_path). */
export function quoteQualified(qualifiedName: string): string {
  const parts = qualifiedName.split('.');
  if (parts.length > 2) {
    throw ConfigError.single('identifier', `"${qualifiedName}" has more than one dot`, 'write it as schema.table');
  }
  return parts.map(quoteIdent).join('.');
}
