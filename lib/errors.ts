import { statSync } from 'node:fs';
import path from 'node:path';
import { redact, redactText } from './redact.ts';

/**
 * Errors carry the context an operator needs at 2 AM: which policy, which store, which key,
 * what to do about it. Expected outcomes (lock held, budget spent, limit hit) are results, not
 * exceptions; these classes are for what really went wrong.
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
      this.issues.map((issue) => ({ ...issue, path: issue.path.startsWith(prefix) ? issue.path : `${prefix}.${issue.path}` })),
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

/** One error of a cause chain, as far as describing it goes. */
interface Link {
  message: string;
  errno?: Errno;
  context?: ErrorContext;
}

interface Errno {
  code: string;
  path?: string;
  dest?: string;
  syscall?: string;
  address?: string;
  port?: number;
  hostname?: string;
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

interface Where {
  path: string;
  /** The path is $RETENTION_HOME (from a context), so the fix is to move it. */
  home: boolean;
  /** Named by the OS error itself: the file being written, which may not exist yet. */
  named: boolean;
}

/** Where an OS error happened: its own path (the target of a copy), else `path` or `home` in an error's context. */
function whereOf(errno: Errno | undefined, links: Link[]): Where | undefined {
  const own = errno?.dest ?? errno?.path;
  if (own) return { path: own, home: false, named: true };
  for (const { context } of links) {
    if (typeof context?.path === 'string') return { path: context.path, home: false, named: false };
    if (typeof context?.home === 'string') return { path: context.home, home: true, named: false };
  }
  return undefined;
}

const DISK_FULL_TEXT = /no space left on device/i;
/** PostgreSQL's SQLSTATE `disk_full`. */
const SQL_DISK_FULL = '53100';

/** What to do about the innermost cause we recognise (a full disk, a permission, nothing listening). */
function remedyFor(links: Link[]): string | undefined {
  for (const { errno } of [...links].reverse()) {
    const remedy = errno && REMEDIES[errno.code]?.(errno, whereOf(errno, links));
    if (remedy) return remedy;
  }
  // A full disk reported in text: initdb's output, a database server's error.
  const sqlDiskFull = links.some((link) => link.context?.sqlState === SQL_DISK_FULL);
  if (!sqlDiskFull && !links.some((link) => DISK_FULL_TEXT.test(link.message))) return undefined;
  const where = whereOf(undefined, links);
  if (!where && sqlDiskFull) return "the database server's disk is full: free space on it or grow its storage";
  return diskFull(where);
}

/*
 * Remedies of file-system errors need to know where: "no space left on device" already says the
 * disk is full, and a remedy without a place would be repeated once an outer error knows it.
 */

function diskFull(where: Where | undefined): string | undefined {
  if (!where) return undefined;
  const directory = where.named ? path.dirname(where.path) : where.path;
  const mount = mountPoint(directory);
  const mounted = mount && mount !== directory ? ` (mounted at ${mount})` : '';
  const move = where.home ? 'RETENTION_HOME' : 'that directory';
  return `the disk holding ${directory}${mounted} is full: free space on it or move ${move} to a larger disk`;
}

/**
 * Where the file system of `target` is mounted: the highest ancestor on the same device. Only
 * asked once a disk is full, to say which disk; undefined when it cannot be told.
 */
function mountPoint(target: string): string | undefined {
  try {
    let current = path.resolve(target);
    const device = statSync(current).dev;
    for (let parent = path.dirname(current); parent !== current; parent = path.dirname(parent)) {
      if (statSync(parent).dev !== device) break;
      current = parent;
    }
    return current;
  } catch {
    return undefined;
  }
}

/** The verb of a syscall an operator would use (`open`, `unlink` → delete, `scandir` → list). */
const SYSCALL_VERBS: Record<string, string> = {
  scandir: 'list', opendir: 'list', unlink: 'delete', rmdir: 'delete', rm: 'delete', mkdir: 'create a directory in',
  copyfile: 'copy to', write: 'write', utime: 'set the times of', rename: 'rename', lstat: 'read', stat: 'read',
};

function permissionDenied(errno: Errno, where: Where | undefined): string | undefined {
  if (!where) return undefined;
  const user = process.getuid ? `the user running retention (uid ${process.getuid()})` : 'the user running retention';
  const verb = SYSCALL_VERBS[errno.syscall ?? ''] ?? errno.syscall ?? 'access';
  return `${user} may not ${verb} ${where.path}: grant that permission (chown/chmod) or run as a user who has it`;
}

const REMEDIES: Record<string, (errno: Errno, where: Where | undefined) => string | undefined> = {
  ENOSPC: (_errno, where) => diskFull(where),
  EDQUOT: (_errno, where) =>
    where && `the disk quota of the user running retention is used up on ${where.path}: free space or raise the quota`,
  EACCES: permissionDenied,
  EPERM: permissionDenied,
  EROFS: (_errno, where) =>
    where && `${where.path} is on a read-only file system: remount it read-write or choose another directory`,
  EMFILE: () => 'too many open files: raise the limit (ulimit -n)',
  ENFILE: () => 'the system is out of file handles: raise fs.file-max or close other programs',
  ECONNREFUSED: (errno) => {
    const at = errno.address ? ` at ${errno.address}:${errno.port}` : '';
    return `nothing is listening${at}: is the server running, and are host and port right?`;
  },
  ENOTFOUND: (errno) => {
    const host = errno.hostname ? ` ${errno.hostname}` : '';
    return `the host name${host} does not resolve: check the host in the URL or endpoint`;
  },
};
