import { realpath } from 'node:fs/promises';
import path from 'node:path';

/**
 * Which directories an `fs` store may govern (invariant 10: the tool never lists its own state,
 * and a root such as `/` is a config error). A root deletes whatever old files it holds, so a
 * root that is, or holds, something the operator did not mean is refused before anything runs:
 *
 * - lexical (the schema, every parse): not absolute, `.`/`..`/empty segments, `/`, a system
 *   directory; include/exclude globs that are absolute or climb with `..`;
 * - on disk (`checkFsRoots` in config/roots.ts, when the CLI or a handler loads the config;
 *   `fsRootProblems` again at store open as a backstop): a root that is a symlink or reached through one, and a root that
 *   contains $RETENTION_HOME, a backup directory or the config file (compared by realpath).
 */
export interface RootProblem {
  message: string;
  fix: string;
}

/** Top-level system directories; a root equal to one, or containing one (only `/`), is refused. */
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

const NARROW = 'point root at the directory that holds only the files this policy governs';

/** Why `root` can never be an fs store root, judged from the string alone; undefined if it can. */
export function rootProblem(root: string): RootProblem | undefined {
  if (root.includes('\0')) return { message: 'contains a NUL byte', fix: 'remove it' };
  if (!path.posix.isAbsolute(root)) {
    const fix = 'use an absolute path: a relative one depends on where the tool is started';
    return { message: `"${root}" is a relative path`, fix };
  }
  if (root === '/') return { message: '/ is the whole file system', fix: NARROW };
  const segments = root.split('/').slice(1);
  if (segments.some((segment) => segment === '.' || segment === '..')) {
    const fix = `write the path it means without them: ${path.posix.resolve(root)}`;
    return { message: `"${root}" has a "." or ".." segment`, fix };
  }
  if (segments.some((segment) => segment === '')) {
    const fix = `write it as ${path.posix.resolve(root)}`;
    return { message: `"${root}" has an empty segment or a trailing "/"`, fix };
  }
  const system = SYSTEM_DIRECTORIES.find((directory) => contains(root, directory));
  if (system === root) return { message: `${root} is a system directory`, fix: NARROW };
  if (system) return { message: `${root} contains the system directory ${system}`, fix: NARROW };
  return undefined;
}

/** Why an include/exclude glob is refused: keys are relative to the root, so it could only mislead. */
export function globProblem(glob: string): RootProblem | undefined {
  if (glob.startsWith('/')) {
    const fix = 'globs match keys relative to root: drop the leading "/" (and the root part)';
    return { message: `"${glob}" is an absolute path`, fix };
  }
  if (glob.split('/').includes('..')) {
    const fix = 'globs match keys inside root only: remove the ".." segments';
    return { message: `"${glob}" has a ".." segment`, fix };
  }
  return undefined;
}

/** Something of the tool's own that no root may contain. */
export interface GuardedPath {
  path: string;
  /** How the error names it, e.g. `$RETENTION_HOME /srv/.retention (the embedded control store)`. */
  what: string;
}

/**
 * Every problem of one root, lexical first, then on disk: a root reached through a symlink, or one
 * containing any of `guarded`. A root that does not exist yet is judged by its nearest existing
 * ancestor (opening the store reports that it is missing).
 */
export async function fsRootProblems(root: string, guarded: readonly GuardedPath[]): Promise<RootProblem[]> {
  const lexical = rootProblem(root);
  if (lexical) return [lexical];
  const real = await realpathOfExisting(root);
  const problems: RootProblem[] = [];
  if (real !== root) {
    problems.push({
      message: `${root} is a symlink or is reached through one (it resolves to ${real})`,
      fix: 'name the real directory: the tool never follows a symlink to a root',
    });
  }
  for (const item of guarded) {
    if (contains(real, await realpathOfExisting(path.resolve(item.path)))) {
      problems.push({
        message: `${root} contains ${item.what}`,
        fix: "choose a root holding only this policy's files; keep the tool's own files outside every root",
      });
    }
  }
  return problems;
}

/** `directory` itself or anything below it. */
function contains(directory: string, candidate: string): boolean {
  return candidate === directory || candidate.startsWith(directory === '/' ? '/' : `${directory}/`);
}

/** realpath of the nearest existing ancestor, with the missing rest appended. */
async function realpathOfExisting(target: string): Promise<string> {
  const missing: string[] = [];
  let current = target;
  for (;;) {
    try {
      return path.join(await realpath(current), ...missing);
    } catch (error) {
      const parent = path.dirname(current);
      if (parent === current) throw error;
      missing.unshift(path.basename(current));
      current = parent;
    }
  }
}
