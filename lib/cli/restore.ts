import { restoreRun } from '../engine/restore.ts';
import { ConfigError } from '../errors.ts';
import { createStore } from '../stores/registry.ts';
import type { Session } from './context.ts';
import { table } from './format.ts';

export interface RestoreFlags {
  run: string;
  key?: string[];
  json?: boolean;
}

/** Checked before the control store opens. */
export function checkRestoreFlags(flags: RestoreFlags): RestoreFlags {
  if (flags.run === '')
    throw ConfigError.single('--run', 'must not be empty', 'pass the run id, e.g. from: retention history');
  return flags;
}

/**
 * A restore is whole or says what is missing (invariant 11): every item that could not come
 * back (no backup, failed, or a row whose linked file could not come back) is listed with its
 * reason, and the command exits 1. Items already present again count as back.
 */
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
  const notBack = summary.outcomes.filter((outcome) => outcome.status === 'failed' || outcome.status === 'no_backup');
  if (flags.json) {
    session.io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    session.io.stdout.write(
      `${table(
        ['key', 'outcome', 'error'],
        summary.outcomes.map((outcome) => [outcome.key, outcome.status, outcome.error ?? '']),
      )}\n`,
    );
    const count = (status: string) => summary.outcomes.filter((outcome) => outcome.status === status).length;
    const present = count('exists') > 0 ? `, ${count('exists')} already present` : '';
    session.io.stdout.write(
      `restored ${count('restored')} of ${summary.outcomes.length} item(s) deleted by run ${summary.runId} (policy ${summary.policy})${present}\n`,
    );
  }
  if (notBack.length > 0) {
    const shown = notBack.slice(0, 10).map((outcome) => `${outcome.key} (${outcome.error ?? outcome.status})`);
    const more = notBack.length > shown.length ? `, and ${notBack.length - shown.length} more` : '';
    session.io.stderr.write(
      `error: restore --run ${summary.runId}: ${notBack.length} item(s) could not be restored: ${shown.join('; ')}${more}\n`,
    );
  }
  return notBack.length > 0 ? 1 : 0;
}
