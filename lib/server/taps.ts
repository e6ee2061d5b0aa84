import type { ControlStore } from '../core/control.ts';
import type { Census, Store } from '../core/store.ts';

/**
 * Read-only taps on what a run does, for the API: its id as soon as it is recorded (a run started
 * over HTTP answers with its id, not its report), its own census (what it plans to delete, the
 * length of the progress bar). Every call is passed through unchanged; the engine is none the wiser.
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
}

export function observeStore(store: Store, taps: StoreTaps): Store {
  let counted = false;
  return tapped(store, {
    census: (census: Census) => {
      if (counted) return;
      counted = true;
      taps.onCensus(census);
    },
  });
}
