import { ConfigError, clip } from '../errors.ts';

/**
 * The ONE place SQL identifiers are quoted: values are always bound parameters, and names from
 * config (schemas, tables, columns) pass through here, never straight into SQL text.
 * Names are taken literally, as they appear in the catalog (case-sensitive, not SQL syntax):
 * `quoteIdent('Events')` is `"Events"`, and a `"` inside a name is doubled.
 */

/** PostgreSQL silently truncates longer names (NAMEDATALEN - 1), which could name another table. */
const MAX_IDENTIFIER_BYTES = 63;

/** What is wrong with `name` as one identifier, if anything; the config schema reports it at its field. */
export function identifierProblem(name: string): { message: string; fix: string } | undefined {
  if (name.length === 0) return { message: 'an SQL identifier is empty', fix: 'give the schema, table or column name' };
  const shown = `"${clip(name).replaceAll('\0', '\\0')}"`;
  if (name.includes('\0')) return { message: `${shown} contains a NUL character`, fix: 'remove it' };
  if (Buffer.byteLength(name, 'utf8') <= MAX_IDENTIFIER_BYTES) return undefined;
  return {
    message: `${shown} is longer than ${MAX_IDENTIFIER_BYTES} bytes`,
    fix: 'PostgreSQL would truncate it; use the real name',
  };
}

/** `schema.table` or `table`: at most one dot, each part an identifier. */
export function qualifiedNameProblem(qualifiedName: string): { message: string; fix: string } | undefined {
  const parts = qualifiedName.split('.');
  if (parts.length > 2)
    return { message: `"${clip(qualifiedName)}" has more than one dot`, fix: 'write it as schema.table' };
  return parts.map(identifierProblem).find((problem) => problem !== undefined);
}

export function quoteIdent(name: string): string {
  const problem = identifierProblem(name);
  if (problem) throw ConfigError.single('identifier', problem.message, problem.fix);
  return `"${name.replaceAll('"', '""')}"`;
}

/** `schema.table` → `"schema"."table"`; a bare `table` → `"table"` (resolved by search_path). */
export function quoteQualified(qualifiedName: string): string {
  const problem = qualifiedNameProblem(qualifiedName);
  if (problem) throw ConfigError.single('identifier', problem.message, problem.fix);
  return qualifiedName.split('.').map(quoteIdent).join('.');
}
