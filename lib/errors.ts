import { redact, redactText } from './redact.ts';
import { type Errno, type Link, remedyFor } from './remedies.ts';

/**
 * Errors carry the context an operator needs at 2 AM: which policy, which store, which key,
 * what to do about it. Expected outcomes (lock held, budget spent, limit hit) are results, not
 * exceptions: the classes of those that need saying (limits, stops) are never thrown, they are
 * the `error` of a run report, with the figures their message states as fields.
 */
export interface ErrorContext {
  policy?: string;
  store?: string;
  key?: string;
  runId?: string;
  [field: string]: unknown;
}

/**
 * Messages and context are redacted here, where errors are made, so that no report, history
 * record, log line or alert built from them carries a secret. A message that wraps a cause says
 * what happened underneath (`control store (pg): releaseLease failed: Connection terminated
 * unexpectedly`), with what to do where that is known (a full disk, a permission).
 */
export class RetentionError extends Error {
  /** Whether the message is followed by what its cause says (input issues state their own fix). */
  protected static readonly appendsCause: boolean = true;
  readonly context: ErrorContext;
  /** Stable machine-readable code, used in logs, reports and exit-code decisions. */
  readonly code: string = 'retention_error';

  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    const appends = options?.cause !== undefined && new.target.appendsCause;
    super(redactText(appends ? withCause(message, context, options.cause) : message), options);
    this.name = new.target.name;
    this.context = redact(context);
  }
}

/** One problem in user input (config file, CLI flags, invocation payload). */
export interface InputIssue {
  /** Field path, e.g. `policies[0].retention`. */
  path: string;
  /** What is wrong. */
  message: string;
  /** How to fix it. */
  fix?: string;
}

/** Bad input: exit code 2, nothing touched. Printed as `error: <path>: <what> (<fix>)`. */
export class ConfigError extends RetentionError {
  protected static override readonly appendsCause = false;
  override readonly code = 'config_error';
  readonly issues: InputIssue[];

  constructor(issues: InputIssue[], context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(issues.map(formatIssue).join('\n'), context, options);
    this.issues = issues;
  }

  /** The same problems, with paths under `prefix` (e.g. a store's `store.root` under `policies[1]`). */
  within(prefix: string): ConfigError {
    return new ConfigError(
      this.issues.map((issue) => ({
        ...issue,
        path: issue.path.startsWith(prefix) ? issue.path : `${prefix}.${issue.path}`,
      })),
      this.context,
      { cause: this },
    );
  }

  static single(path: string, message: string, fix?: string, context: ErrorContext = {}): ConfigError {
    return new ConfigError([{ path, message, ...(fix ? { fix } : {}) }], context);
  }
}

/** Longest piece of user input echoed into a message or a log line. */
export const MAX_ECHOED_CHARS = 200;

/** User input as it may be echoed: a megabyte of policy name must not be copied into every log line. */
export function clip(text: string, max = MAX_ECHOED_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

export function formatIssue(issue: InputIssue): string {
  return `error: ${issue.path}: ${issue.message}${issue.fix ? ` (${issue.fix})` : ''}`;
}

/** A backend call failed (I/O, permissions, protocol). */
export class StoreError extends RetentionError {
  override readonly code = 'store_error';
}

/** The control store (leases, audit, history) could not be used. */
export class ControlStoreError extends RetentionError {
  override readonly code = 'control_store_error';
}

/**
 * A SQL statement failed. Context: `driver`, `statement` (a short excerpt, never the parameters)
 * and `sqlState` (PostgreSQL's SQLSTATE such as `23505`, or a socket code such as `ECONNREFUSED`).
 */
export class SqlError extends RetentionError {
  override readonly code = 'sql_error';
}

/** The run's lease was taken over or expired: the run must stop deleting at once. */
export class LeaseLostError extends RetentionError {
  override readonly code = 'lease_lost';
}

/** How to get past a safety-limit abort, for logs and CLI output. */
export const LIMIT_ADVICE =
  'check the dry-run list (retention plan --list); then raise the policy limits, run in slices with --limit N (under maxDeletesPerRun only), or pass --force';

/** What a run's safety limits judge before its first deletion (invariant 6). */
export interface LimitFigures {
  /** Eligible unheld items, capped by --limit: what this run would delete. */
  planned: number;
  /** Eligible unheld items, uncapped: what the policy means to delete (--limit never lowers it). */
  eligible: number;
  /** All items in the policy's scope. */
  total: number;
  maxDeletesPerRun: number;
  maxDeleteFraction: number;
}

/**
 * A run that would delete more than its safety limits allow deleted nothing (invariant 6): the
 * error of its `aborted_limit` report. `limit` names the limit broken; `figures` are the numbers
 * judged (the fraction is `eligible / total`).
 */
export class LimitExceededError extends RetentionError {
  override readonly code = 'limit_exceeded';
  /** What is over which limit, without the advice: the `reason` of `limit_aborted` and `limit_overridden` log lines. */
  readonly reason: string;

  constructor(
    readonly limit: 'maxDeletesPerRun' | 'maxDeleteFraction',
    readonly figures: LimitFigures,
  ) {
    const { planned, eligible, total, maxDeletesPerRun, maxDeleteFraction } = figures;
    const reason =
      limit === 'maxDeletesPerRun'
        ? `${planned} planned deletions exceed limits.maxDeletesPerRun ${maxDeletesPerRun}`
        : `${eligible} of ${total} items (${percent(eligible / total)}) are eligible, over limits.maxDeleteFraction ${percent(maxDeleteFraction)}`;
    super(`${reason}; nothing was deleted (${LIMIT_ADVICE})`);
    this.reason = reason;
  }
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

/**
 * A run stopped once it had deleted `limits.maxDeletesPerRun` items (its census may have been an
 * estimate, or a --force run): the error of its `partial` report.
 */
export class LimitReachedError extends RetentionError {
  override readonly code = 'limit_reached';

  constructor(
    readonly maxDeletesPerRun: number,
    readonly deleted: number,
  ) {
    super(
      `limits.maxDeletesPerRun (${maxDeletesPerRun}) reached after ${deleted} deletions; the rest waits for the next run (or pass --force)`,
    );
  }
}

/** A run stopped by a signal (SIGTERM, SIGINT) or an abort reason of its caller: the error of its `partial` report. */
export class InterruptedError extends RetentionError {
  override readonly code = 'interrupted';

  constructor(readonly signal: string) {
    super(`stopped by ${signal}; what was deleted is recorded, the rest waits for the next run`);
  }
}

/** A store deleted rows in one statement but did not record them in its own audit trail (invariant 2). */
export class UnauditedDeletionError extends RetentionError {
  override readonly code = 'unaudited_deletion';

  constructor(
    readonly store: string,
    readonly deleted: number,
    context: ErrorContext,
  ) {
    super(`${store}: ${deleted} rows were deleted in one statement without their audit record`, { ...context, store });
  }
}

/**
 * What went wrong, all the way down: the message of `cause` followed by those of its own causes
 * that it does not already state, then what to do about it where that is known. Redacted.
 * `context.path` says where, for OS errors that do not (a write on an open file: `ENOSPC … write`).
 */
export function describeCause(cause: unknown, context?: ErrorContext): string {
  return redactText(joinChain([...(context ? [{ message: '', context }] : []), ...linksOf(cause)]));
}

/** `message` as the outermost link of `cause`'s chain (see describeCause); its context may say where. */
function withCause(message: string, context: ErrorContext, cause: unknown): string {
  return joinChain([{ message, context }, ...linksOf(cause)]);
}

const MAX_CHAIN = 8;

function linksOf(cause: unknown): Link[] {
  const seen: unknown[] = [];
  for (let link = cause; link !== undefined && link !== null && seen.length < MAX_CHAIN && !seen.includes(link); ) {
    seen.push(link);
    link = link instanceof Error ? link.cause : undefined;
  }
  return seen.map((error) => {
    const errno = errnoOf(error);
    const context = (error as { context?: unknown } | null)?.context;
    return { message: messageOf(error), ...(errno ? { errno } : {}), ...(isRecord(context) ? { context } : {}) };
  });
}

/**
 * Joins messages outermost first, each only while the text so far does not already state the
 * deepest one: a wrapper that says `…: Connection terminated unexpectedly` needs no repeat of the
 * driver's own `pg: UPDATE …: Connection terminated unexpectedly`.
 */
function joinChain(links: Link[]): string {
  const messages = links.map((link) => link.message);
  const deepest = messages.filter((message) => message !== '').at(-1) ?? '';
  let text = '';
  for (const message of messages) {
    if (message === '' || text.includes(message)) continue;
    if (text !== '' && text.includes(deepest)) break;
    text = text === '' ? message : `${text}: ${message}`;
  }
  const remedy = remedyFor(links);
  return remedy && !text.includes(remedy) ? `${text} (${remedy})` : text;
}

/** An error's own message; of a messageless one (AggregateError of a dual-stack connect, SDK errors) what it holds. */
function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return typeof error === 'string' ? error : clip(safeJson(error));
  if (error.message.trim() !== '') return error.message.trim();
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(messageOf))].join('; ');
  }
  return errnoOf(error)?.code ?? error.name;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object';
}

function errnoOf(error: unknown): Errno | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? (error as Errno) : undefined;
}
