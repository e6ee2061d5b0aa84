import * as z from 'zod';
import { type Problem, problemCheck } from '../core/issues.ts';

/**
 * A PostgreSQL connection as configured: the store of a `rows` or `tokens` policy and the
 * PostgreSQL control store take the same fields. Only zod here: no driver is loaded.
 */
const URL_FIX = 'use postgres://user:password@host:5432/database';

/**
 * A postgres:// URL naming its server: without a host node-postgres would quietly try localhost.
 * The URL holds a password, so no message echoes it.
 */
function postgresUrlProblem(text: string): Problem | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { message: 'is not a URL', fix: URL_FIX };
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return { message: `is a ${url.protocol.slice(0, 20)} URL, not postgres://`, fix: URL_FIX };
  }
  // `?host=/var/run/postgresql` names a socket directory instead.
  if (url.hostname !== '' || url.searchParams.has('host')) return undefined;
  return { message: 'has no host', fix: 'name the server: postgres://user:password@host:5432/database' };
}

/** The store of a `rows` policy: `{ kind: 'postgres', url, driver? }`; a `*.neon.tech` host uses the Neon driver. */
export const PostgresStoreSchema = z.strictObject({
  kind: z.literal('postgres'),
  url: z.string().superRefine(problemCheck(postgresUrlProblem)),
  driver: z.enum(['pg', 'neon']).optional(),
});
export type PostgresStoreConfig = z.output<typeof PostgresStoreSchema>;
