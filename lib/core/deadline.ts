import { setTimeout as delay } from 'node:timers/promises';
import { ConfigError, StoreError } from '../errors.ts';
import { formatDuration, parseDuration } from './durations.ts';
import type { RunContext } from './store.ts';

/**
 * How long a network request may take, and the run's deadline that bounds them all. A budget is
 * checked between batches, so a request hung on a frozen backend (with the SDKs' own retries,
 * minutes) would hold a run past it; the engine makes one deadline per run (`runDeadline`), the
 * stores pass it to every request (`RequestDeadline`), and the run still ends with its report.
 */

/** Per attempt, to S3, DynamoDB and Vercel Blob: connecting. */
export const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Per attempt: how long a connection may stay silent (a page of 1000 keys or a batch delete
 * answers in well under a second; a long S3 CopyObject keeps its connection alive). The AWS SDK
 * clients take it as `socketTimeout`: their `requestTimeout` only logs a warning unless
 * `throwOnRequestTimeout` is set, and then cuts long copies too. It is also the grace the run's
 * deadline leaves past the budget for the request in flight: a frozen backend costs a run at most
 * its budget plus this.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

/**
 * `RETENTION_REQUEST_TIMEOUT` can only shorten it (tests of frozen backends; operators who would
 * rather fail fast): a Lambda's budget ends 20 s before its invocation deadline, and the run's
 * deadline, one timeout later, must come before the platform's.
 */
export function requestTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.RETENTION_REQUEST_TIMEOUT;
  if (value === undefined) return DEFAULT_REQUEST_TIMEOUT_MS;
  const parsed = parseDuration(value, {
    minMs: 1_000,
    maxMs: DEFAULT_REQUEST_TIMEOUT_MS,
    maxReason: 'the default (it only shortens)',
  });
  if (!parsed.ok) throw ConfigError.single('RETENTION_REQUEST_TIMEOUT', parsed.message, parsed.fix);
  return parsed.ms;
}

/** The longest delay a Node timer takes (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Aborts once `budgetMs` plus `graceMs` (one request timeout) have passed from now, in real time.
 * Unref'd: a finished run's deadline keeps no process alive. None past the longest timer, which
 * no budget reaches in practice.
 */
export function runDeadline(budgetMs: number, graceMs: number): AbortSignal | undefined {
  const ms = budgetMs + graceMs;
  if (ms > MAX_TIMER_MS) return undefined;
  const controller = new AbortController();
  const reason = new Error(
    `the run's deadline passed (budget ${formatDuration(budgetMs)} + ${formatDuration(graceMs)} for the request in flight)`,
  );
  setTimeout(() => controller.abort(reason), ms).unref();
  return controller.signal;
}

/**
 * A run's deadline as a store holds it: `open` binds it, every request carries it, and a request
 * it cut short becomes one StoreError naming the store and the deadline, thrown, never an item's
 * failure: whether a delete in flight reached the backend is unknown, so its write-ahead intent
 * stays pending for the next run's recovery to resolve from the backend's state.
 */
export class RequestDeadline {
  private bound: AbortSignal | undefined;

  constructor(private readonly location: string) {}

  /** The run's context replaces the previous one; opened outside a run (restore, holds), no deadline. */
  bind(context: RunContext | undefined): void {
    this.bound = context?.signal;
  }

  get signal(): AbortSignal | undefined {
    return this.bound;
  }

  /** Request options carrying the deadline: `client.send(command, deadline.sendOptions)` (SDK v3: its retries stop too). */
  get sendOptions(): { abortSignal?: AbortSignal } {
    return this.bound ? { abortSignal: this.bound } : {};
  }

  /** A backoff between retries that the deadline cuts short (with its StoreError). */
  readonly sleep = async (ms: number): Promise<void> => {
    try {
      await delay(ms, undefined, this.bound ? { signal: this.bound } : undefined);
    } catch (error) {
      this.throwIfPassed('waiting to retry', error);
      throw error;
    }
  };

  /** Throws the deadline's StoreError once it has passed, whatever `error` (what the request threw) is. */
  throwIfPassed(what: string, error: unknown): void {
    if (!this.bound?.aborted) return;
    const reason: unknown = this.bound.reason;
    const message = `${this.location}: ${what} stopped: ${reason instanceof Error ? reason.message : String(reason)}`;
    throw new StoreError(message, { store: this.location, operation: what }, { cause: reason ?? error });
  }
}
