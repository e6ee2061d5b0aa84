import type { PolicyConfig } from '../config/schema.ts';
import { describeCause } from '../errors.ts';
import { type DiskLevel, type DiskThresholds, diskLevel } from './levels.ts';
import type { DiskProbe } from './probe.ts';

/** One file system that fs policies live on, as last measured. */
export interface FilesystemStatus {
  /** statfs type and device id (`ef53:2049`), or `unknown:<root>` when it could not be told. */
  id: string;
  /** The fs roots on it (policies' stores and rows policies' linked files). */
  roots: string[];
  policies: string[];
  level: DiskLevel;
  usedPercent?: number;
  totalBytes?: number;
  availBytes?: number;
  /** Why it could not be measured (`unknown`). */
  error?: string;
}

/** Every fs root of the config with the policy it belongs to. */
export function fsRootsOf(policies: PolicyConfig[]): Array<{ policy: PolicyConfig; root: string }> {
  return policies.flatMap((policy) => {
    const roots: Array<{ policy: PolicyConfig; root: string }> = [];
    if (policy.store.kind === 'fs') roots.push({ policy, root: policy.store.root });
    if (policy.class === 'rows' && policy.blob?.store.kind === 'fs')
      roots.push({ policy, root: policy.blob.store.root });
    return roots;
  });
}

/**
 * The file systems under the config's fs roots, each measured once (probe I/O only: no alert,
 * no file written). A root that cannot be looked at (missing, no permission) is its own entry,
 * `unknown`, with the error: the monitor says it cannot see, rather than leaving it out.
 */
export async function surveyDisks(
  policies: PolicyConfig[],
  thresholds: DiskThresholds,
  probe: DiskProbe,
): Promise<FilesystemStatus[]> {
  const groups = new Map<string, { roots: Set<string>; policies: Set<string>; error?: string }>();
  for (const { policy, root } of fsRootsOf(policies)) {
    let id: string;
    let error: string | undefined;
    try {
      id = await probe.filesystem(root);
    } catch (cause) {
      id = `unknown:${root}`;
      error = describeCause(cause);
    }
    const group = groups.get(id) ?? { roots: new Set<string>(), policies: new Set<string>() };
    group.roots.add(root);
    group.policies.add(policy.name);
    if (error) group.error = error;
    groups.set(id, group);
  }
  const statuses: FilesystemStatus[] = [];
  for (const [id, group] of groups) {
    const base = { id, roots: [...group.roots], policies: [...group.policies] };
    if (group.error) {
      statuses.push({ ...base, level: 'unknown', error: group.error });
      continue;
    }
    try {
      const usage = await probe.usage(base.roots[0]!);
      statuses.push({
        ...base,
        level: diskLevel(usage.usedPercent, thresholds),
        usedPercent: usage.usedPercent,
        totalBytes: usage.total,
        availBytes: usage.avail,
      });
    } catch (cause) {
      statuses.push({ ...base, level: 'unknown', error: describeCause(cause) });
    }
  }
  return statuses;
}
