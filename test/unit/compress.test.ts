import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import type { Hold } from '../../lib/core/types.ts';
import { ConfigError } from '../../lib/errors.ts';
import { compressPlan, selectForCompression } from '../../lib/policy/compress.ts';
import { computeCutoffs } from '../../lib/policy/plan.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-06-01T00:00:00Z');
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);

const logs = {
  name: 'logs',
  class: 'blobs',
  store: { kind: 'fs', root: '/var/log/app' },
  retention: '30d',
  compress: { after: '7d' },
  schedule: '0 3 * * *',
};

function issuesOf(policy: Record<string, unknown>): string[] {
  try {
    parseConfig({ policies: [policy] });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message.split('\n');
  }
  throw new Error('expected the config to be rejected');
}

describe('compress config', () => {
  it('accepts compress on an fs policy, gzip by default', () => {
    expect(parseConfig({ policies: [logs] }).policies[0]).toMatchObject({ compress: { after: '7d', format: 'gzip' } });
  });

  it.each([
    ['after not shorter than the retention', { compress: { after: '30d' } }, 'policies[0].compress.after'],
    [
      'after past one of per-prefix rules',
      { retention: { by: 'prefix', rules: { 'a/': '5d', 'b/': '60d' } } },
      'policies[0].compress.after',
    ],
    ['zstd on Node 20', { compress: { after: '7d', format: 'zstd' } }, 'policies[0].compress.format'],
    [
      'a store that cannot compress',
      { store: { kind: 's3', bucket: 'logs-bucket', region: 'eu-west-1' } },
      'policies[0].compress',
    ],
    [
      'sidecars',
      { store: { kind: 'fs', root: '/var/log/app', sidecars: [{ pattern: '*.json', mainFile: '*.log' }] } },
      'policies[0].compress',
    ],
  ])('refuses %s, naming the field', (_case, change, field) => {
    const issues = issuesOf({ ...logs, ...change });
    expect(
      issues.some((line) => line.startsWith(`error: ${field}:`)),
      issues.join('\n'),
    ).toBe(true);
  });
  it('refuses a root that holds the files a rows policy links to (compressing renames them)', () => {
    const documents = {
      name: 'documents',
      class: 'rows',
      store: { kind: 'postgres', url: 'postgres://localhost/app' },
      table: 'public.documents',
      timestamp: 'created_at',
      retention: '1y',
      schedule: '0 3 * * *',
      blob: { column: 'file', store: { kind: 'fs', root: '/var/log/app/uploads' } },
    };
    try {
      parseConfig({ policies: [logs, documents] });
      throw new Error('expected the config to be rejected');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toContain(
        'error: policies[0].compress: /var/log/app overlaps /var/log/app/uploads, where rows policy "documents" links',
      );
    }
  });
});

describe('selectForCompression', () => {
  const cutoffs = computeCutoffs({ by: 'prefix', rules: { 'audit/': '1y' }, default: '30d' }, NOW);
  const plan = compressPlan({ after: '7d', format: 'gzip' }, 7 * DAY, cutoffs);
  const hold: Hold = {
    id: 1,
    policy: null,
    key: 'app/held.log',
    prefix: false,
    reason: 'case',
    createdBy: 'x',
    createdAt: NOW,
  };

  it.each([
    ['past after, before the delete cutoff', 'app/a.log', 10, true],
    ['exactly at after (strict, like eligibility)', 'app/b.log', 7, false],
    ['younger than after', 'app/c.log', 1, false],
    ['due for deletion: the delete tier takes it', 'app/d.log', 31, false],
    ['already compressed', 'app/e.log.gz', 10, false],
    ['held: kept exactly as it is', 'app/held.log', 10, false],
    ['a longer rule: still compressed, deleted later', 'audit/f.log', 100, true],
  ])('%s', (_case, key, days, selected) => {
    const chosen = selectForCompression([{ key, timestamp: ago(days), size: 1 }], cutoffs, plan, [hold]);
    expect(chosen.map((item) => item.key)).toEqual(selected ? [key] : []);
    if (selected) expect(chosen[0]).toMatchObject({ cutoff: ago(7), rule: 'compress after 7d (gzip)' });
  });
});
