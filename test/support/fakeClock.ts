import type { Clock } from '../../lib/core/types.ts';

/** A wall clock that moves only when a test says so: cutoffs, budgets and lease expiry read it. */
export class SettableClock implements Clock {
  private current: Date;

  constructor(start: Date) {
    this.current = new Date(start);
  }

  now(): Date {
    return new Date(this.current);
  }

  set(instant: Date): void {
    this.current = new Date(instant);
  }

  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}
