import { Command, CommanderError, Option } from 'commander';
import type { RetentionConfig } from '../config/schema.ts';
import { ConfigError, describeCause, RetentionError } from '../errors.ts';
import { redactText } from '../redact.ts';
import { registerAttention } from './attention.ts';
import type { AuditVerifyFlags } from './auditVerify.ts';
import { type CliIO, loadCliConfig, type Session, withSession } from './context.ts';
import type { DaemonFlags } from './daemon.ts';
import { collect, formatCommanderError } from './flags.ts';
import type { InvokeFlags } from './invoke.ts';
import type { ReconcileFlags, ReconcileRequest } from './reconcile.ts';
import { exitCodeFor, parseRunFlags, printReports, type RunFlags, runPolicies, selectRunPolicies } from './run.ts';
import type { ServeFlags } from './serve.ts';

function processIO(): CliIO {
  return {
    stdout: { write: (line) => void process.stdout.write(line) },
    stderr: { write: (line) => void process.stderr.write(line), isTTY: process.stderr.isTTY },
    env: process.env,
    cwd: process.cwd(),
  };
}

/**
 * Ctrl-C / SIGTERM: the first one lets the current batch finish and the run end `partial`
 * (audit resolved, checkpoint saved, lease released); a second one exits at once.
 */
async function withInterrupts<T>(io: CliIO, interrupt: AbortController, work: () => Promise<T>): Promise<T> {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) process.exit(130);
    io.stderr.write(`\n${signal}: stopping after the current batch (again to exit now)\n`);
    interrupt.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

type Prepare<F, P> = (config: RetentionConfig, flags: F) => P;

/** Builds the `retention` program; each action resolves to an exit code. */
function program(io: CliIO, setExit: (code: number) => void): Command {
  const cli = new Command('retention')
    .description('Delete data once its retention period is over: safely, provably and fast.')
    .option('-c, --config <file>', 'config file (.json, .ts or .js); default: ./retention.config.{ts,js,json}')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(formatCommanderError(text)),
    });
  const configFile = (): string | undefined => cli.opts<{ config?: string }>().config;
  /**
   * A command on the control store: `prepare` checks its flags against the config before the
   * store opens. Its code is imported when it runs (`load`), so a start-up reads the modules of
   * the command given, not of all of them (a fifth of the CLI's start-up CPU).
   */
  const session =
    <F, P>(load: () => Promise<readonly [Prepare<F, P>, (s: Session, prepared: P) => Promise<number>]>) =>
    async (flags: F) => {
      const [prepare, action] = await load();
      setExit(await withSession(io, configFile(), action, (config) => prepare(config, flags)));
    };
  const asGiven = <F>(_config: RetentionConfig, flags: F): F => flags;

  const runLike = (name: string, description: string, dryRun: boolean): void => {
    const command = cli
      .command(name)
      .description(description)
      .option('-p, --policy <name>', 'policy to run (repeatable)', collect)
      .option('--all', 'every enabled policy')
      .option('--limit <n>', 'delete at most n items, oldest first')
      .option('--before <iso-date>', 'tighten the cutoff to this instant (never loosens it)')
      .option('--budget <duration>', 'time budget for this run, e.g. 30s, 15m')
      .option('--force', 'proceed past the safety limits (logged)')
      .option('--json', 'print the run report as JSON (only JSON on stdout)')
      .option('--list', 'include every touched item in the report')
      .option('--strict', 'exit 1 on an SLA breach')
      .option('--emergency', "apply the policies' emergency rules in full (oldest first), whatever the disk says");
    if (!dryRun) command.option('--dry-run', 'report what would be deleted; delete nothing');
    command.action(async (flags: RunFlags) => {
      const interrupt = new AbortController();
      const options = {
        ...parseRunFlags({ ...flags, dryRun: dryRun || flags.dryRun }, 'manual'),
        signal: interrupt.signal,
      };
      const reports = await withInterrupts(io, interrupt, () =>
        withSession(
          io,
          configFile(),
          (s, policies) => runPolicies(s, policies, flags, options),
          (config: RetentionConfig) => selectRunPolicies(config, flags),
        ),
      );
      printReports(io, reports, flags);
      setExit(exitCodeFor(reports, flags.strict ?? false));
    });
  };
  runLike('plan', 'dry run: list what a live run would delete, delete nothing', true);
  runLike('run', 'delete what is past retention', false);

  cli
    .command('reconcile')
    .description('files no row names (rows with linked files) or sidecars whose main file is gone (fs); --delete')
    .option('-p, --policy <name>', 'the policy', collect)
    .option('--grace <duration>', 'files younger than this are never orphans (default 24h, at least 1h)')
    .option('--delete', 'delete the orphans through the engine (lease, holds, limits, audit); default: list')
    .option('--dry-run', 'with --delete: list only')
    .option('--limit <n>', 'delete at most n orphans, oldest first')
    .option('--budget <duration>', 'time budget for the run, e.g. 15m')
    .option('--force', 'proceed past the safety limits (logged)')
    .option('--json', 'print the reconcile report as JSON (only JSON on stdout)')
    .option('--strict', 'exit 1 on an SLA breach')
    .action(async (flags: ReconcileFlags) => {
      const { parseReconcileFlags, reconcileCommand } = await import('./reconcile.ts');
      const interrupt = new AbortController();
      const reconcile = () =>
        withSession<number, ReconcileRequest>(
          io,
          configFile(),
          (s, request) => reconcileCommand(s, request, interrupt.signal),
          (config) => parseReconcileFlags(config, flags),
        );
      setExit(await withInterrupts(io, interrupt, reconcile));
    });
  cli
    .command('daemon')
    .description('run every enabled policy on its schedule (UTC) until SIGTERM/SIGINT')
    .option('--concurrency <n>', 'how many policies may run at the same time (default 2)')
    .option('--port <n>', 'also serve the REST API and dashboard, as `retention serve` (needs its tokens)')
    .option('--host <address>', 'address to serve on with --port (default 127.0.0.1: this machine only)')
    .action(async (flags: DaemonFlags) => {
      const interrupt = new AbortController();
      // Loaded here: the other commands need neither the scheduler nor Sentry (a second of start-up).
      const { daemonCommand } = await import('./daemon.ts');
      setExit(await withInterrupts(io, interrupt, () => daemonCommand(io, configFile(), flags, interrupt.signal)));
    });
  cli
    .command('status')
    .description('per policy: enabled, paused, last run, next run, lease holder')
    .option('--json')
    .action(session(() => import('./status.ts').then((m) => [asGiven, m.statusCommand] as const)));
  cli
    .command('pause')
    .description('pause one policy, or every policy with --all (the kill switch)')
    .option('-p, --policy <name>', 'policy (repeatable)', collect)
    .option('--all', 'pause everything')
    .option('--reason <text>', 'why (shown in status and logs)')
    .action(session(() => import('./pause.ts').then((m) => [m.pauseScopes, m.pauseCommand] as const)));
  cli
    .command('resume')
    .description('undo pause')
    .option('-p, --policy <name>', 'policy (repeatable)', collect)
    .option('--all', 'lift the global pause')
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .action(session(() => import('./pause.ts').then((m) => [m.pauseScopes, m.resumeCommand] as const)));

  const hold = cli.command('hold').description('legal holds: held items are never deleted');
  hold
    .command('add')
    .option('-p, --policy <name>', 'only for this policy (repeatable); default: every policy', collect)
    .option('--key <key>', 'exact item key')
    .option('--prefix <prefix>', 'every key starting with this')
    .option('--reason <text>', 'why (required)')
    .option('--json', 'the holds added, with what each matches per policy')
    .action(session(() => import('./hold.ts').then((m) => [m.parseHoldAdd, m.holdAddCommand] as const)));
  hold
    .command('list')
    .option('-p, --policy <name>', 'holds that apply to this policy', collect)
    .option('--json')
    .action(session(() => import('./hold.ts').then((m) => [m.parseHoldList, m.holdListCommand] as const)));
  hold
    .command('remove <id>')
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .action(async (id: string, flags: { reason?: string }) => {
      const { holdRemoveCommand, parseHoldRemove } = await import('./hold.ts');
      setExit(await withSession(io, configFile(), holdRemoveCommand, () => parseHoldRemove(id, flags)));
    });
  registerAttention(cli, { io, configFile, setExit, withInterrupts });

  cli
    .command('history')
    .description('recent runs, newest first')
    .option('-p, --policy <name>', 'one policy', collect)
    .option('--limit <n>', 'how many (default 20)')
    .option('--json')
    .action(session(() => import('./history.ts').then((m) => [m.parseHistoryFlags, m.historyCommand] as const)));
  const audit = cli
    .command('audit')
    .description('audit records: who deleted what, when and why')
    .option('--run <id>', 'records of one run')
    .option('-p, --policy <name>', 'records of one policy', collect)
    .option('--key <key>', 'records of one item (for rows: its key or its linked file)')
    .option('--action <name>', 'records of one action: delete, hold_added, paused, restored, …')
    .option('--outcome <status>', 'records with this outcome: failed, deleted, kept, pending, …')
    .option('--since <time>', 'written at or after: an ISO date or time, or a duration back from now (24h)')
    .option('--until <time>', 'written before (same forms as --since)')
    .option('--limit <n>', 'records per page (default 1000)')
    .option('--offset <n>', 'skip this many (the next page: see the "more:" line)')
    .option('--json')
    .action(session(() => import('./history.ts').then((m) => [m.parseAuditFlags, m.auditCommand] as const)));
  // `audit`'s own options (--policy, --json) are parsed by it even after `verify`: read with the parent's.
  audit
    .command('verify')
    .description('recompute the audit hash chains: exit 0 intact, 5 if a record was changed, removed or reordered')
    .option('--since <duration-or-date>', 'only what was written since, e.g. 7d or 2026-01-01')
    .addHelpText('after', '\nAlso: -p, --policy <name> (repeatable; default: every chain), --json.\n')
    .action((_flags, command: Command) =>
      session(() => import('./auditVerify.ts').then((m) => [m.parseAuditVerifyFlags, m.auditVerifyCommand] as const))(
        command.optsWithGlobals<AuditVerifyFlags>(),
      ),
    );
  cli
    .command('verify')
    .description('was this item deleted, and by what right? (or held, retained, overdue, unclassified, absent)')
    .option('--key <key>', 'the item (for rows: the row key or its linked file)')
    .option('-p, --policy <name>', 'ask this policy (repeatable); default: every policy', collect)
    .option('--json', 'the answer as JSON (one policy named: its object; else a list)')
    .action(session(() => import('./verify.ts').then((m) => [m.parseVerifyFlags, m.verifyCommand] as const)));
  cli
    .command('report')
    .description('compliance report over a period, per policy and purpose, reconciled with the audit trail')
    .option('--month <YYYY-MM>', 'the period: one calendar month in UTC, e.g. 2026-11')
    .option('--from <time>', 'the period: from this instant (with --to), e.g. 2026-11-01T00:00:00Z')
    .option('--to <time>', 'the period: up to this instant, excluded')
    .option('--since <duration>', 'the period: this long back to now, e.g. 7d (default 30d)')
    .option('-p, --policy <name>', 'one policy (repeatable); default: every policy', collect)
    .option('--json', 'print the report as JSON (only JSON on stdout)')
    .option('--csv', 'print the report as CSV: a row per policy, then one per purpose')
    .option('--html', 'print one self-contained printable HTML page (charts, chain verification)')
    .option('--strict', 'exit 1 when any policy needs attention or the audit chains are altered')
    .action(session(() => import('./report.ts').then((m) => [m.parseReportFlags, m.reportCommand] as const)));
  cli
    .command('lifecycle')
    .description("push a policy down to the backend's own expiry: S3 Lifecycle rules, or DynamoDB TTL; or why not")
    .option('-p, --policy <name>', 'the policy (an s3 or dynamodb one)', collect)
    .option('--json', 'print the plan as JSON (only JSON on stdout)')
    .action(session(() => import('./lifecycle.ts').then((m) => [m.parseLifecycleFlags, m.lifecycleCommand] as const)));
  cli
    .command('storage')
    .description(
      'what is using the space: items and bytes per policy, directory or prefix and purpose; what a run would free',
    )
    .option('-p, --policy <name>', 'one policy (repeatable); default: every policy', collect)
    .option('--limit <n>', 'items walked per policy at most (default 1000000)')
    .option('--json', 'print the analysis as JSON (only JSON on stdout)')
    .action(session(() => import('./storage.ts').then((m) => [m.parseStorageFlags, m.storageCommand] as const)));
  cli
    .command('restore')
    .description('put back what a run (or every run of a policy since a time) deleted, from its backups')
    .option('--run <id>', 'the run whose deletions to undo')
    .option('--since <time>', "undo every live run of --policy since then, newest first (a bad policy's runs)")
    .option('-p, --policy <name>', 'the policy, with --since', collect)
    .option('--key <key>', 'only this key (repeatable; with --run)', collect)
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .option('--json')
    .action(session(() => import('./restore.ts').then((m) => [m.parseRestoreFlags, m.restoreCommand] as const)));
  cli
    .command('invoke <policy>')
    .description('run a policy in its deployed Lambda function and print the report')
    .option('--dry-run', 'report what would be deleted; delete nothing')
    .option('--limit <n>', 'delete at most n items, oldest first')
    .option('--before <iso-date>', 'tighten the cutoff to this instant (never loosens it)')
    .option('--force', 'proceed past the safety limits (logged)')
    .option('--continue', 'backfill: the function re-invokes itself while runs end partial (at most 20 hops)')
    .option('--json', 'print the run report as JSON (only JSON on stdout)')
    .option('--strict', 'exit 1 on an SLA breach')
    .action(async (policy: string, flags: InvokeFlags) => {
      const { invokeCommand } = await import('./invoke.ts');
      setExit(await invokeCommand(io, configFile(), policy, flags));
    });
  cli
    .command('lease')
    .description('leases')
    .command('break <policy>')
    .description('release a stuck lease (the old holder is fenced off)')
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .action(async (policy: string, flags: { reason?: string }) => {
      const { leaseBreakCommand, parseLeaseBreak } = await import('./lease.ts');
      setExit(
        await withSession(io, configFile(), leaseBreakCommand, (config) => parseLeaseBreak(config, policy, flags)),
      );
    });
  cli
    .command('serve')
    .description('REST API and web dashboard (needs RETENTION_API_TOKEN and/or RETENTION_VIEWER_TOKEN)')
    .option('--port <n>', 'port to listen on (default 8080; 0: any free port)')
    .option('--host <address>', 'address to listen on (default 127.0.0.1: this machine only)')
    .action(async (flags: ServeFlags) => {
      const { parseServeFlags, serveCommand } = await import('./serve.ts');
      const stop = new AbortController();
      const serve = () =>
        withSession(
          io,
          configFile(),
          (s, options) => serveCommand(s, options, stop.signal),
          () => parseServeFlags(flags, io.env),
        );
      setExit(await withInterrupts(io, stop, serve));
    });
  cli
    .command('disk')
    .description('the file systems fs policies live on: used %, level, alerts; exit 0 ok, 1 warning, 6 critical')
    .option('--json', 'print the check as JSON')
    .action(async (flags: { json?: boolean }) => {
      const { diskCommand } = await import('./disk.ts');
      setExit(await diskCommand(io, configFile(), flags));
    });
  cli
    .command('config')
    .description('validate the config and print it with defaults filled in (secrets redacted)')
    .option('--json', 'print it as JSON')
    .action(async (flags: { json?: boolean }) => {
      const { printConfig } = await import('./config.ts');
      const { config, source } = await loadCliConfig(io, configFile());
      io.stdout.write(printConfig({ source, ...config }, flags.json ?? false));
      setExit(0);
    });
  cli
    .command('demo')
    .description('seed demo data under $RETENTION_HOME/demo, then plan and run every demo policy')
    .addOption(new Option('--json', 'print the run reports as JSON'))
    .action(async (flags: { json?: boolean }) => {
      const { demoCommand } = await import('./demo.ts');
      setExit(await demoCommand(io, flags));
    });
  return cli;
}

/**
 * Everything the CLI prints goes through here: reports, history, audit, logs, errors, in text
 * and JSON. Commands redact what they know to be secret (config fields); this catches the rest.
 */
function redactingIO(io: CliIO): CliIO {
  const tty = io.stderr.isTTY !== undefined ? { isTTY: io.stderr.isTTY } : {};
  return {
    ...io,
    stdout: { write: (text) => io.stdout.write(redactText(text)) },
    stderr: { write: (text) => io.stderr.write(redactText(text)), ...tty },
  };
}

/** Runs the CLI; returns the exit code: 0 done, 1 failed (or breach with --strict), 2 bad input. */
export async function main(argv: string[], givenIO: CliIO = processIO()): Promise<number> {
  const io = redactingIO(givenIO);
  let exitCode = 0;
  try {
    await program(io, (code) => (exitCode = code)).parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof ConfigError) {
      io.stderr.write(`${error.message}\nnothing was changed.\n`);
      return 2;
    }
    // describeCause follows the whole chain (what happened underneath, what to do about it).
    const context =
      error instanceof RetentionError && Object.keys(error.context).length > 0
        ? ` ${JSON.stringify(error.context)}`
        : '';
    io.stderr.write(`error: ${describeCause(error)}${context}\n`);
    return 1;
  }
}
