import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { runCli } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * Issue 10, path 1: anyone who can write inside an fs root must not be able to steer the tool out
 * of it, and a root that would hand the tool something it must not govern is a config error.
 */
const shared = usePostgresAndScratch('retention-containment-');

const DAY = 86_400_000;
// Whole seconds: a file system stores them exactly, so an unchanged mtime compares equal.
const OLD = new Date(Math.floor((Date.now() - 400 * DAY) / 1000) * 1000);
const FILES = 2_000;
const ROUNDS = 3;
const names = Array.from({ length: FILES }, (_, index) => `f${String(index).padStart(4, '0')}`);

async function seed(directory: string, only: readonly string[], content: string): Promise<number> {
  await mkdir(directory, { recursive: true });
  await Promise.all(
    only.map(async (name) => {
      await writeFile(path.join(directory, name), content);
      await utimes(path.join(directory, name), OLD, OLD);
    }),
  );
  return only.length;
}

/**
 * Moves the one real directory between `root/a` and `root/b` and puts a symlink to `outside` at
 * the other name, as fast as it can, so that at almost every instant a scan finds the files under
 * one name while a deletion may meet a symlink under the other. Runs in its own process
 * (synchronous calls: no event loop between the steps) until the stop file appears (looked for
 * every 64 swaps), then prints the number of swaps, with the directory back at `root/a`. Files
 * only ever move inside the root.
 */
const SWAPPER = `
const fs = require('node:fs');
const [root, outside, stopFile] = process.argv.slice(1);
let [real, link] = [root + '/a', root + '/b'];
fs.symlinkSync(outside, link);
let swaps = 0;
while (swaps % 64 !== 0 || !fs.existsSync(stopFile)) {
  fs.unlinkSync(link);
  fs.renameSync(real, link);
  fs.symlinkSync(outside, real);
  [real, link] = [link, real];
  swaps += 1;
}
fs.unlinkSync(link);
if (real !== root + '/a') fs.renameSync(real, root + '/a');
process.stdout.write(String(swaps));
`;

function startSwapping(root: string, outside: string): { stop: () => Promise<number> } {
  const stopFile = path.join(path.dirname(root), `stop-${Date.now()}`);
  const child = execFile(process.execPath, ['-e', SWAPPER, root, outside, stopFile]);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return {
    stop: async () => {
      await writeFile(stopFile, '');
      expect(await exited).toBe(0);
      return Number(output);
    },
  };
}

describe('fs containment', () => {
  it('a directory swapped for a symlink during live runs never steers a deletion out of the root', async () => {
    const base = await mkdtemp(path.join(shared.scratch, 'race-'));
    const root = path.join(base, 'root');
    const outside = path.join(base, 'outside');
    await seed(outside, names, 'outside');
    const policy = {
      class: 'blobs',
      store: { kind: 'fs', root },
      retention: '30d',
      schedule: '0 * * * *',
      batchSize: 1_000,
      limits: { maxDeletesPerRun: 1_000_000, maxDeleteFraction: 1 },
    };
    // Two policies over the same directory, run at the same time: more deletions in flight per swap.
    const config = {
      policies: [
        { ...policy, name: 'even', store: { ...policy.store, include: ['**/*[02468]'] } },
        { ...policy, name: 'odd', store: { ...policy.store, include: ['**/*[13579]'] } },
      ],
    };
    const configPath = path.join(base, 'retention.json');
    await writeFile(configPath, JSON.stringify(config));
    const env = {
      RETENTION_DATABASE_URL: await shared.server.createDatabase('containment'),
      RETENTION_LOG_LEVEL: 'warn',
    };

    let seededInRoot = 0;
    let swaps = 0;
    const reports: RunReport[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const present = new Set(await readdir(path.join(root, 'a')).catch(() => []));
      seededInRoot += await seed(
        path.join(root, 'a'),
        names.filter((name) => !present.has(name)),
        'inside',
      );
      const swapping = startSwapping(root, outside);
      const results = await Promise.all(
        ['even', 'odd'].map((name) => runCli(['--config', configPath, 'run', '--policy', name, '--json'], { env })),
      );
      swaps += await swapping.stop();
      for (const result of results) {
        expect(result.code, result.stderr).toBe(0);
        reports.push(JSON.parse(result.stdout) as RunReport);
      }
    }

    // Nothing outside was touched: every file is there with its content and its mtime.
    const outsideLeft = await readdir(outside);
    const touched = [];
    for (const name of names) {
      const stats = await lstat(path.join(outside, name)).catch(() => undefined);
      if (!stats || stats.mtimeMs !== OLD.getTime() || (await readFile(path.join(outside, name), 'utf8')) !== 'outside')
        touched.push(name);
    }
    const inRootLeft = (await readdir(path.join(root, 'a'))).length;
    const deletedInside = seededInRoot - inRootLeft;

    // The audit trail equals reality: one `deleted` record per file gone from the root, each naming a key inside it.
    const records: Array<{ key: string; status: string }> = [];
    for (const name of ['even', 'odd']) {
      const audit = await runCli(['--config', configPath, 'audit', '--policy', name, '--limit', '100000', '--json'], {
        env,
      });
      expect(audit.code, audit.stderr).toBe(0);
      records.push(...(JSON.parse(audit.stdout) as Array<{ key: string; status: string }>));
    }
    const deletedRecords = records.filter((record) => record.status === 'deleted');
    const figures = {
      outsideFiles: FILES,
      outsideTouched: touched.length,
      swaps,
      runs: reports.length,
      seededInRoot,
      deletedInside,
      deletedRecords: deletedRecords.length,
      failedRefused: reports.reduce((sum, report) => sum + report.failed, 0),
    };
    console.log(`fs containment race: ${JSON.stringify(figures)}`);

    expect(touched).toEqual([]);
    expect(outsideLeft).toHaveLength(FILES);
    expect(swaps).toBeGreaterThan(100);
    expect(deletedInside).toBeGreaterThan(FILES / 2);
    expect(deletedRecords).toHaveLength(deletedInside);
    expect(records.filter((record) => !/^[ab]\/f\d{4}$/.test(record.key))).toEqual([]);
    // Several CLI processes on 2 shared cores: a generous timeout, not a timing assertion.
  }, 180_000);
});

/** What a case puts on disk under its own directory: the policy's root and anything else it needs. */
interface DangerousRoot {
  /** The root as configured. */
  root: string;
  /** Another policy, when the problem is a relation between two. */
  other?: Record<string, unknown>;
  /** Where the config file goes (default: the case directory). */
  configDirectory?: string;
  include?: string[];
  exclude?: string[];
  env?: Record<string, string>;
  cwd?: string;
}

const SYSTEM_DIRECTORIES = [
  '/etc',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib64',
  '/boot',
  '/dev',
  '/proc',
  '/sys',
  '/var',
  '/run',
  '/root',
  '/home',
  '/opt',
  '/srv',
  '/tmp',
];

/** Each case's `data/` holds an old file that a run would delete if the root were accepted. */
const dangerousRoots: Array<{
  name: string;
  field?: string;
  message: RegExp;
  setup: (dir: string, policy: Record<string, unknown>) => Promise<DangerousRoot> | DangerousRoot;
}> = [
  {
    name: 'a relative path',
    message: /"data" is a relative path/,
    setup: (dir: string) => ({ root: 'data', cwd: dir }),
  },
  {
    name: 'a path with ".."',
    message: /has a "\." or "\.\." segment/,
    setup: (dir: string) => ({ root: `${dir}/elsewhere/../data` }),
  },
  {
    name: 'a path with "."',
    message: /has a "\." or "\.\." segment/,
    setup: (dir: string) => ({ root: `${dir}/./data` }),
  },
  {
    name: 'a symlink',
    message: /is a symlink or is reached through one \(it resolves to .*\/data\)/,
    setup: async (dir: string) => {
      await symlink(path.join(dir, 'data'), path.join(dir, 'link'));
      return { root: path.join(dir, 'link') };
    },
  },
  {
    name: 'reached through a symlink',
    message: /is a symlink or is reached through one/,
    setup: async (dir: string) => {
      await symlink(dir, path.join(dir, 'via'));
      return { root: path.join(dir, 'via', 'data') };
    },
  },
  {
    name: 'containing $RETENTION_HOME',
    message: /contains \$RETENTION_HOME .*\/data\/\.retention/,
    setup: (dir: string) => ({
      root: path.join(dir, 'data'),
      env: { RETENTION_HOME: path.join(dir, 'data', '.retention') },
    }),
  },
  {
    name: "containing another policy's backup.to",
    message: /contains policies\[1\]\.backup\.to/,
    setup: async (dir: string, policy: Record<string, unknown>) => {
      await mkdir(path.join(dir, 'other'));
      return {
        root: path.join(dir, 'data'),
        other: {
          ...policy,
          name: 'other',
          store: { kind: 'fs', root: path.join(dir, 'other') },
          backup: { to: path.join(dir, 'data', 'backups'), keepFor: '7d' },
        },
      };
    },
  },
  {
    name: 'containing the config file',
    message: /contains the config file .*\/data\/retention\.json/,
    setup: (dir: string) => ({ root: path.join(dir, 'data'), configDirectory: path.join(dir, 'data') }),
  },
  {
    name: 'an include glob with ../',
    field: 'policies[0].store.include[0]',
    message: /"\.\.\/outside\/\*\*" has a "\.\." segment/,
    setup: (dir: string) => ({ root: path.join(dir, 'data'), include: ['../outside/**'] }),
  },
  {
    name: 'an absolute exclude glob',
    field: 'policies[0].store.exclude[0]',
    message: /"\/etc\/\*\*" is an absolute path/,
    setup: (dir: string) => ({ root: path.join(dir, 'data'), exclude: ['/etc/**'] }),
  },
];

describe('dangerous fs roots are config errors', () => {
  const policy = { class: 'blobs', retention: '30d', schedule: '0 * * * *', limits: { maxDeleteFraction: 1 } };
  let databaseUrl: string;
  beforeAll(async () => {
    databaseUrl = await shared.server.createDatabase('roots');
  });

  /** Error lines of a run that must have been refused as a whole: exit 2, nothing changed. */
  function refusedLines(result: { code: number; stdout: string; stderr: string }): string[] {
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('nothing was changed');
    return result.stderr.split('\n');
  }

  it('refuses / and every system directory, each policy root named with its fix', async () => {
    const dir = await mkdtemp(path.join(shared.scratch, 'system-'));
    const roots = ['/', ...SYSTEM_DIRECTORIES];
    const configPath = path.join(dir, 'retention.json');
    await writeFile(
      configPath,
      JSON.stringify({
        policies: roots.map((root, index) => ({ ...policy, name: `p${index}`, store: { kind: 'fs', root } })),
      }),
    );

    // A database that refuses connections: were a guard broken, the run would fail there, never
    // reach this machine's files.
    const result = await runCli(['--config', configPath, 'run', '--all', '--force'], {
      env: { RETENTION_DATABASE_URL: 'postgres://postgres@127.0.0.1:9/none', RETENTION_HOME: path.join(dir, 'home') },
    });

    const lines = refusedLines(result);
    expect(lines).toContain(
      'error: policies[0].store.root: / is the whole file system (point root at the directory that holds only the files this policy governs)',
    );
    for (const [index, root] of roots.entries()) {
      if (index > 0)
        expect(lines).toContain(
          `error: policies[${index}].store.root: ${root} is a system directory (point root at the directory that holds only the files this policy governs)`,
        );
    }
  });

  it.concurrent.each(dangerousRoots)(
    'refuses $name: exit 2, the field named, nothing touched',
    async ({ field = 'policies[0].store.root', message, setup }) => {
      const dir = await mkdtemp(path.join(shared.scratch, 'root-'));
      const survivor = path.join(dir, 'data', 'old.bin');
      await seed(path.dirname(survivor), ['old.bin'], 'old');
      const { root, other, configDirectory = dir, env = {}, cwd = dir, ...storeFields } = await setup(dir, policy);
      const configPath = path.join(configDirectory, 'retention.json');
      await writeFile(
        configPath,
        JSON.stringify({
          policies: [
            { ...policy, name: 'files', store: { kind: 'fs', root, ...storeFields } },
            ...(other ? [other] : []),
          ],
        }),
      );
      const home = env.RETENTION_HOME ?? path.join(dir, 'home');

      // A real control database: were the guard broken, this run would delete data/old.bin.
      const result = await runCli(['--config', configPath, 'run', '--all', '--force'], {
        env: { RETENTION_DATABASE_URL: databaseUrl, ...env, RETENTION_HOME: home },
        cwd,
      });

      const line = refusedLines(result).find((candidate) => candidate.startsWith(`error: ${field}: `));
      expect(line, result.stderr).toMatch(message);
      expect(line).toMatch(/\(.+\)$/);
      expect(existsSync(survivor)).toBe(true);
      expect(existsSync(home)).toBe(false);
    },
  );
});
