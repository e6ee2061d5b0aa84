import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { RunReport } from '../core/types.ts';
import { type Invocation, MAX_HOPS, type ManualPayloadInput } from './payload.ts';

/**
 * A `continue: true` backfill re-invokes its own function asynchronously after every `partial`
 * run, so a backlog larger than one invocation finishes without a human. Each hop is an ordinary
 * run: it takes the lease and resumes from the checkpoint, so a duplicate delivery (asynchronous
 * invocations are retried) is skipped as `skipped_locked` or continues harmlessly.
 */
export type ContinueDecision =
  | { next: 'none' }
  | { next: 'stop'; reason: string }
  | { next: 'invoke'; payload: ManualPayloadInput & { hop: number } };

/** Pure: whether this run's report calls for another hop. */
export function decideContinuation(
  report: RunReport,
  continuation: Invocation['continuation'],
  maxHops = MAX_HOPS,
): ContinueDecision {
  if (!continuation || report.status !== 'partial') return { next: 'none' };
  // Only a run that ran out of budget goes on: a pause, a lost lease or a limit is a stop.
  if (report.stopReason !== 'budget')
    return { next: 'stop', reason: `the run was stopped (${report.stopReason ?? 'unknown'})` };
  // A hop that neither scanned nor deleted had no budget left for one batch: another would not either.
  if (report.scanned === 0 && report.deleted === 0) return { next: 'stop', reason: 'the run made no progress' };
  const hop = continuation.hop + 1;
  if (hop > Math.min(maxHops, MAX_HOPS))
    return { next: 'stop', reason: `hop bound ${Math.min(maxHops, MAX_HOPS)} reached` };
  return { next: 'invoke', payload: { ...continuation.payload, hop } };
}

/** Fire-and-forget invocation of `functionName` (InvocationType `Event`: Lambda queues it and returns 202). */
export async function invokeAsync(lambda: LambdaClient, functionName: string, payload: unknown): Promise<void> {
  // Loaded on first use: most runs never continue, and the SDK costs cold-start time.
  const { InvokeCommand } = await import('@aws-sdk/client-lambda');
  const response = await lambda.send(
    new InvokeCommand({
      FunctionName: functionName,
      InvocationType: 'Event',
      Payload: new TextEncoder().encode(JSON.stringify(payload)),
    }),
  );
  if (response.StatusCode !== 202)
    throw new Error(`asynchronous invoke of ${functionName} returned HTTP ${response.StatusCode ?? 'unknown'}`);
}
