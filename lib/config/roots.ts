import path from 'node:path';
import { ConfigError, type InputIssue } from '../errors.ts';
import { fsRootProblems, type GuardedPath } from '../stores/fs/roots.ts';
import type { RetentionConfig } from './schema.ts';

export interface RootContext {
  /** The config file as loaded. */
  configFile?: string;
  /** $RETENTION_HOME as the CLI resolves it (lib/control/local/embedded.ts); absent where none is used (Lambda). */
  retentionHome?: string;
  /** More of the tool's own state outside the home: the embedded server's files as root (lib/control/local/asRoot.ts). */
  ownDirectories?: GuardedPath[];
}

/**
 * The on-disk checks of every fs root in `config` (policies' stores and rows policies' linked file
 * stores): throws one ConfigError naming each bad root's field. Run when a config is loaded, before
 * anything is opened or touched.
 */
export async function checkFsRoots(config: RetentionConfig, context: RootContext): Promise<void> {
  const guarded: GuardedPath[] = [];
  if (context.retentionHome) {
    const what = `$RETENTION_HOME ${context.retentionHome} (the embedded control store)`;
    guarded.push({ path: context.retentionHome, what });
  }
  guarded.push(...(context.ownDirectories ?? []));
  if (context.configFile) guarded.push({ path: context.configFile, what: `the config file ${context.configFile}` });
  const { alertFile } = config.disk;
  if (alertFile) guarded.push({ path: alertFile, what: `disk.alertFile ${alertFile} (the disk monitor's state)` });
  config.policies.forEach((policy, index) => {
    // fs backups are directories; other stores' `backup.to` (a table, s3://…) is one only if absolute.
    if (policy.backup && (policy.store.kind === 'fs' || path.isAbsolute(policy.backup.to))) {
      guarded.push({ path: policy.backup.to, what: `policies[${index}].backup.to (${policy.backup.to})` });
    }
  });
  const issues: InputIssue[] = [];
  for (const { field, root } of fsRoots(config)) {
    for (const problem of await fsRootProblems(root, guarded)) issues.push({ path: field, ...problem });
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

function fsRoots(config: RetentionConfig): Array<{ field: string; root: string }> {
  return config.policies.flatMap((policy, index) => {
    const roots: Array<{ field: string; root: string }> = [];
    if (policy.store.kind === 'fs') roots.push({ field: `policies[${index}].store.root`, root: policy.store.root });
    if (policy.class === 'rows' && policy.blob?.store.kind === 'fs') {
      roots.push({ field: `policies[${index}].blob.store.root`, root: policy.blob.store.root });
    }
    return roots;
  });
}
