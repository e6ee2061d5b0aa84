import { statSync } from 'node:fs';
import path from 'node:path';

/**
 * What to do about an error underneath, where we recognise it: a full disk, a permission, a
 * read-only file system, nothing listening. errors.ts appends the remedy to the message it describes.
 */

/** One error of a cause chain, as far as describing it goes. */
export interface Link {
  message: string;
  errno?: Errno;
  context?: Record<string, unknown>;
}

/** The fields of an OS error (`ENOSPC`, `EACCES`, `ECONNREFUSED`) a remedy is told by. */
export interface Errno {
  code: string;
  path?: string;
  dest?: string;
  syscall?: string;
  address?: string;
  port?: number;
  hostname?: string;
}

interface Where {
  path: string;
  /** The path is $RETENTION_HOME (from a context), so the fix is to move it. */
  home: boolean;
  /** Named by the OS error itself: the file being written, which may not exist yet. */
  named: boolean;
}

/** Where an OS error happened: its own path (the target of a copy), else `path` or `home` in an error's context. */
function whereOf(errno: Errno | undefined, links: Link[]): Where | undefined {
  const own = errno?.dest ?? errno?.path;
  if (own) return { path: own, home: false, named: true };
  for (const { context } of links) {
    if (typeof context?.path === 'string') return { path: context.path, home: false, named: false };
    if (typeof context?.home === 'string') return { path: context.home, home: true, named: false };
  }
  return undefined;
}

const DISK_FULL_TEXT = /no space left on device/i;
/** PostgreSQL's SQLSTATE `disk_full`. */
const SQL_DISK_FULL = '53100';

/** What to do about the innermost cause we recognise (a full disk, a permission, nothing listening). */
export function remedyFor(links: Link[]): string | undefined {
  for (const { errno } of [...links].reverse()) {
    const remedy = errno && REMEDIES[errno.code]?.(errno, whereOf(errno, links));
    if (remedy) return remedy;
  }
  // A full disk reported in text: initdb's output, a database server's error.
  const sqlDiskFull = links.some((link) => link.context?.sqlState === SQL_DISK_FULL);
  if (!sqlDiskFull && !links.some((link) => DISK_FULL_TEXT.test(link.message))) return undefined;
  const where = whereOf(undefined, links);
  if (!where && sqlDiskFull) return "the database server's disk is full: free space on it or grow its storage";
  return diskFull(where);
}

/*
 * Remedies of file-system errors need to know where: "no space left on device" already says the
 * disk is full, and a remedy without a place would be repeated once an outer error knows it.
 */

function diskFull(where: Where | undefined): string | undefined {
  if (!where) return undefined;
  const directory = where.named ? path.dirname(where.path) : where.path;
  const mount = mountPoint(directory);
  const mounted = mount && mount !== directory ? ` (mounted at ${mount})` : '';
  const move = where.home ? 'RETENTION_HOME' : 'that directory';
  return `the disk holding ${directory}${mounted} is full: free space on it or move ${move} to a larger disk`;
}

/**
 * Where the file system of `target` is mounted: the highest ancestor on the same device. Only
 * asked once a disk is full, to say which disk; undefined when it cannot be told.
 */
function mountPoint(target: string): string | undefined {
  try {
    let current = path.resolve(target);
    const device = statSync(current).dev;
    for (let parent = path.dirname(current); parent !== current; parent = path.dirname(parent)) {
      if (statSync(parent).dev !== device) break;
      current = parent;
    }
    return current;
  } catch {
    return undefined;
  }
}

/** The verb of a syscall an operator would use (`open`, `unlink` → delete, `scandir` → list). */
const SYSCALL_VERBS: Record<string, string> = {
  scandir: 'list',
  opendir: 'list',
  unlink: 'delete',
  rmdir: 'delete',
  rm: 'delete',
  mkdir: 'create a directory in',
  copyfile: 'copy to',
  write: 'write',
  utime: 'set the times of',
  rename: 'rename',
  lstat: 'read',
  stat: 'read',
};

function permissionDenied(errno: Errno, where: Where | undefined): string | undefined {
  if (!where) return undefined;
  const user = process.getuid ? `the user running retention (uid ${process.getuid()})` : 'the user running retention';
  const verb = SYSCALL_VERBS[errno.syscall ?? ''] ?? errno.syscall ?? 'access';
  return `${user} may not ${verb} ${where.path}: grant that permission (chown/chmod) or run as a user who has it`;
}

const REMEDIES: Record<string, (errno: Errno, where: Where | undefined) => string | undefined> = {
  ENOSPC: (_errno, where) => diskFull(where),
  EDQUOT: (_errno, where) =>
    where && `the disk quota of the user running retention is used up on ${where.path}: free space or raise the quota`,
  EACCES: permissionDenied,
  EPERM: permissionDenied,
  EROFS: (_errno, where) =>
    where && `${where.path} is on a read-only file system: remount it read-write or choose another directory`,
  EMFILE: () => 'too many open files: raise the limit (ulimit -n)',
  ENFILE: () => 'the system is out of file handles: raise fs.file-max or close other programs',
  ECONNREFUSED: (errno) => {
    const at = errno.address ? ` at ${errno.address}:${errno.port}` : '';
    return `nothing is listening${at}: is the server running, and are host and port right?`;
  },
  ENOTFOUND: (errno) => {
    const host = errno.hostname ? ` ${errno.hostname}` : '';
    return `the host name${host} does not resolve: check the host in the URL or endpoint`;
  },
};
