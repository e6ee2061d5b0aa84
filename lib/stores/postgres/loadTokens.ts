import type { PostgresTokensConfig } from './tokens.ts';

/** The tokens store's code and the PostgreSQL drivers, loaded when a store opens. */
export async function loadPostgresTokensStore() {
  const { createPostgresTokensStore } = await import('./tokens.ts');
  return (policy: PostgresTokensConfig) => createPostgresTokensStore(policy);
}
