import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runConcurrentClis } from '../support/concurrentClis.ts';
import { useFreshHomes } from '../support/embeddedHome.ts';

/** The 100-process version is `npm run test:concurrency` (test/stress/embedded-clis.ts). */
const PROCESSES = 20;
const newHome = useFreshHomes('retention-concurrent-');
let scratch = '';
afterEach(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('concurrent CLIs on one RETENTION_HOME', () => {
  it(`${PROCESSES} processes share the embedded server: each prints its report and exits with its code`, async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'retention-concurrent-scratch-'));
    const figures = await runConcurrentClis(await newHome(), scratch, PROCESSES);
    expect(figures.broken).toEqual([]);
    expect(Object.values(figures.outcomes).reduce((sum, n) => sum + n, 0)).toBe(PROCESSES);
    expect(figures.outcomes['plan completed']).toBe(PROCESSES / 2);
    expect(figures.deletedOnDisk).toBe(200);
    expect(figures.deletedByRuns).toBe(figures.deletedOnDisk);
    expect(figures.serverStillRunning).toBe(false);
    expect(figures.clientsLeft).toBe(0);
  }, 240_000);
});
