import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startTestPostgres, type TestPostgres } from './postgres.ts';

/**
 * Registers beforeAll/afterAll hooks for a test file that needs a throwaway PostgreSQL server and
 * a scratch directory; both are removed afterwards. Read them inside tests (after beforeAll ran).
 */
export function usePostgresAndScratch(prefix: string): { readonly server: TestPostgres; readonly scratch: string } {
  let server: TestPostgres | undefined;
  let scratch: string | undefined;
  beforeAll(async () => {
    [server, scratch] = await Promise.all([startTestPostgres(), mkdtemp(path.join(os.tmpdir(), prefix))]);
  });
  afterAll(async () => {
    await server?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });
  return {
    get server() {
      if (!server) throw new Error('usePostgresAndScratch: server used before beforeAll ran');
      return server;
    },
    get scratch() {
      if (!scratch) throw new Error('usePostgresAndScratch: scratch used before beforeAll ran');
      return scratch;
    },
  };
}
