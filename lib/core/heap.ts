/**
 * The `capacity` best values offered, in memory bounded by the capacity however many are offered:
 * a binary heap whose top is the worst value kept. `better(a, b)`: `a` is kept before `b`.
 */
export class BestOf<T> {
  private readonly heap: T[] = [];

  constructor(
    private readonly capacity: number,
    private readonly better: (a: T, b: T) => boolean,
  ) {}

  offer(value: T): void {
    if (this.capacity <= 0) return;
    if (this.heap.length < this.capacity) {
      this.heap.push(value);
      this.siftUp(this.heap.length - 1);
    } else if (this.better(value, this.heap[0]!)) {
      this.heap[0] = value;
      this.siftDown(0);
    }
  }

  /** The worst value kept (the capacity-th best) once `capacity` were offered; undefined before. */
  worstKept(): T | undefined {
    return this.capacity > 0 && this.heap.length === this.capacity ? this.heap[0] : undefined;
  }

  /** What is kept, best first. */
  sorted(): T[] {
    return [...this.heap].sort((a, b) => (this.better(a, b) ? -1 : this.better(b, a) ? 1 : 0));
  }

  private siftUp(start: number): void {
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.better(this.heap[parent]!, this.heap[index]!)) return;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(start: number): void {
    let index = start;
    for (;;) {
      let worst = index;
      for (const child of [2 * index + 1, 2 * index + 2])
        if (child < this.heap.length && this.better(this.heap[worst]!, this.heap[child]!)) worst = child;
      if (worst === index) return;
      this.swap(index, worst);
      index = worst;
    }
  }

  private swap(a: number, b: number): void {
    [this.heap[a], this.heap[b]] = [this.heap[b]!, this.heap[a]!];
  }
}
