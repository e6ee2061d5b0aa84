import type { DiskProbe, DiskUsage } from '../../lib/disk/probe.ts';

/**
 * File systems whose fullness a test sets: a root belongs to the mount with the longest prefix of
 * its path. `usedPercent` may be a function, so a test can make a disk empty as files go.
 */
export class FakeDisk implements DiskProbe {
  private readonly mounts = new Map<string, { id: string; usedPercent: number | (() => number) }>();
  /** Paths whose file system cannot be looked at (a missing root). */
  readonly broken = new Set<string>();

  mount(prefix: string, id: string, usedPercent: number | (() => number)): void {
    this.mounts.set(prefix, { id, usedPercent });
  }

  setUsed(prefix: string, usedPercent: number): void {
    this.mounts.get(prefix)!.usedPercent = usedPercent;
  }

  async usage(path: string): Promise<DiskUsage> {
    const { usedPercent } = this.mountOf(path);
    const percent = typeof usedPercent === 'function' ? usedPercent() : usedPercent;
    const total = 1_000_000;
    const avail = Math.round(total * (1 - percent / 100));
    return { total, free: avail, avail, usedPercent: percent };
  }

  async filesystem(path: string): Promise<string> {
    return this.mountOf(path).id;
  }

  private mountOf(path: string): { id: string; usedPercent: number | (() => number) } {
    if (this.broken.has(path)) throw new Error(`ENOENT: no such file or directory, statfs '${path}'`);
    const prefix = [...this.mounts.keys()]
      .filter((candidate) => path.startsWith(candidate))
      .sort((a, b) => b.length - a.length)[0];
    if (prefix === undefined) throw new Error(`no fake mount for ${path}`);
    return this.mounts.get(prefix)!;
  }
}
