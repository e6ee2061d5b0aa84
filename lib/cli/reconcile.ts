import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import type { RunOptions } from '../engine/options.ts';
import { type ReconcileReport, reconcileMode, reconcilePolicy } from '../engine/reconcile.ts';
import { ConfigError } from '../errors.ts';
import { createStore } from '../stores/registry.ts';
import { type Session, selectPolicies } from './context.ts';
import { parseDurationFlag } from './flags.ts';
import { table } from './format.ts';
import { exitCodeFor, parseRunFlags, printReports } from './run.ts';

export interface ReconcileFlags {
  policy?: string[];
  grace?: string;
  delete?: boolean;
  dryRun?: boolean;
  limit?: string;
  budget?: string;
  force?: boolean;
  json?: boolean;
  strict?: boolean;
}

export interface ReconcileRequest {
  policy: PolicyConfig;
  /** As the rule names it (`24h`). */
  grace: string;
  options: Omit<RunOptions, 'deadline'>;
  json: boolean;
  strict: boolean;
}

const DEFAULT_GRACE = '24h';
/** A file younger than this may be mid-upload, its row not committed yet. */
const MIN_GRACE_MS = 3_600_000;

/** Flags checked against the config before anything opens (exit 2, nothing touched). */
export function parseReconcileFlags(config: RetentionConfig, flags: ReconcileFlags): ReconcileRequest {
  const selected = selectPolicies(config, flags.policy, false);
  if (selected.length !== 1)
    throw ConfigError.single('--policy', `${selected.length} policies named`, 'reconcile one policy at a time');
  const policy = selected[0]!;
  reconcileMode(policy, '--policy');
  const graceMs = parseDurationFlag('--grace', flags.grace ?? DEFAULT_GRACE)!;
  if (graceMs < MIN_GRACE_MS)
    throw ConfigError.single(
      '--grace',
      `${flags.grace} is shorter than 1h`,
      'use at least 1h, default 24h: a younger file may be mid-upload, its row not committed yet',
    );
  return {
    policy,
    grace: flags.grace ?? DEFAULT_GRACE,
    options: parseRunFlags({ ...flags, dryRun: !flags.delete || (flags.dryRun ?? false), list: true }, 'reconcile'),
    json: flags.json ?? false,
    strict: flags.strict ?? false,
  };
}

/** Lists (or with `--delete` deletes through the engine) the policy's orphans; exit codes as `retention run`. */
export async function reconcileCommand(
  session: Session,
  request: ReconcileRequest,
  signal: AbortSignal,
): Promise<number> {
  const { policy } = request;
  const store = await createStore(policy);
  try {
    await store.open().catch((error: unknown) => {
      throw error instanceof ConfigError ? error.within(`policies[${session.config.policies.indexOf(policy)}]`) : error;
    });
    const report = await reconcilePolicy(
      policy,
      request.grace,
      { ...request.options, signal },
      {
        control: session.control,
        store,
        clock: session.clock,
        log: session.log,
        actor: session.actor,
        ...(session.leaseTtlMs ? { leaseTtlMs: session.leaseTtlMs } : {}),
      },
    );
    if (request.json) session.io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else printReconcile(session, report);
    return exitCodeFor([report.run], request.strict);
  } finally {
    await store.close();
  }
}

function printReconcile(session: Session, report: ReconcileReport): void {
  const { io } = session;
  const what = report.mode === 'orphans' ? 'files no row names' : 'sidecars whose main file is gone';
  const dry = report.dryRun ? ' (dry run: --delete deletes them)' : '';
  io.stdout.write(`${report.policy}: ${what} in ${report.store}, older than ${report.grace}${dry}\n`);
  const { files } = report;
  io.stdout.write(
    `  files listed ${files.files}, younger than ${report.grace} ${files.young}, still needed ${files.needed}\n\n`,
  );
  printReports(io, [report.run], { list: true });
  const missing = report.rowsWithoutFile;
  if (!missing) return;
  io.stdout.write(
    `\nrows whose file is gone: ${missing.count}${missing.truncated ? ` (first ${missing.rows.length})` : ''}\n`,
  );
  if (missing.rows.length > 0)
    io.stdout.write(
      `${table(
        ['key', 'timestamp', 'file'],
        missing.rows.map((row) => [row.key, row.timestamp, row.file]),
      )}\n`,
    );
}
