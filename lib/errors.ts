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

export class RetentionError extends Error {
  readonly context: ErrorContext;
  /** Stable machine-readable code, used in logs, reports and exit-code decisions. */
  readonly code: string = 'retention_error';

  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.context = context;
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

export function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return String(cause);
}
