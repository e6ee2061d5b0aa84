/** One launched step: its work (a delete batch) may still be running. */
interface Launched<T> {
  value: T;
  settled: boolean;
  /** Resolves (never rejects) once the work settled. */
  work: Promise<void>;
  error?: { cause: unknown };
}

export interface Settled<T> {
  value: T;
  /** What the work threw, if it did. */
  error?: { cause: unknown };
}

/**
 * Work launched in step order, handed back in that order once settled: a run keeps several delete
 * batches in flight yet writes each step's checkpoint only after every earlier step settled, so a
 * checkpoint never passes an item whose batch is still running (or failed).
 */
export class InOrder<T> {
  private readonly queue: Array<Launched<T>> = [];

  launch(value: T, work?: Promise<unknown>): void {
    const entry: Launched<T> = { value, settled: work === undefined, work: Promise.resolve() };
    if (work)
      entry.work = work.then(
        () => {
          entry.settled = true;
        },
        (cause: unknown) => {
          entry.settled = true;
          entry.error = { cause };
        },
      );
    this.queue.push(entry);
  }

  /** Some launched work threw (it may wait behind running work to be handed back). */
  get failed(): boolean {
    return this.queue.some((entry) => entry.error !== undefined);
  }

  /** Launched work not yet settled. */
  get pending(): number {
    return this.queue.filter((entry) => !entry.settled).length;
  }

  /**
   * Waits until at most `maxPending` are still running, then hands back the settled steps at the
   * head, in launch order (a settled step behind a running one waits for it).
   */
  async settled(maxPending: number): Promise<Array<Settled<T>>> {
    while (this.pending > maxPending)
      await Promise.race(this.queue.filter((entry) => !entry.settled).map((entry) => entry.work));
    const ready: Array<Settled<T>> = [];
    while (this.queue[0]?.settled) {
      const { value, error } = this.queue.shift()!;
      ready.push(error ? { value, error } : { value });
    }
    return ready;
  }
}
