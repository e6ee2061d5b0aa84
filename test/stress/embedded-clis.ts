/**
 * `npm run test:concurrency [-- --processes 100]`: the proof the issue asks for, too heavy for
 * `npm test` (each CLI is a Node process of ~110 MB). N CLIs at once on one fresh
 * $RETENTION_HOME, half `run`, half `plan`; prints the figures as JSON and exits 1 if any process
 * broke the contract (no report, or an exit code other than its run's). `npm test` runs 20
 * (test/e2e/embedded-concurrency.test.ts).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runConcurrentClis } from '../support/concurrentClis.ts';
import { createHome, removeHome } from '../support/embeddedHome.ts';

const { values } = parseArgs({ options: { processes: { type: 'string', default: '100' } } });
const processes = Number(values.processes);
if (!Number.isSafeInteger(processes) || processes < 2) {
  console.error(`error: --processes: "${values.processes}" is not a whole number of at least 2 (e.g. --processes 100)`);
  process.exit(2);
}

/** MemAvailable in MiB, sampled while the CLIs run: how close the machine came to running out. */
function availableMiB(): number {
  const kib = /MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return Number(kib ?? 0) / 1024;
}

const home = await createHome('retention-stress-');
const scratch = await mkdtemp(path.join(os.tmpdir(), 'retention-stress-scratch-'));
const before = availableMiB();
let lowest = before;
const sampler = setInterval(() => (lowest = Math.min(lowest, availableMiB())), 200);
try {
  const figures = await runConcurrentClis(home, scratch, processes);
  const memory = {
    availableBeforeMiB: Math.round(before),
    lowestAvailableMiB: Math.round(lowest),
    peakUseMiB: Math.round(before - lowest),
  };
  const wallSeconds = Math.round(figures.wallSeconds * 10) / 10;
  console.log(
    JSON.stringify({ ...figures, wallSeconds, memory, fsync: process.env.RETENTION_EMBEDDED_FSYNC ?? 'on' }, null, 2),
  );
  const leftovers = figures.serverStillRunning || figures.clientsLeft > 0;
  const failed = figures.broken.length > 0 || leftovers || figures.deletedByRuns !== figures.deletedOnDisk;
  process.exitCode = failed ? 1 : 0;
} finally {
  clearInterval(sampler);
  await removeHome(home);
  await rm(scratch, { recursive: true, force: true });
}
