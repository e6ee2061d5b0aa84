import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../lib/core/canonical.ts';
import { policyHash } from '../../lib/engine/start.ts';
import { policyWith } from '../support/fakeRuns.ts';

describe('canonicalJson', () => {
  it.each([
    {
      value: { b: 1, a: [true, null, 'x'], c: { z: 1, y: undefined } },
      text: '{"a":[true,null,"x"],"b":1,"c":{"z":1}}',
    },
    // Integer-like names too: JSON.stringify would put "10" before "9", and any text before them.
    { value: { b: 1, 10: 'ten', 9: 'nine' }, text: '{"10":"ten","9":"nine","b":1}' },
    { value: [undefined, new Date('2024-01-02T03:04:05.006Z')], text: '[null,"2024-01-02T03:04:05.006Z"]' },
    { value: 'é"\n', text: '"é\\"\\n"' },
  ])('$text', ({ value, text }) => {
    expect(canonicalJson(value)).toBe(text);
  });
});

describe('policyHash', () => {
  it('is the same whatever the order fields were written in, and changes with any rule', () => {
    const policy = policyWith({});
    const reordered = Object.fromEntries(Object.entries(policy).reverse()) as typeof policy;
    expect(policyHash(reordered)).toBe(policyHash(policy));
    expect(policyHash({ ...policy, retention: '31d' })).not.toBe(policyHash(policy));
  });

  it('leaves secrets out: a rotated database password is the same policy', () => {
    const policy = policyWith({});
    const at = (password: string) => ({
      ...policy,
      store: { kind: 'postgres', url: `postgres://app:${password}@db/x` },
    });
    expect(policyHash(at('one') as typeof policy)).toBe(policyHash(at('two') as typeof policy));
  });
});
