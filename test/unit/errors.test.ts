import net from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  ControlStoreError,
  describeCause,
  InterruptedError,
  LIMIT_ADVICE,
  LimitExceededError,
  LimitReachedError,
  RetentionError,
  SqlError,
  StoreError,
  UnauditedDeletionError,
} from '../../lib/errors.ts';
import { checkLimits } from '../../lib/policy/limits.ts';

/** An OS error as Node makes it (`fs`, `net`): code, syscall, path. */
function osError(message: string, fields: { code: string; syscall?: string; path?: string; dest?: string }): Error {
  return Object.assign(new Error(message), fields);
}

const dropped = new Error('Connection terminated unexpectedly');
const enospcWrite = osError('ENOSPC: no space left on device, write', { code: 'ENOSPC', syscall: 'write' });
const enospcCopy = osError("ENOSPC: no space left on device, copyfile '/data/a' -> '/nonexistent/backup/files/r1/a'", {
  code: 'ENOSPC',
  syscall: 'copyfile',
  path: '/data/a',
  dest: '/nonexistent/backup/files/r1/a',
});
const eacces = osError("EACCES: permission denied, unlink '/data/a'", {
  code: 'EACCES',
  syscall: 'unlink',
  path: '/data/a',
});
const uid = process.getuid?.();

describe('describeCause: what happened underneath, and what to do', () => {
  it.each<[string, unknown, string]>([
    ['a plain error', dropped, 'Connection terminated unexpectedly'],
    ['a string', 'boom', 'boom'],
    [
      'a bare ENOSPC write: no place, no remedy (the message says the disk is full)',
      enospcWrite,
      'ENOSPC: no space left on device, write',
    ],
    [
      'an ENOSPC copy names the disk of its target',
      enospcCopy,
      "ENOSPC: no space left on device, copyfile '/data/a' -> '/nonexistent/backup/files/r1/a' (the disk holding /nonexistent/backup/files/r1 is full: free space on it or move that directory to a larger disk)",
    ],
    [
      'a bare ENOSPC under a context path names that path',
      new StoreError('cannot write backups', { path: '/nonexistent/backup' }, { cause: enospcWrite }),
      'cannot write backups: ENOSPC: no space left on device, write (the disk holding /nonexistent/backup is full: free space on it or move that directory to a larger disk)',
    ],
    [
      'EACCES names the permission to fix',
      eacces,
      `EACCES: permission denied, unlink '/data/a' (the user running retention (uid ${uid}) may not delete /data/a: grant that permission (chown/chmod) or run as a user who has it)`,
    ],
    [
      'a full RETENTION_HOME reported in text (initdb output)',
      new ControlStoreError(
        'could not initialise the embedded PostgreSQL: FATAL: could not write to file "pg_wal/x": No space left on device',
        { home: '/nonexistent/retention-home' },
      ),
      'could not initialise the embedded PostgreSQL: FATAL: could not write to file "pg_wal/x": No space left on device (the disk holding /nonexistent/retention-home is full: free space on it or move RETENTION_HOME to a larger disk)',
    ],
    [
      "a database server's full disk (SQLSTATE 53100)",
      new SqlError('pg: INSERT INTO t…: could not extend file "base/1/2": No space left on device', {
        sqlState: '53100',
      }),
      `pg: INSERT INTO t…: could not extend file "base/1/2": No space left on device (the database server's disk is full: free space on it or grow its storage)`,
    ],
    [
      'a messageless AggregateError says what it holds',
      new AggregateError(
        [
          osError('connect ECONNREFUSED ::1:5432', { code: 'X' }),
          osError('connect ECONNREFUSED 127.0.0.1:5432', { code: 'X' }),
        ],
        '',
      ),
      'connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432',
    ],
    [
      'a messageless error with a code says its code',
      Object.assign(new Error(''), { code: 'ECONNRESET' }),
      'ECONNRESET',
    ],
  ])('%s', (_name, cause, expected) => {
    expect(describeCause(cause)).toBe(expected);
  });

  it('a caller may say where an OS error without a path happened', () => {
    expect(describeCause(enospcWrite, { path: '/nonexistent/backup/files/r1' })).toBe(
      'ENOSPC: no space left on device, write (the disk holding /nonexistent/backup/files/r1 is full: free space on it or move that directory to a larger disk)',
    );
  });

  it('a refused connection says nothing is listening there', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const refused = await new Promise<Error>((resolve) => net.connect(port, '127.0.0.1').on('error', resolve));
    expect(describeCause(new StoreError('cannot reach the database', {}, { cause: refused }))).toBe(
      `cannot reach the database: connect ECONNREFUSED 127.0.0.1:${port} (nothing is listening at 127.0.0.1:${port}: is the server running, and are host and port right?)`,
    );
  });
});

describe('errors that wrap a cause', () => {
  it('say what happened underneath once, not the whole chain again', () => {
    const sql = new SqlError(
      'pg: UPDATE retention.leases SET …: Connection terminated unexpectedly',
      { statement: 'UPDATE …' },
      { cause: dropped },
    );
    const control = new ControlStoreError(
      'control store (pg): releaseLease failed: Connection terminated unexpectedly',
      {},
      { cause: sql },
    );
    expect(control.message).toBe('control store (pg): releaseLease failed: Connection terminated unexpectedly');
    expect(describeCause(control)).toBe(control.message);
  });

  it('append the cause a message leaves out, with its remedy', () => {
    expect(new StoreError('cannot prune backup /nonexistent/backup/files/r1', {}, { cause: enospcWrite }).message).toBe(
      'cannot prune backup /nonexistent/backup/files/r1: ENOSPC: no space left on device, write',
    );
    expect(
      new StoreError(
        'releaseLease failed',
        {},
        { cause: new SqlError('pg: UPDATE …: Connection terminated unexpectedly', {}, { cause: dropped }) },
      ).message,
    ).toBe('releaseLease failed: pg: UPDATE …: Connection terminated unexpectedly');
  });

  it('an inner description without a place and an outer one with it give one remedy', () => {
    const inner = `could not initialise the embedded PostgreSQL: ${describeCause(new Error('FATAL: could not write to file "pg_wal/x": No space left on device'))}`;
    expect(
      new ControlStoreError(inner, { home: '/h' }, { cause: new Error('initdb failed: No space left on device') })
        .message,
    ).toBe(
      'could not initialise the embedded PostgreSQL: FATAL: could not write to file "pg_wal/x": No space left on device: initdb failed: No space left on device (the disk holding /h is full: free space on it or move RETENTION_HOME to a larger disk)',
    );
  });

  it('input errors keep their issue list (their fix is already said)', () => {
    const config = new ConfigError(
      [{ path: 'store.root', message: '/x does not exist', fix: 'create it' }],
      {},
      { cause: enospcWrite },
    );
    expect(config.message).toBe('error: store.root: /x does not exist (create it)');
    expect(config.within('policies[0]').message).toBe('error: policies[0].store.root: /x does not exist (create it)');
  });

  it('carry no secret in their message or context', () => {
    const url = 'postgres://app:Sup3r-Secret@db:5432/x';
    const error = new RetentionError(
      `cannot open ${url}`,
      { url, token: 'vercel_blob_rw_AbCd_Secret99', attempt: 2 },
      { cause: new Error(`connect to ${url} refused`) },
    );
    expect(error.message).toBe(
      'cannot open postgres://app:***@db:5432/x: connect to postgres://app:***@db:5432/x refused',
    );
    expect(error.context).toEqual({ url: 'postgres://app:***@db:5432/x', token: '***', attempt: 2 });
    expect(describeCause(new Error(`bad ${url}`))).toBe('bad postgres://app:***@db:5432/x');
  });
});

describe('errors of run outcomes carry the figures their message states', () => {
  const figures = { planned: 11, eligible: 51, total: 100, maxDeletesPerRun: 10, maxDeleteFraction: 0.5 };

  it.each<[string, RetentionError, string, Record<string, unknown>]>([
    [
      'a run over maxDeletesPerRun',
      new LimitExceededError('maxDeletesPerRun', figures),
      `11 planned deletions exceed limits.maxDeletesPerRun 10; nothing was deleted (${LIMIT_ADVICE})`,
      {
        code: 'limit_exceeded',
        limit: 'maxDeletesPerRun',
        figures,
        reason: '11 planned deletions exceed limits.maxDeletesPerRun 10',
      },
    ],
    [
      'a run over maxDeleteFraction',
      new LimitExceededError('maxDeleteFraction', { ...figures, eligible: 2, total: 3, maxDeleteFraction: 0.125 }),
      `2 of 3 items (66.7%) are eligible, over limits.maxDeleteFraction 12.5%; nothing was deleted (${LIMIT_ADVICE})`,
      {
        code: 'limit_exceeded',
        limit: 'maxDeleteFraction',
        figures: { ...figures, eligible: 2, total: 3, maxDeleteFraction: 0.125 },
      },
    ],
    [
      'a run stopped at maxDeletesPerRun deletions',
      new LimitReachedError(500, 500),
      'limits.maxDeletesPerRun (500) reached after 500 deletions; the rest waits for the next run (or pass --force)',
      { code: 'limit_reached', maxDeletesPerRun: 500, deleted: 500 },
    ],
    [
      'a run stopped by a signal',
      new InterruptedError('SIGTERM'),
      'stopped by SIGTERM; what was deleted is recorded, the rest waits for the next run',
      { code: 'interrupted', signal: 'SIGTERM' },
    ],
    [
      'rows deleted without their audit record',
      new UnauditedDeletionError('postgres://app:***@db/x#public.events', 1000, { policy: 'events' }),
      'postgres://app:***@db/x#public.events: 1000 rows were deleted in one statement without their audit record',
      {
        code: 'unaudited_deletion',
        deleted: 1000,
        context: { policy: 'events', store: 'postgres://app:***@db/x#public.events' },
      },
    ],
  ])('%s', (_name, error, message, fields) => {
    expect(error).toBeInstanceOf(RetentionError);
    expect(error.message).toBe(message);
    expect(error).toMatchObject(fields);
  });

  it('the limit check returns the error a run aborted by it reports', () => {
    const verdict = checkLimits({ ...figures, planned: 5 });
    expect(verdict.ok).toBe(false);
    if (verdict.ok) return;
    expect(verdict.error).toMatchObject({ limit: 'maxDeleteFraction', figures: { ...figures, planned: 5 } });
    expect(verdict.error.message).toBe(`${verdict.reason}; nothing was deleted (${LIMIT_ADVICE})`);
  });
});
