import * as z from 'zod';
import { DATABASE_TIMEOUT, type DurationBounds, POLICY_DURATION, parseDuration } from './durations.ts';
import { issue } from './issues.ts';

/**
 * How long items are kept: the part of a policy that the planner, the stores and the config all
 * read. Durations are checked when the config is parsed (bounds, units), so later code converts
 * them with `durationMs` and never meets a bad one.
 */
const boundedDuration = (bounds: DurationBounds) =>
  z.string().superRefine((value, ctx) => {
    const parsed = parseDuration(value, bounds);
    if (!parsed.ok) issue(ctx, parsed.message, parsed.fix);
  });

/** Every duration of a policy: at least 1s, at most 1000y, whole milliseconds. */
export const Duration = boundedDuration(POLICY_DURATION);

/** PostgreSQL statement and lock timeouts of the rows/tokens stores: from 1ms. */
export const DatabaseTimeout = boundedDuration(DATABASE_TIMEOUT);

export const RetentionByAttribute = z.strictObject({
  /** Attribute to look up per item: a column for rows; `prefix` matches key prefixes for blobs. */
  by: z.string().min(1),
  rules: z.record(z.string().min(1), Duration).refine((rules) => Object.keys(rules).length > 0, {
    error: 'needs at least one rule',
    params: { fix: 'e.g. { "General": "30d" }' },
  }),
  default: Duration.optional(),
});

export const Retention = z.union([Duration, RetentionByAttribute], {
  error:
    'must be a duration like "30d" or { "by": "<attribute>", "rules": { "<value>": "<duration>" }, "default": "<duration>" }',
});

export type RetentionSpec = z.output<typeof Retention>;
