import * as z from 'zod';
import { durationMs } from '../core/durations.ts';
import { parseInstantText } from '../core/instants.ts';
import { toInputIssues } from '../core/issues.ts';
import { Duration } from '../core/retention.ts';
import type { Trigger } from '../core/types.ts';
import type { InputIssue } from '../errors.ts';

/**
 * What a data-class function accepts (pure). Three shapes, one set of fields:
 * - a manual payload `{ policy, dryRun?, limit?, before?, force?, continue?, hop? }`, and from the
 *   cloud API also `runId`, `actor`, `list` and `budget` (serverless/invokeLauncher.ts);
 * - what the deployed schedules send, `{ policy, trigger: "scheduled", ... }` (SST's Cron passes its
 *   `event` as the whole input, so the EventBridge envelope never arrives; the marker says it);
 * - a raw EventBridge / Scheduler "Scheduled Event" envelope with the payload in `detail`, for
 *   rules created by hand.
 * Every shape is strict and carries the same optional fields with the same conflict rules: a field
 * is honoured or the event is refused, never ignored (`{ "dryrun": true }`, or a `dryRun` in an
 * envelope's `detail` that a loose parse dropped, would otherwise delete for real).
 */

/** Upper bound of self re-invocations of one `continue: true` backfill. */
export const MAX_HOPS = 20;

const PolicyName = z.string().min(1, { error: 'must name a policy' });

/** A real calendar date (2024-02-30 is refused, not read as March 1st); a time needs its zone. */
const Instant = z
  .string({ error: 'must be an ISO date such as "2024-01-31" or "2024-01-31T00:00:00Z"' })
  .superRefine((value, ctx) => {
    const parsed = parseInstantText(value, { requireZone: true, example: (text) => `"before": "${text}"` });
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message, params: { fix: parsed.fix } });
  });

const Flag = z.boolean({ error: 'must be true or false' });
/** engine/start.ts `newRunId`: UTC start second and 6 hex digits. */
const RUN_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;
const RUN_ID_SHAPE = 'must be a run id such as "20240131T020000Z-1a2b3c" (set by the API; leave it out)';
/** What server/auth.ts `actorFor` records: plain words, since it goes into audit records and logs. */
const ACTOR = /^[\w.:@+-]{1,100}$/;
const ACTOR_SHAPE = 'must be 1 to 100 letters, digits or . _ : @ + -, e.g. "api:operator:alice@example.com"';
const COUNT = 'must be a whole number above 0, e.g. 100';
const HOPS = `must be a whole number from 0 to ${MAX_HOPS}: the function counts its own re-invocations (leave it out)`;

const payloadFields = {
  policy: PolicyName,
  /** Report what would be deleted; delete nothing. */
  dryRun: Flag.optional(),
  /** Delete at most this many items, oldest first. */
  limit: z.number({ error: COUNT }).int({ error: COUNT }).positive({ error: COUNT }).optional(),
  /** Tighten the cutoff to this instant (never loosens it). */
  before: Instant.optional(),
  /** Proceed past the safety limits (logged). */
  force: Flag.optional(),
  /** Re-invoke asynchronously while the run ends `partial` (a backfill that finishes itself). */
  continue: Flag.optional(),
  /** How many times this backfill has re-invoked itself; set by the function, not by callers. */
  hop: z.number({ error: HOPS }).int({ error: HOPS }).min(0, { error: HOPS }).max(MAX_HOPS, { error: HOPS }).optional(),
  /** The id to record the run under: the cloud API answers with it before the run starts. */
  runId: z.string().regex(RUN_ID, { error: RUN_ID_SHAPE }).optional(),
  /** Who asked (`api:operator:alice`), recorded as the run's actor instead of the function. */
  actor: z.string().regex(ACTOR, { error: ACTOR_SHAPE }).optional(),
  /** Keep every touched item in the run's report (history), as the API's `list` does. */
  list: Flag.optional(),
  /** Replaces the policy's budget (still capped by the invocation's remaining time), e.g. "5m". */
  budget: Duration.optional(),
};

type PayloadFields = z.output<z.ZodObject<typeof payloadFields>>;

function conflictRules(payload: PayloadFields, ctx: z.RefinementCtx): void {
  const conflict = (field: 'dryRun' | 'limit' | 'runId', why: string): void =>
    ctx.addIssue({
      code: 'custom',
      path: ['continue'],
      message: `cannot be combined with ${field}: ${why}`,
      params: { fix: `drop "continue" or "${field}"` },
    });
  // A dry run keeps no checkpoint, and a limit applies per run: continuing would repeat or exceed them.
  if (payload.continue && payload.dryRun)
    conflict('dryRun', 'a dry run keeps no checkpoint, so every hop would redo the same plan');
  if (payload.continue && payload.limit !== undefined) conflict('limit', 'each hop would delete up to the limit again');
  if (payload.continue && payload.runId !== undefined)
    conflict('runId', 'each hop is a run of its own, with its own id');
}

export const ManualPayload = z.strictObject(payloadFields).superRefine(conflictRules);

export type ManualPayloadInput = z.input<typeof ManualPayload>;

const ScheduledInput = z.strictObject({ ...payloadFields, trigger: z.literal('scheduled') }).superRefine(conflictRules);

/** The envelope's own fields are AWS's; any other field (a `dryRun` beside `detail`) is refused. */
const EventBridgeEnvelope = z.strictObject({
  version: z.string().optional(),
  id: z.string().optional(),
  'detail-type': z.literal('Scheduled Event'),
  source: z.enum(['aws.events', 'aws.scheduler']),
  account: z.string().optional(),
  time: z.string().optional(),
  region: z.string().optional(),
  resources: z.array(z.string()).optional(),
  detail: ManualPayload,
});

export interface Invocation {
  policy: string;
  /** `inventory`: a shard of the Distributed Map (serverless/shard.ts), never from these payloads. */
  trigger: Extract<Trigger, 'scheduled' | 'manual' | 'backfill' | 'inventory'>;
  dryRun: boolean;
  force: boolean;
  limit?: number;
  before?: Date;
  runId?: string;
  actor?: string;
  list: boolean;
  budgetMs?: number;
  /** The validated manual payload, re-sent (with `hop + 1`) when the run continues itself. */
  continuation: { payload: ManualPayloadInput; hop: number } | null;
}

export type ParsedInvocation = { ok: true; invocation: Invocation } | { ok: false; issues: InputIssue[] };

/** With the input in each issue, a wrong type (`"limit": "5"`) is not reported as a missing field. */
const REPORT_INPUT = { reportInput: true };

export function parseInvocation(event: unknown): ParsedInvocation {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    const got = event === null ? 'null' : Array.isArray(event) ? 'an array' : typeof event;
    return {
      ok: false,
      issues: [
        { path: 'payload', message: `must be a JSON object, got ${got}`, fix: 'send e.g. {"policy": "temp-files"}' },
      ],
    };
  }
  if ('detail-type' in event) {
    const envelope = EventBridgeEnvelope.safeParse(event, REPORT_INPUT);
    return envelope.success ? invocationOf(envelope.data.detail, 'scheduled') : failed(envelope.error);
  }
  if ('trigger' in event) {
    const input = ScheduledInput.safeParse(event, REPORT_INPUT);
    if (!input.success) return failed(input.error);
    const { trigger: _scheduled, ...payload } = input.data;
    return invocationOf(payload, 'scheduled');
  }
  const manual = ManualPayload.safeParse(event, REPORT_INPUT);
  return manual.success
    ? invocationOf(manual.data, manual.data.continue ? 'backfill' : 'manual')
    : failed(manual.error);
}

function invocationOf(payload: PayloadFields, trigger: Invocation['trigger']): ParsedInvocation {
  return {
    ok: true,
    invocation: {
      policy: payload.policy,
      trigger,
      dryRun: payload.dryRun ?? false,
      force: payload.force ?? false,
      ...(payload.limit !== undefined ? { limit: payload.limit } : {}),
      ...(payload.before !== undefined ? { before: instantOf(payload.before) } : {}),
      ...(payload.runId !== undefined ? { runId: payload.runId } : {}),
      ...(payload.actor !== undefined ? { actor: payload.actor } : {}),
      list: payload.list ?? false,
      ...(payload.budget !== undefined ? { budgetMs: durationMs(payload.budget) } : {}),
      continuation: payload.continue ? { payload, hop: payload.hop ?? 0 } : null,
    },
  };
}

/** Already checked by the schema; parsed again here rather than by `new Date`, which rolls dates over. */
function instantOf(text: string): Date {
  const parsed = parseInstantText(text, { requireZone: true, example: (example) => example });
  if (!parsed.ok) throw new Error(`unchecked instant ${text}`);
  return parsed.instant;
}

function failed(error: z.ZodError): ParsedInvocation {
  return { ok: false, issues: toInputIssues(error, 'payload') };
}
