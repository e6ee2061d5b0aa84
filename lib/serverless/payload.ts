import * as z from 'zod';
import { toInputIssues } from '../config/issues.ts';
import type { Trigger } from '../engine/types.ts';
import type { InputIssue } from '../errors.ts';

/**
 * What a data-class function accepts (pure). Three shapes:
 * - a manual payload `{ policy, dryRun?, limit?, before?, force?, continue?, hop? }` (strict: an
 *   unknown or misspelt field is an error, never ignored: `{ "dryrun": true }` must not delete);
 * - what the deployed schedules send, `{ policy, trigger: "scheduled" }` (SST's Cron passes its
 *   `event` as the whole input, so the EventBridge envelope never arrives; the marker says it);
 * - a raw EventBridge "Scheduled Event" envelope with the policy in `detail`, for rules created by
 *   hand.
 */

/** Upper bound of self re-invocations of one `continue: true` backfill. */
export const MAX_HOPS = 20;

const PolicyName = z.string().min(1, { error: 'must name a policy' });

const Instant = z.union([z.iso.date(), z.iso.datetime({ offset: true })], {
  error: 'must be an ISO date such as "2024-01-31" or "2024-01-31T00:00:00Z"',
});

export const ManualPayload = z
  .strictObject({
    policy: PolicyName,
    /** Report what would be deleted; delete nothing. */
    dryRun: z.boolean().optional(),
    /** Delete at most this many items, oldest first. */
    limit: z.number().int().positive().optional(),
    /** Tighten the cutoff to this instant (never loosens it). */
    before: Instant.optional(),
    /** Proceed past the safety limits (logged). */
    force: z.boolean().optional(),
    /** Re-invoke asynchronously while the run ends `partial` (a backfill that finishes itself). */
    continue: z.boolean().optional(),
    /** How many times this backfill has re-invoked itself; set by the function, not by callers. */
    hop: z.number().int().min(0).max(MAX_HOPS).optional(),
  })
  .superRefine((payload, ctx) => {
    const conflict = (field: 'dryRun' | 'limit', why: string): void =>
      ctx.addIssue({ code: 'custom', path: ['continue'], message: `cannot be combined with ${field}: ${why}`, params: { fix: `drop "continue" or "${field}"` } });
    // A dry run keeps no checkpoint, and a limit applies per run: continuing would repeat or exceed them.
    if (payload.continue && payload.dryRun) conflict('dryRun', 'a dry run keeps no checkpoint, so every hop would redo the same plan');
    if (payload.continue && payload.limit !== undefined) conflict('limit', 'each hop would delete up to the limit again');
  });

export type ManualPayloadInput = z.input<typeof ManualPayload>;

const ScheduledInput = z.strictObject({ policy: PolicyName, trigger: z.literal('scheduled') });

const EventBridgeEnvelope = z.looseObject({
  'detail-type': z.literal('Scheduled Event'),
  source: z.enum(['aws.events', 'aws.scheduler']),
  detail: z.looseObject({ policy: PolicyName }),
});

export interface Invocation {
  policy: string;
  trigger: Extract<Trigger, 'scheduled' | 'manual' | 'backfill'>;
  dryRun: boolean;
  force: boolean;
  limit?: number;
  before?: Date;
  /** The validated manual payload, re-sent (with `hop + 1`) when the run continues itself. */
  continuation: { payload: ManualPayloadInput; hop: number } | null;
}

export type ParsedInvocation = { ok: true; invocation: Invocation } | { ok: false; issues: InputIssue[] };

const scheduled = (policy: string): Invocation => ({ policy, trigger: 'scheduled', dryRun: false, force: false, continuation: null });

export function parseInvocation(event: unknown): ParsedInvocation {
  const fields = typeof event === 'object' && event !== null ? (event as Record<string, unknown>) : {};
  if ('detail-type' in fields) {
    const envelope = EventBridgeEnvelope.safeParse(event);
    return envelope.success ? { ok: true, invocation: scheduled(envelope.data.detail.policy) } : failed(envelope.error);
  }
  if ('trigger' in fields) {
    const input = ScheduledInput.safeParse(event);
    return input.success ? { ok: true, invocation: scheduled(input.data.policy) } : failed(input.error);
  }
  const manual = ManualPayload.safeParse(event);
  if (!manual.success) return failed(manual.error);
  const payload = manual.data;
  return {
    ok: true,
    invocation: {
      policy: payload.policy,
      trigger: payload.continue ? 'backfill' : 'manual',
      dryRun: payload.dryRun ?? false,
      force: payload.force ?? false,
      ...(payload.limit !== undefined ? { limit: payload.limit } : {}),
      ...(payload.before !== undefined ? { before: new Date(payload.before) } : {}),
      continuation: payload.continue ? { payload, hop: payload.hop ?? 0 } : null,
    },
  };
}

function failed(error: z.ZodError): ParsedInvocation {
  return { ok: false, issues: toInputIssues(error, 'payload') };
}
