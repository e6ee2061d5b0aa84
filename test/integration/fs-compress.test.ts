import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store, StoreCompression } from '../../lib/core/store.ts';
import type { EligibleItem } from '../../lib/core/types.ts';
import { createFsStore } from '../../lib/stores/fs/store.ts';

/**
 * The fs store's compress capability on a real directory: the round trip, what it re-checks at
 * compress time (modified since the scan, a `.gz` name already taken), what it never follows
 * (symlinks), and the leftovers of a compression killed midway.
 */
const DAY = 86_400_000;
// Whole seconds: stored exactly, so an unchanged mtime compares equal.
const OLD = new Date(Math.floor((Date.now() - 10 * DAY) / 1000) * 1000);

let base: string;
let root: string;
let outside: string;
let store: Store;

beforeEach(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'retention-compress-'));
  root = path.join(base, 'root');
  outside = path.join(base, 'outside');
  await mkdir(root);
  await mkdir(outside);
  store = createFsStore({ kind: 'fs', root, removeEmptyDirs: false }, { format: 'gzip' });
  await store.open();
});

afterEach(async () => {
  await store.close();
  await rm(base, { recursive: true, force: true });
});

async function seed(key: string, content: string | Buffer, mtime = OLD, at = root): Promise<EligibleItem> {
  const file = path.join(at, key);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  await utimes(file, mtime, mtime);
  const size = Buffer.byteLength(content);
  return { key, timestamp: mtime, size, cutoff: new Date(), rule: 'compress after 7d (gzip)' };
}

function compression(): StoreCompression {
  if (!store.compress) throw new Error('the store offers no compression');
  return store.compress;
}

const logText = (lines: number) =>
  Array.from({ length: lines }, (_, i) => `2026-01-01T00:00:${i % 60}Z GET /api/items/${i % 7} 200\n`).join('');

describe('fs compress', () => {
  it('round trip: the .gz decompresses to the original, keeps its mtime and mode; the original is gone', async () => {
    const content = logText(2_000);
    const item = await seed('logs/app.log', content);
    await chmod(path.join(root, 'logs/app.log'), 0o640);
    const [outcome] = await compression().compress([item]);
    expect(outcome).toMatchObject({ key: 'logs/app.log', status: 'compressed', compressedKey: 'logs/app.log.gz' });
    expect(outcome!.bytesBefore).toBe(Buffer.byteLength(content));
    expect(outcome!.bytesAfter).toBeLessThan(outcome!.bytesBefore! / 5);
    const gz = path.join(root, 'logs/app.log.gz');
    expect(gunzipSync(await readFile(gz)).toString()).toBe(content);
    expect((await stat(gz)).mtime.getTime()).toBe(OLD.getTime());
    expect((await stat(gz)).size).toBe(outcome!.bytesAfter);
    expect((await stat(gz)).mode & 0o777).toBe(0o640);
    expect(await readdir(path.join(root, 'logs'))).toEqual(['app.log.gz']);
  });

  it('keeps a file modified since the scan, and leaves no copy behind', async () => {
    const item = await seed('a.log', 'first');
    const later = new Date(OLD.getTime() + 5_000);
    await seed('a.log', 'rewritten since the scan', later);
    const [outcome] = await compression().compress([item]);
    expect(outcome).toMatchObject({ status: 'kept' });
    expect(outcome!.error).toContain('modified since the scan');
    expect(await readdir(root)).toEqual(['a.log']);
  });

  it('a .gz that is not its copy is never replaced; one that is (a compression killed after its link) is finished', async () => {
    const other = await seed('other.log', 'plain');
    await seed('other.log.gz', gzipSync('something else entirely'));
    const done = await seed('done.log', 'the same bytes');
    await seed('done.log.gz', gzipSync('the same bytes'));
    const outcomes = await compression().compress([other, done]);
    const byKey = new Map(outcomes.map((outcome) => [outcome.key, outcome]));
    expect(byKey.get('other.log')).toMatchObject({ status: 'kept' });
    expect(gunzipSync(await readFile(path.join(root, 'other.log.gz'))).toString()).toBe('something else entirely');
    expect(byKey.get('done.log')).toMatchObject({ status: 'compressed', compressedKey: 'done.log.gz' });
    expect((await readdir(root)).sort()).toEqual(['done.log.gz', 'other.log', 'other.log.gz']);
  });

  it('never follows a symlinked file or directory: the targets outside stay as they are', async () => {
    await seed('secret.log', 'outside data', OLD, outside);
    await symlink(path.join(outside, 'secret.log'), path.join(root, 'link.log'));
    await symlink(outside, path.join(root, 'dir'));
    const item = (key: string): EligibleItem => ({ key, timestamp: OLD, cutoff: new Date(), rule: 'compress' });
    const outcomes = await compression().compress([item('link.log'), item('dir/secret.log')]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['failed', 'failed']);
    expect(await readdir(outside)).toEqual(['secret.log']);
    expect((await lstat(path.join(root, 'link.log'))).isSymbolicLink()).toBe(true);
  });

  it('missing originals are done; the lease check stops it before any file', async () => {
    const item = await seed('gone.log', 'x');
    await rm(path.join(root, 'gone.log'));
    expect(await compression().compress([item])).toMatchObject([{ status: 'missing' }]);
    const kept = await seed('b.log', 'y');
    const refused = await compression().compress([kept], {
      beforeRequest: () => {
        throw new Error('lease lost');
      },
    });
    expect(refused).toEqual([]);
    expect(await readdir(root)).toEqual(['b.log']);
  });

  it('temporaries of a killed compression are never items; the next pass that lists them removes them', async () => {
    await seed('c.log', 'z');
    const leftover = '.retention-compress-0123456789abcdef.tmp';
    await seed(`deep/${leftover}`, 'half a gzip stream');
    const page = await store.scan({ cutoffs: { computedAt: new Date(), rules: [] }, limit: 100 });
    expect(page.items.map((item) => item.key)).toEqual(['c.log']);
    expect(await compression().removeLeftovers()).toBe(1);
    expect(await readdir(path.join(root, 'deep'))).toEqual([]);
  });

  it('compressed files stay in the scope of include globs that name the originals', async () => {
    await store.close();
    store = createFsStore({ kind: 'fs', root, include: ['**/*.log'], removeEmptyDirs: false }, { format: 'gzip' });
    await seed('a.log', 'a');
    await seed('a.log.gz', gzipSync('a'));
    await seed('a.txt', 'not in scope');
    const page = await store.scan({ cutoffs: { computedAt: new Date(), rules: [] }, limit: 100 });
    expect(page.items.map((item) => item.key)).toEqual(['a.log', 'a.log.gz']);
  });
});
