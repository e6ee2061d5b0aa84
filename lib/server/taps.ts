import type { ControlStore } from '../core/control.ts';
import type { Census, Store } from '../core/store.ts';
import type { Item } from '../core/types.ts';

/**
 * Read-only taps on what a run does, for the API: its id as soon as it is recorded (a run started
 * over HTTP answers with its id, not its report), its own census (what it plans to delete, the
 * length of the progress bar) and, for listed dry runs, the sizes of what it scanned (bytes to
 * free). Every call is passed through unchanged; the engine is none the wiser.
 */
function tapped<T extends object>(
  target: T,
  taps: Partial<Record<keyof T, (result: never, args: never[]) => void>>,
): T {
  return new Proxy(target, {
    get(object, property) {
      // Read and bound on the target itself: stores and control stores keep private state.
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      const tap = taps[property as keyof T];
      if (!tap) return value.bind(object);
      return async (...args: never[]) => {
        const result = await (value as (...given: never[]) => Promise<never>).apply(object, args);
        tap(result, args);
        return result;
      };
    },
  });
}

/** `onStarted(runId)` once the run is in history, so `GET /api/runs/{id}` finds it. */
export function observeStart(control: ControlStore, onStarted: (runId: string) => void): ControlStore {
  return tapped(control, { startRun: (_result: undefined, [run]: Array<{ runId: string }>) => onStarted(run!.runId) });
}

export interface StoreTaps {
  /** The run's first census: before any deletion, what the limits are checked against. */
  onCensus(census: Census): void;
  /** Scanned items (only when sizes are wanted: it costs a map entry per item). */
  onScanned?(items: Item[]): void;
}

export function observeStore(store: Store, taps: StoreTaps): Store {
  let counted = false;
  return tapped(store, {
    census: (census: Census) => {
      if (counted) return;
      counted = true;
      taps.onCensus(census);
    },
    ...(taps.onScanned ? { scan: (page: { items: Item[] }) => taps.onScanned!(page.items) } : {}),
  });
}
