import { describe, expect, it } from 'vitest';
import { parseReconcileFlags, type ReconcileFlags } from '../../lib/cli/reconcile.ts';
import { parseConfig } from '../../lib/config/load.ts';
import { ConfigError } from '../../lib/errors.ts';
import { mainFilesOf, type SidecarRule, sidecarPatternProblem } from '../../lib/policy/sidecars.ts';
import { ago, CUTOFF, DAY, FakeRuns, oldItems } from '../support/fakeRuns.ts';

/** What reconcile relies on besides the stores: sidecar patterns, and intents kept to their own store. */
describe('sidecar patterns', () => {
  const rules: SidecarRule[] = [
    { pattern: '*.json', mainFile: ['*.jpg', '*.png'] },
    { pattern: 'meta/*.xml', mainFile: 'photos/*.jpg' },
    { pattern: 'a*', mainFile: '*a' },
  ];
  it.each([
    ['x.json', ['x.jpg', 'x.png']],
    ['dir/x.y.json', ['dir/x.y.jpg', 'dir/x.y.png']],
    ['meta/2024/x.xml', ['photos/2024/x.jpg']],
    ['x.jpg', undefined],
    ['.json', ['.jpg', '.png']],
    ['meta/x.json', ['meta/x.jpg', 'meta/x.png']],
    // "a*" → "*a" with the stem "a" would pair "aa" with itself: no main file, not a sidecar.
    ['aa', undefined],
    ['ab', ['ba']],
    ['a$&.json', ['a$&.jpg', 'a$&.png']],
  ])('%s → %j', (key, mains) => {
    expect(mainFilesOf(key, rules)).toEqual(mains);
  });

  it.each([
    ['*.json', undefined],
    ['**.json', '"**.json" has 2 "*"'],
    ['x.json', '"x.json" has 0 "*"'],
    ['*.{json,xml}', 'uses glob syntax other than "*"'],
    ['*', '"*" alone would make every file a sidecar'],
    ['/abs/*.json', 'leaves the root'],
    ['../*.json', 'leaves the root'],
  ])('pattern %s: %s', (pattern, message) => {
    const problem = sidecarPatternProblem(pattern);
    if (message === undefined) expect(problem).toBeUndefined();
    else expect(problem?.message).toContain(message);
  });

  it('a config names the field of a bad sidecar rule (exit 2)', () => {
    const config = (sidecars: unknown) => ({
      policies: [
        {
          name: 'photos',
          class: 'blobs',
          schedule: '0 2 * * *',
          retention: '30d',
          store: { kind: 'fs', root: '/srv/photos', sidecars },
        },
      ],
    });
    const issues = (sidecars: unknown) => {
      try {
        parseConfig(config(sidecars));
        return [];
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
      }
    };
    expect(issues([{ pattern: '*.json', mainFile: '*.jpg' }])).toEqual([]);
    expect(issues([{ pattern: '*.json', mainFile: ['*.jpg', 'x'] }])).toEqual([
      'policies[0].store.sidecars[0].mainFile[1]: "x" has 0 "*" (needs exactly one: the part shared with the other file)',
    ]);
    expect(issues([{ pattern: '*.json', mainFile: '*.json' }])).toEqual([
      'policies[0].store.sidecars[0].mainFile: "*.json" is both the sidecar and its main file',
    ]);
    expect(issues([])).toHaveLength(1);
  });
});

describe('reconcile flags (exit 2 before anything opens)', () => {
  const photos = (name: string, sidecars?: unknown) => ({
    name,
    class: 'blobs',
    schedule: '0 2 * * *',
    retention: '30d',
    store: { kind: 'fs', root: `/srv/${name}`, ...(sidecars ? { sidecars } : {}) },
  });
  const config = parseConfig({
    policies: [photos('photos', [{ pattern: '*.json', mainFile: '*.jpg' }]), photos('plain')],
  });
  const refusal = (flags: ReconcileFlags) => {
    try {
      parseReconcileFlags(config, flags);
      return undefined;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.message;
    }
  };

  it.each<[string, ReconcileFlags, string]>([
    ['no policy named', {}, 'error: --policy: the config has 2 policies'],
    [
      'two policies',
      { policy: ['photos', 'plain'] },
      'error: --policy: 2 policies named (reconcile one policy at a time)',
    ],
    ['nothing to reconcile', { policy: ['plain'] }, 'error: --policy: policy "plain" has no linked files'],
    ['a grace under 1h', { policy: ['photos'], grace: '59m' }, 'error: --grace: 59m is shorter than 1h'],
    ['a grace without unit', { policy: ['photos'], grace: '24' }, 'error: --grace:'],
  ])('%s', (_, flags, message) => {
    expect(refusal(flags)).toContain(message);
  });

  it('lists unless --delete; --delete --dry-run lists too; the grace is kept as written for the rule', () => {
    const parse = (flags: ReconcileFlags) => parseReconcileFlags(config, { policy: ['photos'], ...flags });
    expect(parse({})).toMatchObject({ grace: '24h', options: { dryRun: true, list: true, force: false } });
    expect(parse({ delete: true, grace: '3d', force: true }).options).toMatchObject({ dryRun: false, force: true });
    expect(parse({ delete: true, grace: '3d' }).grace).toBe('3d');
    expect(parse({ delete: true, dryRun: true }).options.dryRun).toBe(true);
  });
});

describe('recovery keeps to the store an intent names', () => {
  it("a crashed run's intents recorded against another store (reconcile's files) stay pending for a run over it", async () => {
    const runs = new FakeRuns({ items: oldItems(1) });
    const intent = {
      runId: 'crashed-run',
      policy: 'files',
      itemTimestamp: ago(40 * DAY),
      rule: 'orphan=no row in docs.file: 24h',
      cutoff: CUTOFF,
      actor: 'test:crashed',
      trigger: 'manual' as const,
      action: 'delete' as const,
    };
    await runs.control.startRun({ runId: 'crashed-run', policy: 'files', dryRun: false, startedAt: ago(DAY) });
    // Absent from this run's store: resolved against it, it would be recorded `deleted`.
    await runs.control.recordIntents([{ ...intent, store: 'fs:/srv/docs', key: 'docs/orphan.pdf' }]);

    await runs.run();
    expect(runs.control.statuses('crashed-run')).toEqual({ 'docs/orphan.pdf': 'pending' });
    expect(runs.events('intents_left')).toMatchObject([{ count: 1, stores: ['fs:/srv/docs'] }]);
  });
});
