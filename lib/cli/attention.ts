import type { Command } from 'commander';
import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import { attentionView, isOpen } from '../core/attention.ts';
import type { AttentionItem } from '../core/control.ts';
import { dismissAttention } from '../engine/governed.ts';
import { ConfigError, clip } from '../errors.ts';
import { type CliIO, type Session, selectPolicies, withSession } from './context.ts';
import { collect } from './flags.ts';
import { table, when } from './format.ts';
import { EXIT, exitCodeFor, printReports, runPolicies } from './run.ts';

/**
 * The attention queue: items whose deletion failed in `attentionAfter` consecutive live runs of
 * their policy (core/attention.ts). `list` shows them with their last error and run; `retry`
 * runs the policy now, from the start of its scope, and says what became of each; `dismiss`
 * acknowledges one (a governance record: who, why).
 */
export interface AttentionKit {
  io: CliIO;
  configFile: () => string | undefined;
  setExit: (code: number) => void;
  /** main.ts's: the first signal ends the retry run after its batch, as for `retention run`. */
  withInterrupts: <T>(io: CliIO, interrupt: AbortController, work: () => Promise<T>) => Promise<T>;
}

export function registerAttention(cli: Command, kit: AttentionKit): void {
  const { io, configFile, setExit } = kit;
  const attention = cli.command('attention').description('items that keep failing to delete: list, retry, dismiss');
  attention
    .command('list')
    .description('items that failed in attentionAfter (default 3) consecutive runs, with their last error')
    .option('-p, --policy <name>', 'one policy (repeatable); default: every policy', collect)
    .option('--dismissed', 'include dismissed items')
    .option('--json')
    .action(async (flags: ListFlags) =>
      setExit(await withSession(io, configFile(), listCommand, (config) => parseList(config, flags))),
    );
  attention
    .command('retry')
    .description("run the policy now, from the start of its scope, and report each item's outcome")
    .option('-p, --policy <name>', 'the policy', collect)
    .option('--key <key>', 'only report on this item (repeatable); default: every open item', collect)
    .option('--json')
    .action(async (flags: RetryFlags) => {
      const interrupt = new AbortController();
      const retry = () =>
        withSession<number, RetryRequest>(
          io,
          configFile(),
          (s, request) => retryCommand(s, request, interrupt.signal),
          (config) => parseRetry(config, flags),
        );
      setExit(await kit.withInterrupts(io, interrupt, retry));
    });
  attention
    .command('dismiss')
    .description('acknowledge an item that keeps failing: no longer open while it fails (audited)')
    .option('-p, --policy <name>', 'the policy', collect)
    .option('--key <key>', 'the item')
    .option('--reason <text>', 'why (required; recorded in the audit trail)')
    .action(async (flags: DismissFlags) =>
      setExit(await withSession(io, configFile(), dismissCommand, (config) => parseDismiss(config, flags))),
    );
}

interface ListFlags {
  policy?: string[];
  dismissed?: boolean;
  json?: boolean;
}
interface ListRequest {
  policies: PolicyConfig[];
  dismissed: boolean;
  json: boolean;
}

function parseList(config: RetentionConfig, flags: ListFlags): ListRequest {
  const named = flags.policy !== undefined && flags.policy.length > 0;
  return {
    policies: named ? selectPolicies(config, flags.policy, false) : config.policies,
    dismissed: flags.dismissed ?? false,
    json: flags.json ?? false,
  };
}

/** The policy's items past its threshold: open ones, and dismissed ones when asked. */
async function itemsOf(session: Session, policy: PolicyConfig, dismissed: boolean): Promise<AttentionItem[]> {
  const items = await session.control.attentionItems(policy.name, policy.attentionAfter);
  return items.filter((item) => dismissed || isOpen(item, policy.attentionAfter));
}

async function listCommand(session: Session, request: ListRequest): Promise<number> {
  const items: Array<ReturnType<typeof attentionView>> = [];
  for (const policy of request.policies) {
    const found = await itemsOf(session, policy, request.dismissed);
    items.push(...found.map((item) => attentionView(item, policy.attentionAfter)));
  }
  const { stdout } = session.io;
  if (request.json) {
    stdout.write(`${JSON.stringify(items, null, 2)}\n`);
    return 0;
  }
  const open = items.filter((item) => item.open).length;
  if (items.length === 0) {
    stdout.write('no item needs attention\n');
    return 0;
  }
  const rows = items.map((item) => [
    item.policy,
    item.key,
    item.failures,
    when(item.firstFailedAt),
    item.lastRunId,
    item.dismissed ? `dismissed by ${item.dismissed.by}: ${item.dismissed.reason}` : clip(item.lastError, 100),
  ]);
  stdout.write(`${table(['policy', 'key', 'failed runs', 'since', 'last run', 'last error'], rows)}\n`);
  stdout.write(
    `${open} open. Fix the cause, then: retention attention retry --policy <name>; ` +
      'or acknowledge: retention attention dismiss --policy <name> --key <key> --reason "..."\n',
  );
  return 0;
}

interface RetryFlags {
  policy?: string[];
  key?: string[];
  json?: boolean;
}
interface RetryRequest {
  policy: PolicyConfig;
  keys: string[] | undefined;
  json: boolean;
}

function parseRetry(config: RetentionConfig, flags: RetryFlags): RetryRequest {
  const [policy, ...more] = selectPolicies(config, flags.policy, false);
  if (more.length > 0) throw ConfigError.single('--policy', 'retry takes one policy', 'run it once per policy');
  return { policy: policy!, keys: flags.key, json: flags.json ?? false };
}

/** What became of an item a retry was about. */
type RetryOutcome = 'resolved' | 'failed again' | 'not reached';

/**
 * Runs the policy now through the engine (lease, pause, holds, limits and audit as any manual
 * run), from the start of its scope so the items behind the checkpoint are reached, then reads
 * each item's streak: gone (deleted, already gone, kept or held: no longer failing), extended
 * by this run (failed again), or untouched (the run ended before reaching it: budget, stop).
 * Exit 0 only when every item is resolved; the run's own exit code when it did not complete.
 */
async function retryCommand(session: Session, request: RetryRequest, signal: AbortSignal): Promise<number> {
  const { policy, json } = request;
  const known = await session.control.attentionItems(policy.name, 1);
  const keys = request.keys ?? (await itemsOf(session, policy, false)).map((item) => item.key);
  const unknown = keys.filter((key) => !known.some((item) => item.key === key));
  if (unknown.length > 0) {
    const fix = `see: retention attention list --policy ${policy.name} (an item is listed once it failed)`;
    throw ConfigError.single('--key', `no failing item ${JSON.stringify(clip(unknown[0]!))} in ${policy.name}`, fix);
  }
  if (keys.length === 0) {
    session.io.stdout.write(json ? '{"report":null,"items":[]}\n' : `${policy.name}: no item needs attention\n`);
    return 0;
  }
  const options = { trigger: 'manual' as const, dryRun: false, force: false, list: false, fromStart: true, signal };
  const [report] = await runPolicies(session, [policy], { json }, options);
  const after = new Map((await session.control.attentionItems(policy.name, 1)).map((item) => [item.key, item]));
  const outcomes = keys.map((key) => {
    const streak = after.get(key);
    const outcome: RetryOutcome = !streak
      ? 'resolved'
      : streak.lastRunId === report?.runId
        ? 'failed again'
        : 'not reached';
    return { key, outcome, ...(streak ? { failures: streak.failures, error: streak.lastError } : {}) };
  });
  if (json) session.io.stdout.write(`${JSON.stringify({ report: report ?? null, items: outcomes }, null, 2)}\n`);
  else {
    if (report) printReports(session.io, [report], {});
    const rows = outcomes.map((entry) => [entry.key, entry.outcome, entry.failures ?? '-', entry.error ?? '']);
    session.io.stdout.write(`\n${table(['key', 'outcome', 'failed runs', 'error'], rows)}\n`);
  }
  const runExit = report ? exitCodeFor([report], false) : EXIT.stopped;
  if (runExit !== EXIT.ok) return runExit;
  return outcomes.every((entry) => entry.outcome === 'resolved') ? EXIT.ok : EXIT.failed;
}

interface DismissFlags {
  policy?: string[];
  key?: string;
  reason?: string;
}
interface DismissRequest {
  policy: string;
  key: string;
  reason: string;
}

function parseDismiss(config: RetentionConfig, flags: DismissFlags): DismissRequest {
  const [policy, ...more] = selectPolicies(config, flags.policy, false);
  if (more.length > 0) throw ConfigError.single('--policy', 'dismiss takes one policy', 'dismiss once per policy');
  if (!flags.key) throw ConfigError.single('--key', 'no item named', 'pass --key <key> (see retention attention list)');
  if (!flags.reason)
    throw ConfigError.single('--reason', 'a dismissal needs a reason', 'e.g. --reason "owned by team X, ticket 123"');
  return { policy: policy!.name, key: flags.key, reason: flags.reason };
}

async function dismissCommand(session: Session, request: DismissRequest): Promise<number> {
  const item = await dismissAttention(session, request);
  if (!item) {
    const fix = `see: retention attention list --policy ${request.policy}`;
    throw ConfigError.single('--key', `no failing item ${JSON.stringify(clip(request.key))} in ${request.policy}`, fix);
  }
  session.io.stdout.write(
    `dismissed ${request.key} (${request.policy}, failed in ${item.failures} consecutive runs): ${request.reason}\n`,
  );
  return 0;
}
