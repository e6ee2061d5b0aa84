import { spawn } from 'node:child_process';
import pg from 'pg';
import { BIN } from './cli.ts';

/**
 * The killing side of a crash trial: `retention run` as a real child process in its own process
 * group, killed with SIGKILL as a whole at a chosen moment.
 */
export type Phase = 'startup' | 'before first batch' | 'sweep' | 'after sweep' | 'exited';

/** When to kill: `delayMs` after spawn, after the `run_started` line, or after the `count`-th `batch_deleted` line. */
export type KillPoint =
  | { after: 'spawn' | 'run_started'; delayMs: number }
  | { after: 'batch_deleted'; count: number; delayMs: number };

export interface KilledRun {
  /** Where the run was when the kill was sent (`exited`: it finished first). */
  phase: Phase;
  batchesSeen: number;
  runId: string | undefined;
  spawnedAt: number;
  /** When SIGKILL was sent, or when the run exited on its own. */
  endedAt: number;
  /** Spawn → `run_started` → first `batch_deleted`, and the mean time between batches (calibrate kill points). */
  runStartedMs: number | undefined;
  firstBatchMs: number | undefined;
  meanBatchMs: number | undefined;
  stderr: string;
}

interface RunWatch {
  runId: string | undefined;
  runStartedMs: number | undefined;
  batches: number;
  batchTimes: number[];
  completed: boolean;
}

function phaseOf(watch: RunWatch): Phase {
  if (watch.completed) return 'after sweep';
  if (watch.batches > 0) return 'sweep';
  return watch.runId === undefined ? 'startup' : 'before first batch';
}

/**
 * Starts `retention run` with `args` (`detached`: a process group of its own, as a service manager
 * would start it) and kills the whole group with SIGKILL at `kill` (never, if undefined). `appName`
 * tags its database sessions (PGAPPNAME) so the trial can wait until the server has noticed the death.
 */
export function runAndKill(
  args: string[],
  env: Record<string, string>,
  appName: string,
  kill: KillPoint | undefined,
): Promise<KilledRun> {
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, RETENTION_LOG_LEVEL: 'info', ...env, PGAPPNAME: appName },
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const watch: RunWatch = { runId: undefined, runStartedMs: undefined, batches: 0, batchTimes: [], completed: false };
  let stderr = '';
  let partial = '';
  let killed: { phase: Phase; batches: number; at: number } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const killGroup = (): void => {
    if (killed || child.exitCode !== null) return;
    killed = { phase: phaseOf(watch), batches: watch.batches, at: Date.now() };
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // ESRCH: the group is already gone; the exit handler records that.
    }
  };
  const arm = (delayMs: number): void => void (timer = setTimeout(killGroup, delayMs));
  if (kill?.after === 'spawn') arm(kill.delayMs);
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as { event?: string; correlation_id?: string };
      if (entry.event === 'run_started') {
        watch.runId = entry.correlation_id;
        watch.runStartedMs = Date.now() - spawnedAt;
        if (kill?.after === 'run_started') arm(kill.delayMs);
      } else if (entry.event === 'run_completed') watch.completed = true;
      else if (entry.event === 'batch_deleted') {
        watch.batches += 1;
        watch.batchTimes.push(Date.now() - spawnedAt);
        if (kill?.after === 'batch_deleted' && watch.batches === kill.count) arm(kill.delayMs);
      }
    }
  });
  return new Promise((resolve) => {
    child.once('close', () => {
      clearTimeout(timer);
      const times = watch.batchTimes;
      resolve({
        phase: killed?.phase ?? 'exited',
        batchesSeen: killed?.batches ?? watch.batches,
        runId: watch.runId,
        spawnedAt,
        endedAt: killed?.at ?? Date.now(),
        runStartedMs: watch.runStartedMs,
        firstBatchMs: times[0],
        meanBatchMs: times.length > 1 ? (times.at(-1)! - times[0]!) / (times.length - 1) : undefined,
        stderr,
      });
    });
  });
}

/**
 * Waits (at most 10 s) until the server has no session of the killed process left: a session
 * inside a transaction holds its row locks until the server notices the dead client, and the
 * next run would skip those rows as "in use" (kept, retried next run) rather than recover them.
 */
export async function waitForSessionsToEnd(adminUrl: string, appName: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const { rows } = await admin.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [appName],
      );
      if (rows[0]!.n === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`sessions of the killed run (${appName}) still open after 10 s`);
  } finally {
    await admin.end();
  }
}
