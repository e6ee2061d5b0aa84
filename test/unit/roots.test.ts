import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import { ConfigError } from '../../lib/errors.ts';
import { globProblem, rootProblem } from '../../lib/stores/fs/roots.ts';

describe('fs root lexical checks', () => {
  it.each([
    ['/', /^\/ is the whole file system$/],
    ['/etc', /^\/etc is a system directory$/],
    ['/tmp', /^\/tmp is a system directory$/],
    ['/lib64', /^\/lib64 is a system directory$/],
    ['data/files', /^"data\/files" is a relative path$/],
    ['./data', /relative path/],
    ['', /relative path/],
    ['/data/../etc', /has a "\." or "\.\." segment/],
    ['/data/./files', /has a "\." or "\.\." segment/],
    ['/data/..', /has a "\." or "\.\." segment/],
    ['/data//files', /empty segment/],
    ['/data/files/', /trailing "\/"/],
    ['/data/\0', /NUL/],
  ])('refuses %j', (root, message) => {
    const problem = rootProblem(root);
    expect(problem?.message).toMatch(message);
    expect(problem?.fix).toBeTruthy();
  });

  it('names the path meant in the fix', () => {
    expect(rootProblem('/data/../srv/files')?.fix).toBe('write the path it means without them: /srv/files');
    expect(rootProblem('/data//files/')?.fix).toBe('write it as /data/files');
  });

  it.each([
    '/var/log/app',
    '/tmp/retention-demo/temp',
    '/srv/uploads',
    '/home/alice/cache',
    '/etcetera',
    '/data',
    '/mnt/disk/tmp',
  ])('accepts %j', (root) => {
    expect(rootProblem(root)).toBeUndefined();
  });

  it.each([
    ['../outside/**', /has a "\.\." segment/],
    ['logs/../../etc/*', /has a "\.\." segment/],
    ['..', /has a "\.\." segment/],
    ['/etc/**', /is an absolute path/],
  ])('refuses the glob %j', (glob, message) => {
    expect(globProblem(glob)?.message).toMatch(message);
  });

  it.each(['**/*.log', 'tmp/**', '.cache/**', 'a..b/*', '**/..hidden'])('accepts the glob %j', (glob) => {
    expect(globProblem(glob)).toBeUndefined();
  });

  it('reports them at the field of the config, with the fix', () => {
    const policy = { name: 'files', class: 'blobs', retention: '30d', schedule: '0 * * * *' };
    const error = (() => {
      try {
        parseConfig({
          policies: [
            { ...policy, store: { kind: 'fs', root: '/etc' } },
            {
              ...policy,
              name: 'two',
              store: { kind: 'fs', root: '/data', include: ['ok/**', '../x'], exclude: ['/abs'] },
            },
            {
              name: 'rows',
              class: 'rows',
              retention: '30d',
              schedule: '0 * * * *',
              store: { kind: 'postgres', url: 'postgres://localhost/db' },
              table: 'documents',
              timestamp: 'created_at',
              blob: { column: 'path', store: { kind: 'fs', root: 'relative' } },
            },
          ],
        });
      } catch (caught) {
        return caught;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      {
        path: 'policies[0].store.root',
        message: '/etc is a system directory',
        fix: 'point root at the directory that holds only the files this policy governs',
      },
      {
        path: 'policies[1].store.include[1]',
        message: '"../x" has a ".." segment',
        fix: expect.stringContaining('inside root'),
      },
      {
        path: 'policies[1].store.exclude[0]',
        message: '"/abs" is an absolute path',
        fix: expect.stringContaining('relative to root'),
      },
      {
        path: 'policies[2].blob.store.root',
        message: '"relative" is a relative path',
        fix: expect.stringContaining('absolute path'),
      },
    ]);
  });
});
