import { restoreRun } from '../engine/restore.ts';
import { ConfigError } from '../errors.ts';
import { createStore } from '../stores/index.ts';
import type { Session } from './context.ts';
import { table } from './format.ts';

export interface RestoreFlags {
  run: string;
  key?: string[];
  json?: boolean;
}

/** Checked before the control store opens. */
export function checkRestoreFlags(flags: RestoreFlags): RestoreFlags {
  if (flags.run === '') throw ConfigError.single('--run', 'must not be empty', 'pass the run id, e.g. from: retention history');
  return flags;
}

export async function restoreCommand(session: Session, flags: RestoreFlags): Promise<number> {
  const summary = await restoreRun(
    { runId: flags.run, ...(flags.key && flags.key.length > 0 ? { keys: flags.key } : {}) },
    {
      control: session.control,
      policies: session.config.policies,
      storeFor: (policy) => createStore(policy),
      actor: session.actor,
      log: session.log,
    },
  );
  const failed = summary.outcomes.filter((outcome) => outcome.status === 'failed' || outcome.status === 'no_backup');
  if (flags.json) {
    session.io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    session.io.stdout.write(`${table(['key', 'outcome', 'error'], summary.outcomes.map((outcome) => [outcome.key, outcome.status, outcome.error ?? '']))}\n`);
    const restored = summary.outcomes.length - failed.length;
    session.io.stdout.write(`restored ${restored} of ${summary.outcomes.length} item(s) deleted by run ${summary.runId} (policy ${summary.policy})\n`);
  }
  return failed.length > 0 ? 1 : 0;
}
