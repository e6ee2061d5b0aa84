import picomatch from 'picomatch';
import * as z from 'zod';
import { mapConcurrent } from '../core/async.ts';
import type { Census, CensusQuery } from '../core/store.ts';
import type { Item } from '../core/types.ts';
import { holdFor, isEligible, overdueSeconds } from '../policy/classify.ts';

/**
 * Helpers every store uses the same way: glob scoping, census counting, guarded destructive
 * requests, and finding the current state of a batch of keys by listing (object stores have no atomic "delete if still old"),
 * and a backend check made once.
 */

/** include/exclude globs of a store's config (picomatch, over keys). */
export const Globs = z.array(z.string().min(1));

/** UTF-8 byte order: S3 lists in it, and JS `<` (UTF-16 units) differs above U+FFFF. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** include/exclude globs over keys; `dot: true`: a policy covers hidden files unless a glob says otherwise. */
export function scopeMatcher(include: string[] | undefined, exclude: string[] | undefined): (key: string) => boolean {
  const included = include?.length ? picomatch(include, { dot: true }) : () => true;
  const excluded = exclude?.length ? picomatch(exclude, { dot: true }) : () => false;
  return (key) => included(key) && !excluded(key);
}

/**
 * Destructive requests over `groups` (each group one request: a DeleteObjects, a chunk of
 * unlinks), at most `concurrency` in flight, each preceded by `beforeRequest` (the engine's
 * lease check, `DeleteOptions`). Once it throws, no further request starts; those in flight
 * finish. Returns the outcomes of the requests sent: items of groups never sent have none, and
 * the engine records them as not attempted.
 */
export async function sendGuarded<T, R>(
  groups: readonly T[],
  concurrency: number,
  beforeRequest: (() => void) | undefined,
  send: (group: T) => Promise<R[]>,
): Promise<R[]> {
  let stopped = false;
  const results = await mapConcurrent(groups, concurrency, async (group) => {
    stopped ||= !mayProceed(beforeRequest);
    return stopped ? [] : send(group);
  });
  return results.flat();
}

/**
 * The engine's lease check before one destructive request: false once it refuses (it stays
 * refused: a lost lease does not come back). The store then sends nothing more and leaves the
 * items it did not send without an outcome; the engine records them as not attempted.
 */
export function mayProceed(beforeRequest: (() => void) | undefined): boolean {
  try {
    beforeRequest?.();
    return true;
  } catch {
    return false;
  }
}

/**
 * Counts a census as items stream in; safe to feed from several concurrent listings (shards).
 * `add` returns false once the bound is reached: the caller stops listing.
 */
export class CensusTally {
  readonly census: Census = { total: 0, eligible: 0, oldestOverdueSeconds: 0, exact: true };

  constructor(private readonly query: CensusQuery) {}

  add(item: Item): boolean {
    if (this.query.bound !== undefined && this.census.total >= this.query.bound) {
      this.census.exact = false;
      return false;
    }
    this.census.total += 1;
    const eligible = isEligible(item, this.query.cutoffs);
    if (eligible && !holdFor(eligible.key, this.query.holds)) {
      this.census.eligible += 1;
      this.census.oldestOverdueSeconds = Math.max(this.census.oldestOverdueSeconds, overdueSeconds(eligible));
    }
    return true;
  }
}

/** The census loop of every store: count items in scope until the listing ends or the bound is hit. */
export async function countCensus(items: AsyncIterable<Item>, query: CensusQuery): Promise<Census> {
  const tally = new CensusTally(query);
  for await (const item of items) if (!tally.add(item)) break;
  return tally.census;
}

/** Keys already gone (a retried batch) each need their own listing: overlap a few. */
const EXACT_LISTING_CONCURRENCY = 8;

/** One listing page of a re-check window: entries in listing order. */
export interface WindowPage<T> {
  entries: Array<[key: string, value: T]>;
  /** Last key the listing covered (absent: it covered nothing). */
  lastKey?: string;
}

export interface KeyLocator<T> {
  /**
   * One listing page that starts at or before `first`; `remaining` is how many sorted keys from
   * `first` on are still unresolved (a size hint). Undefined: this backend cannot position there
   * (that key is left to listExact).
   */
  listWindow(first: string, remaining: number): Promise<WindowPage<T> | undefined>;
  /** Exhaustive listing of `key` as a prefix: the entry for exactly `key`, or undefined when absent. */
  listExact(key: string): Promise<T | undefined>;
}

/**
 * The current state of `keys` by listing, never by a per-key HEAD: contiguous keys (a scanned
 * page) cost one listing per page. A key seen in a window is present; absence is never inferred
 * from listing order (fake servers and odd keys break it) but confirmed by an exhaustive listing
 * of the key itself, which only keys already gone (retries, crash recovery) pay for.
 */
export async function locateByListing<T>(keys: readonly string[], locator: KeyLocator<T>): Promise<Map<string, T>> {
  const found = new Map<string, T>();
  const sorted = [...new Set(keys)].sort(compareUtf8);
  const unresolved = new Set(sorted);
  let index = 0;
  while (index < sorted.length) {
    const first = sorted[index]!;
    const page = await locator.listWindow(first, sorted.length - index);
    if (!page) {
      index += 1;
      continue;
    }
    for (const [key, value] of page.entries) if (unresolved.delete(key)) found.set(key, value);
    const before = index;
    while (index < sorted.length && page.lastKey !== undefined && compareUtf8(sorted[index]!, page.lastKey) <= 0)
      index += 1;
    // No progress (the window started past `first`, or listed nothing): leave `first` to listExact.
    if (index === before) index += 1;
  }
  await mapConcurrent([...unresolved], EXACT_LISTING_CONCURRENCY, async (key) => {
    const value = await locator.listExact(key);
    if (value !== undefined) found.set(key, value);
  });
  return found;
}

/** Policy names and run ids become one path segment of a backup location, never a path. */
export function backupSegment(value: string, field: string): string | undefined {
  if (value === '' || value === '.' || value === '..' || /[/\\\0]/.test(value))
    return `backup ${field} "${value}" cannot be used as a path segment`;
  return undefined;
}

/**
 * `check` run once: later calls share its success (the CLI's pre-open and the engine's open make
 * one backend check); a failure is not remembered, so the next call checks again.
 */
export function checkedOnce(check: () => Promise<void>): () => Promise<void> {
  let checking: Promise<void> | undefined;
  return () => {
    checking ??= check().catch((error: unknown) => {
      checking = undefined;
      throw error;
    });
    return checking;
  };
}
