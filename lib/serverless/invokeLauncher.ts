import { setTimeout as sleep } from 'node:timers/promises';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { PolicyConfig } from '../config/schema.ts';
import type { ControlStore } from '../core/control.ts';
import type { Clock, DataClass } from '../core/types.ts';
import { newRunId } from '../engine/run.ts';
import { describeCause } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { ApiError } from '../server/http.ts';
import type { LaunchedRun, Launcher, LaunchOptions, StartedRun } from '../server/launcher.ts';
import { invokeAsync } from './continuation.ts';
import type { ManualPayloadInput } from './payload.ts';

/**
 * How the cloud API starts runs: never in the API function (its timeout is seconds, a run's
 * budget minutes), but by an asynchronous invoke of the policy's data-class function, which runs
 * it as it runs scheduled ones. The API picks the run id and sends it in the payload, so it can
 * answer with it; the data-class function records the run under that id (a redelivered event finds
 * the id taken and touches nothing). The API follows no run: progress is the run's history.
 */
export interface InvokeLauncherDeps {
  control: ControlStore;
  clock: Clock;
  log: Logger;
  /** The Lambda client (created on first use: most requests start nothing). */
  lambda: () => Promise<LambdaClient>;
  /** The function that runs a data class (`RETENTION_FUNCTION_<CLASS>`, set by the deployment). */
  functionFor: (dataClass: DataClass) => string;
  /** How long a start waits for the run to appear in history, so that its links answer at once. */
  recordWaitMs?: number;
}

const RECORD_WAIT_MS = 10_000;
const RECORD_POLL_MS = 200;

export class InvokeLauncher implements Launcher {
  constructor(private readonly deps: InvokeLauncherDeps) {}

  async start(policy: PolicyConfig, options: LaunchOptions, actor: string): Promise<StartedRun> {
    const runId = newRunId(this.deps.clock.now());
    const payload: ManualPayloadInput = {
      policy: policy.name,
      dryRun: options.dryRun,
      force: options.force,
      list: options.list,
      runId,
      actor,
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      ...(options.before !== undefined ? { before: options.before.toISOString() } : {}),
      ...(options.budgetMs !== undefined ? { budget: `${options.budgetMs}ms` } : {}),
    };
    const functionName = this.deps.functionFor(policy.class);
    try {
      await invokeAsync(await this.deps.lambda(), functionName, payload);
    } catch (error) {
      const message = `could not start the run: asynchronous invoke of ${functionName} failed: ${describeCause(error)}`;
      throw new ApiError(502, 'invoke_failed', message);
    }
    const log = this.deps.log.child({ correlation_id: runId, policy: policy.name });
    log.info('api_run_invoked', { function: functionName, dry_run: options.dryRun, by: actor });
    if (!(await this.recorded(runId))) log.warn('api_run_not_recorded_yet', { waited_ms: this.waitMs });
    return { runId, dryRun: options.dryRun };
  }

  /** Runs are followed where they run: none here. */
  get(): LaunchedRun | undefined {
    return undefined;
  }

  inFlight(): LaunchedRun[] {
    return [];
  }

  async close(): Promise<void> {}

  private get waitMs(): number {
    return this.deps.recordWaitMs ?? RECORD_WAIT_MS;
  }

  /** Whether the data-class function recorded the run within the wait (a cold start takes seconds). */
  private async recorded(runId: string): Promise<boolean> {
    for (let waited = 0; ; waited += RECORD_POLL_MS) {
      if (await this.deps.control.getRun(runId)) return true;
      if (waited >= this.waitMs) return false;
      await sleep(RECORD_POLL_MS);
    }
  }
}
