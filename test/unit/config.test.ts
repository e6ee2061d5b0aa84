import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import { ConfigError } from '../../lib/errors.ts';

const tempFiles = {
  name: 'temp-files',
  class: 'blobs',
  store: { kind: 'fs', root: '/tmp/retention-demo/temp' },
  retention: '1h',
  schedule: '0 * * * *',
};

function issuesOf(document: unknown): string[] {
  try {
    parseConfig(document);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message.split('\n');
  }
  throw new Error('expected the config to be rejected');
}

describe('config validation', () => {
  it('accepts the documented minimal JSON policy and fills in safe defaults', () => {
    const config = parseConfig({ policies: [tempFiles] });
    const [policy] = config.policies;
    expect(policy).toMatchObject({
      name: 'temp-files',
      enabled: true,
      budget: '10m',
      batchSize: 500,
      limits: { maxDeletesPerRun: 10_000, maxDeleteFraction: 0.5 },
      sla: { maxOverdue: '1d', maxFailureRate: 0.01, warnAt: 0.8 },
      allowShortRetention: false,
    });
  });

  it('accepts per-purpose retention with a default', () => {
    const retention = {
      by: 'purpose_code',
      rules: { 'System Testing': '24h', General: '30d', Financial: '1y', Legal: '7y', Medical: '10y' },
      default: '30d',
    };
    expect(parseConfig({ policies: [{ ...tempFiles, retention }] }).policies[0]!.retention).toEqual(retention);
  });

  it.each([
    [{ ...tempFiles, retention: '30' }, 'error: policies[0].retention: "30" has no unit (add one: "30d"'],
    [{ ...tempFiles, name: 'Temp Files' }, 'error: policies[0].name: must be kebab-case'],
    [{ ...tempFiles, schedule: '0 * * *' }, 'error: policies[0].schedule: "0 * * *" has 4 fields, not 5'],
    [{ ...tempFiles, store: { kind: 'ftp', root: '/x' } }, 'error: policies[0].store.kind: unknown store kind'],
    [{ ...tempFiles, store: { kind: 'fs' } }, 'error: policies[0].store.root: missing (this field is required)'],
    [{ ...tempFiles, retention: '30m' }, 'error: policies[0].retention: retention 30m is under 1h (if that is intended, set "allowShortRetention": true'],
    [{ ...tempFiles, retention: { by: 'purpose', rules: { Test: '5m' } } }, 'error: policies[0].retention.rules.Test: retention 5m is under 1h'],
    [{ ...tempFiles, limits: { maxDeleteFraction: 2 } }, 'error: policies[0].limits.maxDeleteFraction:'],
    [{ ...tempFiles, retentoin: '1d' }, 'error: policies[0]: unknown field "retentoin" (remove it or check its spelling)'],
    [{ ...tempFiles, class: 'files' }, 'error: policies[0].class: unknown data class'],
    [{ ...tempFiles, backup: { to: '/tmp/retention-demo/temp/.backups', keepFor: '7d' } }, 'error: policies[0].backup.to: /tmp/retention-demo/temp/.backups is inside the store root'],
  ])('rejects %j with the field path and the fix', (policy, expected) => {
    expect(issuesOf({ policies: [policy] }).some((line) => line.startsWith(expected))).toBe(true);
  });

  it('accepts a DynamoDB control store and a tokens policy over a DynamoDB table', () => {
    const config = parseConfig({
      control: { kind: 'dynamodb', table: 'retention-control', region: 'eu-west-1' },
      policies: [{ name: 'refresh-tokens', class: 'tokens', store: { kind: 'dynamodb', table: 'sessions', key: { partition: 'pk', sort: 'sk' } }, retention: '7d', schedule: '*/15 * * * *' }],
    });
    expect(config.control).toEqual({ kind: 'dynamodb', table: 'retention-control', region: 'eu-west-1' });
    expect(config.policies[0]).toMatchObject({ class: 'tokens', store: { kind: 'dynamodb', expiresAttribute: 'expiresAt', conditional: true } });
    expect(issuesOf({ policies: [{ name: 't', class: 'tokens', store: { kind: 'dynamodb', table: 'sessions', key: { partition: 'pk' } }, retention: '7d', schedule: '0 * * * *', backup: { to: '/b', keepFor: '1d' } }] })).toContain(
      'error: policies[0].backup: tokens are never backed up (a copy of a credential defeats deleting it) (remove backup from this policy)',
    );
    expect(issuesOf({ control: { kind: 'redis' }, policies: [tempFiles] })[0]).toContain('control.kind: unknown control store kind');
  });

  it('accepts short retention when explicitly allowed', () => {
    expect(parseConfig({ policies: [{ ...tempFiles, retention: '30m', allowShortRetention: true }] }).policies[0]!.retention).toBe('30m');
  });

  it('rejects duplicate policy names and an empty policy list', () => {
    expect(issuesOf({ policies: [tempFiles, tempFiles] })).toContain(
      'error: policies[1].name: duplicate policy name "temp-files" (also policies[0]) (give each policy a unique name)',
    );
    expect(issuesOf({ policies: [] })[0]).toContain('policies: needs at least one policy');
  });
});
