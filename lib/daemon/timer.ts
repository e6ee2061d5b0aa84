/** The daemon's only way to wait: injected, so tests drive it with a fake clock. */
export type TimerHandle = unknown;

export interface Timer {
  set(callback: () => void, delayMs: number): TimerHandle;
  clear(handle: TimerHandle): void;
}

/** A pending timer keeps the process alive: the daemon lives until it is stopped. */
export const systemTimer: Timer = {
  set: (callback, delayMs) => setTimeout(callback, delayMs),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
