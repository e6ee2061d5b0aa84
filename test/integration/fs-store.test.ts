import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../lib/core/store.ts';
import type { EligibleItem } from '../../lib/core/types.ts';
import { ConfigError } from '../../lib/errors.ts';
import { containedFile, openRoot, PinnedDirectories, within } from '../../lib/stores/fs/paths.ts';
import { createFsStore, type FsStoreConfig } from '../../lib/stores/fs/store.ts';
import {
  CONTRACT_NOW,
  contractCutoffs,
  daysAgo,
  eligibleItems,
  type SeedItem,
  type StoreFixture,
  scanAll,
  storeContract,
} from './store-contract.ts';

interface FsFixture extends StoreFixture {
  base: string;
  root: string;
  backupTo: string;
  store(options?: Partial<FsStoreConfig>): Store;
}

/** A temp dir holding `root/` (the store), `backups/` and `outside/` (must never be touched). */
async function fsFixture(): Promise<FsFixture> {
  const base = await mkdtemp(path.join(tmpdir(), 'retention-fs-'));
  const root = path.join(base, 'root');
  await mkdir(root);
  const fileOf = (key: string): string => path.join(root, ...key.split('/'));
  const store = (options: Partial<FsStoreConfig> = {}): Store =>
    createFsStore({ kind: 'fs', root, removeEmptyDirs: false, ...options });
  return {
    base,
    root,
    backupTo: path.join(base, 'backups'),
    store,
    createStore: () => store(),
    async seed(items: SeedItem[]) {
      for (const item of items) {
        await mkdir(path.dirname(fileOf(item.key)), { recursive: true });
        await writeFile(fileOf(item.key), 'x'.repeat(item.size ?? 1));
        await utimes(fileOf(item.key), item.timestamp, item.timestamp);
      }
    },
    async exists(key: string) {
      return (await lstat(fileOf(key)).catch(() => undefined))?.isFile() ?? false;
    },
    async touch(key: string, timestamp: Date) {
      await writeFile(fileOf(key), 'rewritten');
      await utimes(fileOf(key), timestamp, timestamp);
    },
    teardown: () => rm(base, { recursive: true, force: true }),
  };
}

storeContract('fs', fsFixture);

/** Forges an eligible item the way a bad checkpoint or audit row could, bypassing scan. */
function forged(key: string): EligibleItem {
  return { key, timestamp: daysAgo(365), cutoff: CONTRACT_NOW, rule: 'retention: 30d' };
}

describe('fs store', () => {
  let fixture: FsFixture;

  beforeEach(async () => {
    fixture = await fsFixture();
  });

  afterEach(async () => {
    await fixture.teardown();
  });

  it('walks in byte order of the relative POSIX path and resumes from any cursor', async () => {
    // `a-c` (0x2D) sorts before `a/…` (0x2F); 😀 (UTF-8 F0…) after ｡ (U+FF61, EF…) although
    // its UTF-16 surrogate (D83D) sorts first: the order must be bytes, not JS string order.
    const keys = ['a/b', 'a/c/d', 'a-c', 'a0', 'B', 'é', '｡', '😀', '.hidden'];
    await fixture.seed(keys.map((key) => ({ key, timestamp: daysAgo(40) })));
    const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const store = fixture.store();

    expect((await scanAll(store, 1)).items.map((item) => item.key)).toEqual(expected);
    for (const [index, cursor] of expected.entries()) {
      expect(
        (await scanAll(store, 2, cursor)).items.map((item) => item.key),
        `after ${cursor}`,
      ).toEqual(expected.slice(index + 1));
    }
    // A cursor inside a directory that has since vanished still resumes at the next key.
    await rm(path.join(fixture.root, 'a', 'c'), { recursive: true });
    expect((await scanAll(store, 10, 'a/c/d')).items.map((item) => item.key)).toEqual(
      expected.slice(expected.indexOf('a/c/d') + 1),
    );
  });

  it('scopes scan and census with include/exclude globs (dotfiles included)', async () => {
    await fixture.seed(
      ['keep/a.log', 'keep/b.txt', 'tmp/c.log', '.hidden.log', 'x.log', 'deep/er/y.log'].map((key) => ({
        key,
        timestamp: daysAgo(40),
      })),
    );
    const store = fixture.store({ include: ['**/*.log'], exclude: ['tmp/**', 'deep/**'] });

    expect((await scanAll(store)).items.map((item) => item.key)).toEqual(['.hidden.log', 'keep/a.log', 'x.log']);
    expect(await store.census({ cutoffs: contractCutoffs, holds: [] })).toMatchObject({
      total: 3,
      eligible: 3,
      exact: true,
    });
  });

  describe('never leaves the root', () => {
    let outside: string;

    beforeEach(async () => {
      outside = path.join(fixture.base, 'outside');
      await mkdir(outside);
      await writeFile(path.join(outside, 'secret.txt'), 'secret');
      await utimes(path.join(outside, 'secret.txt'), daysAgo(365), daysAgo(365));
      await fixture.seed([{ key: 'real.txt', timestamp: daysAgo(365) }]);
      await symlink(path.join(outside, 'secret.txt'), path.join(fixture.root, 'link-file'));
      await symlink(outside, path.join(fixture.root, 'link-dir'));
      await symlink(path.join(fixture.root, 'real.txt'), path.join(fixture.root, 'link-inside'));
    });

    it('lists no symlinked file or directory', async () => {
      const store = fixture.store();
      expect((await scanAll(store)).items.map((item) => item.key)).toEqual(['real.txt']);
      expect(await store.census({ cutoffs: contractCutoffs, holds: [] })).toMatchObject({ total: 1 });
    });

    it.each([
      { name: 'a symlink to a file outside', key: () => 'link-file', reason: /symlink/ },
      { name: 'a symlink to a file inside', key: () => 'link-inside', reason: /symlink/ },
      { name: 'a file under a symlinked directory', key: () => 'link-dir/secret.txt', reason: /symlink/ },
      { name: '../', key: () => '../outside/secret.txt', reason: /\.\./ },
      { name: 'a/../../', key: () => 'a/../../outside/secret.txt', reason: /\.\./ },
      {
        name: 'an absolute path',
        key: (outsideDir: string) => path.join(outsideDir, 'secret.txt'),
        reason: /absolute/,
      },
      { name: './', key: () => './real.txt', reason: /"\."/ },
      { name: 'an empty segment', key: () => 'a//real.txt', reason: /empty/ },
    ])('refuses to delete $name', async ({ key, reason }) => {
      const target = key(outside);
      const store = fixture.store({ removeEmptyDirs: true });

      const [outcome] = await store.delete([forged(target)]);

      expect(outcome).toMatchObject({ key: target, status: 'failed' });
      expect(outcome?.error).toMatch(reason);
      expect(await readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('secret');
      expect((await lstat(path.join(fixture.root, 'link-file'))).isSymbolicLink()).toBe(true);
      expect((await lstat(path.join(fixture.root, 'link-dir'))).isSymbolicLink()).toBe(true);
      expect(await fixture.exists('real.txt')).toBe(true);
    });

    it('deletes within the directory it opened, even once that directory is swapped for a symlink', async () => {
      // The race of issue 10 made deterministic: the parent is pinned, then replaced by a symlink
      // to a directory holding a file of the same name, then the file is deleted.
      await fixture.seed([{ key: 'd/secret.txt', timestamp: daysAgo(365) }]);
      const root = await openRoot(fixture.root, 'fs:test');
      const directories = new PinnedDirectories(root.fd);
      try {
        expect(await directories.lookup(['d'])).toMatchObject({ ok: true });
        await rename(path.join(fixture.root, 'd'), path.join(fixture.root, 'moved'));
        await symlink(outside, path.join(fixture.root, 'd'));

        const file = await containedFile(directories, 'd/secret.txt');
        expect(file.ok).toBe(true);
        if (file.ok) await rm(within(file.parentFd, file.name));

        expect(await readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('secret');
        expect(await readdir(path.join(fixture.root, 'moved'))).toEqual([]);
        // A batch that opens `d` now meets the symlink and refuses it.
        const fresh = new PinnedDirectories(root.fd);
        expect(await containedFile(fresh, 'd/secret.txt')).toEqual({
          ok: false,
          missing: false,
          reason: 'refused: d is a symlink',
        });
        await fresh.close();
      } finally {
        await directories.close();
        await root.close();
      }
    });

    it.each([
      { name: 'a symlink', root: ['link'] },
      { name: 'reached through a symlink', root: ['link', 'sub'] },
    ])('refuses to open a root that is $name (the backstop of the config checks)', async ({ root }) => {
      await mkdir(path.join(outside, 'sub'));
      await symlink(outside, path.join(fixture.base, 'link'));
      const store = createFsStore({ kind: 'fs', root: path.join(fixture.base, ...root), removeEmptyDirs: false });

      const error = await store.open().catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues[0]).toMatchObject({
        path: 'store.root',
        message: expect.stringMatching(/is a symlink or is reached through one/),
      });
    });

    it('refuses to restore through a symlinked directory', async () => {
      const store = fixture.store();
      const ref = { to: fixture.backupTo, policy: 'p', runId: 'r' };
      await mkdir(path.join(fixture.backupTo, 'p', 'r', 'link-dir'), { recursive: true });
      await writeFile(path.join(fixture.backupTo, 'p', 'r', 'link-dir', 'planted.txt'), 'planted');

      const [outcome] = await store.backups!.restore(ref, ['link-dir/planted.txt']);

      expect(outcome).toMatchObject({ status: 'failed' });
      expect(await lstat(path.join(outside, 'planted.txt')).catch(() => undefined)).toBeUndefined();
    });
  });

  it('fails (does not throw) for a key that names a directory', async () => {
    await fixture.seed([{ key: 'dir/file.txt', timestamp: daysAgo(40) }]);
    expect(await fixture.store().delete([forged('dir')])).toEqual([
      { key: 'dir', status: 'failed', error: 'refused: not a regular file' },
    ]);
  });

  it('removes directories a run left empty, bottom-up, never the root', async () => {
    await fixture.seed([
      { key: 'deep/er/est/old.txt', timestamp: daysAgo(40) },
      { key: 'mixed/old.txt', timestamp: daysAgo(40) },
      { key: 'mixed/young.txt', timestamp: daysAgo(1) },
      { key: 'top.txt', timestamp: daysAgo(40) },
    ]);
    const store = fixture.store({ removeEmptyDirs: true });
    const eligible = [...(await eligibleItems(store)).values()];
    expect(eligible.map((item) => item.key).sort()).toEqual(['deep/er/est/old.txt', 'mixed/old.txt', 'top.txt']);

    await store.delete(eligible);

    expect(await lstat(path.join(fixture.root, 'deep')).catch(() => undefined)).toBeUndefined();
    expect((await lstat(path.join(fixture.root, 'mixed'))).isDirectory()).toBe(true);
    expect((await lstat(fixture.root)).isDirectory()).toBe(true);
    await store.delete([forged('mixed/young.txt')]);
    expect(await lstat(path.join(fixture.root, 'mixed')).catch(() => undefined)).toBeUndefined();
    expect((await lstat(fixture.root)).isDirectory()).toBe(true);
  });

  it('leaves emptied directories alone without removeEmptyDirs', async () => {
    await fixture.seed([{ key: 'deep/old.txt', timestamp: daysAgo(40) }]);
    const store = fixture.store();
    await store.delete([...(await eligibleItems(store)).values()]);
    expect((await lstat(path.join(fixture.root, 'deep'))).isDirectory()).toBe(true);
  });

  it.each([
    { name: 'missing', prepare: async (_root: string) => undefined, message: /does not exist/ },
    { name: 'a file', prepare: (root: string) => writeFile(root, 'not a dir'), message: /is not a directory/ },
  ])('rejects a root that is $name with a ConfigError on store.root', async ({ prepare, message }) => {
    const root = path.join(fixture.base, 'no-such-root');
    await prepare(root);
    const store = createFsStore({ kind: 'fs', root, removeEmptyDirs: false });

    const error = await store.open().catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]).toMatchObject({
      path: 'store.root',
      message: expect.stringMatching(message),
      fix: 'create it or fix the path',
    });
    await expect(store.scan({ cutoffs: contractCutoffs, limit: 1 })).rejects.toBeInstanceOf(ConfigError);
  });

  it('refuses a backup location inside the root', async () => {
    await fixture.seed([{ key: 'a.txt', timestamp: daysAgo(40) }]);
    const store = fixture.store();
    const items = [...(await eligibleItems(store)).values()];
    await expect(
      store.backups!.backup(items, { to: path.join(fixture.root, 'backups'), policy: 'p', runId: 'r' }),
    ).rejects.toBeInstanceOf(ConfigError);
  });

  it('holds no directory handle after a call, an early-stopped scan, or close()', async () => {
    await fixture.seed(['a/b/c/1', 'a/b/c/2', 'a/b/d/3', 'e/4', 'e/5'].map((key) => ({ key, timestamp: daysAgo(40) })));
    const heldUnderBase = async (): Promise<number> => {
      const targets = await Promise.all(
        (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
      );
      return targets.filter((target) => target.startsWith(fixture.base)).length;
    };
    const store = fixture.store({ removeEmptyDirs: true });
    await store.open();
    expect(await heldUnderBase()).toBe(1);

    expect((await store.scan({ cutoffs: contractCutoffs, limit: 1 })).items).toHaveLength(1);
    expect(await heldUnderBase()).toBe(1);
    const items = [...(await eligibleItems(store)).values()];
    const ref = { to: fixture.backupTo, policy: 'p', runId: 'r' };
    await store.backups!.backup(items, ref);
    await store.delete(items.slice(0, 3));
    expect(await heldUnderBase()).toBe(1);
    // Restoring a/b/d/3 recreates a/, a/b/ and a/b/d/ (removed as emptied) one level at a time.
    expect(await store.backups!.restore(ref, ['a/b/d/3', 'e/4'])).toEqual([
      { key: 'a/b/d/3', status: 'restored' },
      { key: 'e/4', status: 'exists' },
    ]);
    expect(await store.present(['a/b/c/1', 'a/b/d/3'])).toEqual(new Set(['a/b/d/3']));
    expect(await heldUnderBase()).toBe(1);

    await store.close!();
    expect(await heldUnderBase()).toBe(0);
    // A closed store opens its root again on the next call.
    expect((await scanAll(store)).items.map((item) => item.key)).toEqual(['a/b/d/3', 'e/4', 'e/5']);
    await store.close!();

    // A batch spread over many directories releases them past a bound instead of running out of descriptors.
    await fixture.seed(
      Array.from({ length: 300 }, (_, index) => ({ key: `many/d${index}/f`, timestamp: daysAgo(40) })),
    );
    const root = await openRoot(fixture.root, 'fs:test');
    const directories = new PinnedDirectories(root.fd);
    for (let index = 0; index < 300; index += 1) await directories.lookup(['many', `d${index}`]);
    expect(await heldUnderBase()).toBe(302);
    await directories.trim();
    expect(await heldUnderBase()).toBe(1);
    await root.close();
  });

  it('prunes run backups older than the given instant', async () => {
    await fixture.seed([{ key: 'a.txt', timestamp: daysAgo(40) }]);
    const store = fixture.store();
    const items = [...(await eligibleItems(store)).values()];
    for (const runId of ['run-old', 'run-new']) {
      expect(await store.backups!.backup(items, { to: fixture.backupTo, policy: 'p', runId })).toEqual([
        { key: 'a.txt', ok: true },
      ]);
    }
    await utimes(path.join(fixture.backupTo, 'p', 'run-old'), daysAgo(10), daysAgo(10));
    await utimes(path.join(fixture.backupTo, 'p', 'run-new'), daysAgo(1), daysAgo(1));

    expect(await store.backups!.prune(fixture.backupTo, 'p', daysAgo(7))).toBe(1);
    expect(await lstat(path.join(fixture.backupTo, 'p', 'run-old')).catch(() => undefined)).toBeUndefined();
    expect((await lstat(path.join(fixture.backupTo, 'p', 'run-new', 'a.txt'))).isFile()).toBe(true);
    expect(await store.backups!.prune(fixture.backupTo, 'never-backed-up', daysAgo(7))).toBe(0);
  });
});
