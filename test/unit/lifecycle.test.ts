import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import type { NativeExpiryInput } from '../../lib/core/store.ts';
import type { Hold } from '../../lib/core/types.ts';
import { lifecyclePlan } from '../../lib/stores/s3/lifecycle.ts';
import { S3StoreSchema } from '../../lib/stores/s3/schema.ts';

/**
 * The S3 PutBucketLifecycleConfiguration request as the S3 API reference defines the parts we
 * emit (docs.aws.amazon.com/AmazonS3/latest/API/API_LifecycleRule.html): 1..1000 rules, an ID of
 * at most 255 characters, unique; Status Enabled; a Filter with a Prefix of at most 1024 bytes;
 * Expiration Days a positive integer; NoncurrentDays a positive integer.
 */
const LifecycleConfiguration = z.strictObject({
  Rules: z
    .array(
      z.strictObject({
        ID: z.string().min(1).max(255),
        Status: z.enum(['Enabled', 'Disabled']),
        Filter: z.strictObject({ Prefix: z.string().refine((prefix) => Buffer.byteLength(prefix) <= 1024) }),
        Expiration: z.strictObject({ Days: z.number().int().positive() }),
        NoncurrentVersionExpiration: z.strictObject({ NoncurrentDays: z.number().int().positive() }).optional(),
      }),
    )
    .min(1)
    .max(1000)
    .refine((rules) => new Set(rules.map((rule) => rule.ID)).size === rules.length, 'IDs are unique'),
});

const store = (extra: Record<string, unknown> = {}) =>
  S3StoreSchema.parse({ kind: 's3', bucket: 'docs', prefix: 'pdfs/', region: 'us-east-1', ...extra });
const input = (
  retention: NativeExpiryInput['retention'],
  extra: Partial<NativeExpiryInput> = {},
): NativeExpiryInput => ({
  policy: 'pdfs',
  retention,
  holds: [],
  backup: false,
  ...extra,
});
const rules = (plan: ReturnType<typeof lifecyclePlan>) =>
  LifecycleConfiguration.parse(plan.configuration).Rules.map((rule) => [rule.Filter.Prefix, rule.Expiration.Days]);

describe('S3 Lifecycle rules for a policy', () => {
  it('a flat retention is one rule over the store prefix, in whole days', () => {
    const plan = lifecyclePlan(store(), input('30d'));
    expect(plan).toMatchObject({ mechanism: 's3_lifecycle', equivalent: true, reasons: [] });
    expect(rules(plan)).toEqual([['pdfs/', 30]]);
    expect(plan.apply).toContain('put-bucket-lifecycle-configuration --bucket docs');
  });

  it('rounds up to whole days, never down (an object is never expired before the policy would)', () => {
    expect(rules(lifecyclePlan(store(), input('36h')))).toEqual([['pdfs/', 2]]);
    expect(rules(lifecyclePlan(store(), input('1s')))).toEqual([['pdfs/', 1]]);
    expect(lifecyclePlan(store(), input('36h')).notes.join('\n')).toContain('becomes 2 day(s)');
  });

  it('per-prefix rules: one rule per prefix, the default over the store prefix, shorter inside longer', () => {
    const plan = lifecyclePlan(
      store(),
      input({
        by: 'prefix',
        rules: { 'pdfs/testing/': '24h', 'pdfs/financial/': '1y', 'other/': '1d' },
        default: '2y',
      }),
    );
    expect(plan.equivalent).toBe(true);
    // `other/` is outside the store's prefix: nothing of the policy's there.
    expect(rules(plan)).toEqual([
      ['pdfs/', 730],
      ['pdfs/testing/', 1],
      ['pdfs/financial/', 365],
    ]);
  });

  it('a prefix kept longer than the prefix around it cannot be expressed (S3 applies the shorter)', () => {
    const plan = lifecyclePlan(store(), input({ by: 'prefix', rules: { 'pdfs/legal/': '7y' }, default: '30d' }));
    expect(plan.equivalent).toBe(false);
    expect(plan.reasons.join('\n')).toMatch(/"pdfs\/legal\/" is kept 7y, inside "pdfs\/" kept 30d/);
  });

  it('without a default, only the prefixes with rules expire (the rest is unclassified, kept)', () => {
    const plan = lifecyclePlan(store(), input({ by: 'prefix', rules: { 'pdfs/tmp/': '7d' } }));
    expect(plan.equivalent).toBe(true);
    expect(rules(plan)).toEqual([['pdfs/tmp/', 7]]);
  });

  it('shards get a rule each; versions "all" expire noncurrent versions too', () => {
    const plan = lifecyclePlan(store({ prefixes: ['pdfs/a', 'pdfs/b'], versions: 'all' }), input('10d'));
    const parsed = LifecycleConfiguration.parse(plan.configuration);
    expect(parsed.Rules.map((rule) => rule.Filter.Prefix)).toEqual(['pdfs/a', 'pdfs/b']);
    expect(parsed.Rules.every((rule) => rule.NoncurrentVersionExpiration?.NoncurrentDays === 1)).toBe(true);
  });

  it('says why not: holds, globs, backups, rules on another attribute', () => {
    const hold: Hold = {
      id: 1,
      policy: 'pdfs',
      key: 'pdfs/case-7/',
      prefix: true,
      reason: 'litigation',
      createdBy: 'alice',
      createdAt: new Date(),
    };
    const reasons = (
      extra: Record<string, unknown>,
      given: Partial<NativeExpiryInput>,
      retention: NativeExpiryInput['retention'] = '30d',
    ) => lifecyclePlan(store(extra), input(retention, given)).reasons.join('\n');
    expect(reasons({}, { holds: [hold] })).toMatch(/1 legal hold\(s\) apply/);
    expect(reasons({ include: ['**/*.pdf'] }, {})).toMatch(/include\/exclude globs/);
    expect(reasons({}, { backup: true })).toMatch(/backup: Lifecycle deletes without a copy/);
    expect(reasons({}, {}, { by: 'purpose', rules: { Legal: '7y' } })).toMatch(/retention is per "purpose"/);
  });
});
