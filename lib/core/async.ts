import { setTimeout as delay } from 'node:timers/promises';

/**
 * Generic async helpers: chunking, bounded concurrency, and bounded retry with backoff that
 * honours a server's retry-after. Stores, control stores and the engine use them alike.
 */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) result.push(items.slice(start, start + size));
  return result;
}

/** Runs `work` over `items` with at most `concurrency` in flight; results keep the input order. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
}

export interface RetryPolicy {
  /** Total attempts, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface RetryEvent {
  attempt: number;
  waitMs: number;
  reason: string;
}

export interface RetryDeps {
  sleep?: (ms: number) => Promise<void>;
  /** Observability hook: every wait before a retry (rate limits included). */
  onRetry?: (event: RetryEvent) => void;
}

/** What to do about one failed attempt: give up, or retry (after at least `afterMs` when the server said so). */
export type RetryVerdict = { retry: false } | { retry: true; afterMs?: number; reason: string };

/** Exponential backoff with full jitter (spreads retries of concurrent callers). */
export function backoffMs(attempt: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

export const sleep = (ms: number): Promise<void> => delay(ms);

/**
 * Calls `attempt` until it succeeds, `verdict` says give up, or the attempts are spent; then the
 * last error propagates. A retry-after longer than `maxDelayMs` is not waited out: the caller
 * fails fast instead of sleeping past its budget.
 */
export async function withRetry<T>(
  call: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  verdict: (error: unknown) => RetryVerdict,
  deps: RetryDeps = {},
): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await call(attempt);
    } catch (error) {
      const decision = verdict(error);
      if (!decision.retry || attempt >= policy.attempts) throw error;
      if (decision.afterMs !== undefined && decision.afterMs > policy.maxDelayMs) throw error;
      const waitMs = Math.max(decision.afterMs ?? 0, backoffMs(attempt, policy));
      deps.onRetry?.({ attempt, waitMs, reason: decision.reason });
      await (deps.sleep ?? sleep)(waitMs);
    }
  }
}
