import { stat, statfs } from 'node:fs/promises';

/** Space on one file system, as `df` counts it: blocks reserved for root are neither used nor available. */
export interface DiskUsage {
  /** Bytes. */
  total: number;
  free: number;
  /** Free to unprivileged users (what a writer can still use). */
  avail: number;
  /** used / (used + avail), in percent with one decimal: `df`'s Use%. */
  usedPercent: number;
}

/**
 * How the disk monitor looks at file systems: statfs here, an injected fake in tests (a full
 * disk cannot be made on demand, nor emptied by deleting a few test files).
 */
export interface DiskProbe {
  usage(path: string): Promise<DiskUsage>;
  /**
   * Which file system holds `path` (statfs type and device id): policies whose roots share one
   * share its space, so they are measured, alerted on and cleaned up together.
   */
  filesystem(path: string): Promise<string>;
}

export function usageOf(blocks: { bsize: number; blocks: number; bfree: number; bavail: number }): DiskUsage {
  const total = blocks.blocks * blocks.bsize;
  const free = blocks.bfree * blocks.bsize;
  const avail = blocks.bavail * blocks.bsize;
  const used = total - free;
  const usedPercent = used + avail === 0 ? 0 : Math.round((used / (used + avail)) * 1000) / 10;
  return { total, free, avail, usedPercent };
}

export const statfsProbe: DiskProbe = {
  usage: async (path) => usageOf(await statfs(path)),
  filesystem: async (path) => {
    const [fs, file] = await Promise.all([statfs(path), stat(path)]);
    return `${fs.type.toString(16)}:${file.dev}`;
  },
};
