import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseConfig } from '../../lib/config/load.ts';
import type { PostgresControlStore } from '../../lib/control/postgres/store.ts';
import { systemClock } from '../../lib/core/types.ts';
import { runPolicy } from '../../lib/engine/run.ts';
import { silentLogger } from '../../lib/observe/log.ts';
import { createStore } from '../../lib/stores/registry.ts';
import { BIN } from '../../test/support/cli.ts';
import type { ProxyStats } from './latencyProxy.ts';

/** One measured scenario: what it deleted, how long it took, what the proxy saw. */
export interface Measured {
  deleted: number;
  seconds: number;
  proxy: ProxyStats;
  /** The bench process's peak RSS during the scenario (in-process scenarios only). */
  peakRssMb?: number;
  /** CLI only: the same command against an empty store, subtracted for the net figures. */
  fixedSeconds?: number;
}

export const RETENTION = '30d';

/**
 * The policy every project scenario runs: default settings (batchSize, deleteConcurrency, …
 * from the schema), except the safety limits: their defaults (10,000 deletes a run, half the
 * scope) would rightly refuse to delete 20,000 of 22,000 objects, and a refusal measures nothing.
 */
export function benchPolicy(name: string, store: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    class: 'blobs',
    store,
    retention: RETENTION,
    schedule: '0 3 * * *',
    limits: { maxDeletesPerRun: 100_000_000, maxDeleteFraction: 1 },
  };
}

/** Times `work`, sampling this process's RSS meanwhile. */
export async function timed(
  work: () => Promise<number>,
): Promise<{ deleted: number; seconds: number; peakRssMb: number }> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const started = performance.now();
  try {
    const deleted = await work();
    return {
      deleted,
      seconds: (performance.now() - started) / 1000,
      peakRssMb: Math.round(Math.max(peak, process.memoryUsage().rss) / 1e6),
    };
  } finally {
    clearInterval(sampler);
  }
}

/** runPolicy in this process, audit trail in PostgreSQL, as the Lambda handler runs it. */
export async function engineRun(control: PostgresControlStore, policyConfig: Record<string, unknown>): Promise<number> {
  const [policy] = parseConfig({ policies: [policyConfig] }).policies;
  const report = await runPolicy(
    policy!,
    { trigger: 'manual', dryRun: false, force: false, list: false },
    { control, store: await createStore(policy!), clock: systemClock, log: silentLogger, actor: 'bench' },
  );
  if (report.status !== 'completed') throw new Error(`engine run ended ${report.status}: ${report.error?.message}`);
  return report.deleted;
}

/**
 * The real CLI in a child process, as an operator runs it: `retention --config <file> run
 * --policy <name> --json`. Returns its wall time, from spawn to exit.
 */
export async function cliRun(
  scratch: string,
  policyConfig: Record<string, unknown>,
  env: Record<string, string>,
): Promise<{ deleted: number; seconds: number }> {
  const config = path.join(scratch, `${policyConfig.name}.json`);
  await writeFile(config, JSON.stringify({ policies: [policyConfig] }));
  const started = performance.now();
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
    execFile(
      process.execPath,
      [BIN, '--config', config, 'run', '--policy', String(policyConfig.name), '--json'],
      { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (error, out, stderr) =>
        error ? reject(new Error(`CLI failed: ${error.message}\n${stderr}`)) : resolve({ stdout: out }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const report = JSON.parse(stdout) as { status: string; deleted: number };
  if (report.status !== 'completed') throw new Error(`CLI run ended ${report.status}`);
  return { deleted: report.deleted, seconds };
}
