import * as z from 'zod';
import { durationMs } from '../core/durations.ts';
import { parseInstantText } from '../core/instants.ts';
import { Duration } from '../core/retention.ts';

/**
 * What the API's actions accept (pure zod). Strict objects: a misspelt field (`dryrun`) is refused
 * by name, never ignored, since ignoring it could turn a dry run into a live one.
 */
const Flag = z.boolean({ error: 'must be true or false' });
const Text = (what: string) =>
  z
    .string()
    .min(1, { error: `must not be empty (${what})` })
    .max(500);

/** A real calendar date; a time needs its zone (the server's local time is not the caller's). */
const Instant = z.string().transform((value, ctx) => {
  const parsed = parseInstantText(value, { requireZone: true, example: (text) => `"before": "${text}"` });
  if (parsed.ok) return parsed.instant;
  ctx.addIssue({ code: 'custom', message: parsed.message, params: { fix: parsed.fix } });
  return z.NEVER;
});

const COUNT = 'must be a whole number above 0, e.g. 100';

export const RunBody = z.strictObject({
  /**
   * Required: true reports what a live run would delete, false deletes. An empty POST (a curl
   * without its body) must not delete anything.
   */
  dryRun: Flag,
  /** Delete at most this many items, oldest first. */
  limit: z.number({ error: COUNT }).int({ error: COUNT }).positive({ error: COUNT }).optional(),
  /** Tighten the cutoff to this instant (never loosens it). */
  before: Instant.optional(),
  /** Time budget for this run, e.g. "30s", "15m". */
  budget: Duration.transform(durationMs).optional(),
  /** Proceed past the safety limits (logged, with the actor). */
  force: Flag.default(false),
  /** Keep every touched item in the report (`GET /api/runs/{id}/items`). */
  list: Flag.default(false),
});

/** Actions that take nothing: a body, if any, must be empty (a field there was meant for something). */
export const EmptyBody = z.strictObject({});

/** Acknowledge an item of the attention queue: which, and why (the reason of its governance record). */
export const DismissBody = z.strictObject({
  key: Text('the item key, see GET /api/attention'),
  reason: Text('e.g. "owned by team X, ticket 123"'),
});

export const PauseBody = z.strictObject({ reason: Text('say why, e.g. "incident 4411"').optional() });

/** One of `key` or `prefix`; `policy` absent or null: the hold applies to every policy. */
export const HoldBody = z
  .strictObject({
    policy: z.string().nullable().optional(),
    key: Text('the item key to hold').optional(),
    // An empty prefix would hold everything, silently: stopping everything is what a pause is for.
    prefix: Text('to stop every deletion use POST /api/pause').optional(),
    reason: Text('e.g. "litigation hold, case 1042"'),
  })
  .superRefine((hold, ctx) => {
    if ((hold.key === undefined) === (hold.prefix === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['key'],
        message: 'give exactly one of key or prefix',
        params: { fix: 'e.g. {"key": "legal/case-1042.pdf", "reason": "…"}' },
      });
    }
  });

/** A query parameter that counts something: digits only, from 1 to `max`. */
const QueryCount = (max: number) =>
  z
    .string()
    .regex(/^\d+$/, { error: `must be a whole number from 1 to ${max}` })
    .transform(Number)
    .pipe(z.number().int().min(1).max(max));

const QueryOffset = z.string().regex(/^\d+$/, { error: 'must be a whole number from 0' }).transform(Number);

export const RunsQuery = z.strictObject({ policy: z.string().optional(), limit: QueryCount(1000).default(50) });

export const StatsQuery = z.strictObject({ days: QueryCount(366).default(30) });

export const ItemsQuery = z.strictObject({ limit: QueryCount(10_000).default(1000), offset: QueryOffset.default(0) });

export const AuditQuery = z
  .strictObject({
    key: z.string().optional(),
    policy: z.string().optional(),
    run: z.string().optional(),
    limit: QueryCount(10_000).default(200),
  })
  .superRefine((query, ctx) => {
    if (!query.key && !query.policy && !query.run) {
      ctx.addIssue({
        code: 'custom',
        path: ['key'],
        message: 'say which records',
        params: { fix: 'pass key, policy and/or run' },
      });
    }
  });

export const HoldsQuery = z.strictObject({ policy: z.string().optional() });
