import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration and e2e tests start real servers (PostgreSQL, …); two cores on CI.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    // Test suite only: the embedded PostgreSQL of the CLIs the tests start skips fsync (durable
    // everywhere else; test/integration/embedded.test.ts checks both).
    env: { RETENTION_EMBEDDED_FSYNC: 'off' },
  },
});
