import { describe, expect, it } from 'vitest';
import { redact, redactText } from '../../lib/redact.ts';

/** Each secret kind the tool can meet, in the text around it; what stays must still be useful. */
const TEXT_CASES: Array<[string, string, string]> = [
  ['postgres URL', 'postgres://app:hunter2-pw@db:5432/x', 'postgres://app:***@db:5432/x'],
  [
    'postgresql URL with params',
    'at postgresql://app:p%40ss@db.internal/x?sslmode=require.',
    'at postgresql://app:***@db.internal/x?sslmode=require.',
  ],
  ['unencoded @ in the password', 'postgres://app:p@ss@db/x', 'postgres://app:***@db/x'],
  ['password of any scheme', 'redis://:s3cr3t@cache:6379', 'redis://:***@cache:6379'],
  [
    'two URLs in one message',
    'a postgres://a:one1@h1/x b postgres://b:two2@h2/y',
    'a postgres://a:***@h1/x b postgres://b:***@h2/y',
  ],
  ['user without password is kept', 'postgres://app@db/x', 'postgres://app@db/x'],
  [
    'URL without credentials is kept',
    'postgres://db:5432/x and http://127.0.0.1:9000/bucket',
    'postgres://db:5432/x and http://127.0.0.1:9000/bucket',
  ],
  ['Sentry DSN key', 'dsn https://abc123def456@o1.ingest.sentry.io/42', 'dsn https://***@o1.ingest.sentry.io/42'],
  ['basic auth in an http URL', 'http://AKID:SECRET@minio:9000/b', 'http://***@minio:9000/b'],
  [
    'query string secret',
    'GET /x?X-Amz-Signature=abcdef0123&X-Amz-Date=20240101',
    'GET /x?X-Amz-Signature=***&X-Amz-Date=20240101',
  ],
  ['libpq keyword string', 'host=db user=app password=hunter2 dbname=x', 'host=db user=app password=*** dbname=x'],
  [
    'JSON inside a message',
    '{"url":"x","token":"tok-123","secretAccessKey":"abc/def"}',
    '{"url":"x","token":"***","secretAccessKey":"***"}',
  ],
  ['pretty JSON', '  "password": "hunter2",\n  "token": 3', '  "password": "***",\n  "token": 3'],
  ['Bearer token', 'authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig', 'authorization: Bearer ***'],
  ['Vercel Blob token', 'token vercel_blob_rw_AbCd1234_ZyXwVu987654321 refused', 'token vercel_blob_rw_*** refused'],
  ['AWS access key id', 'key AKIAIOSFODNN7EXAMPLE', 'key AKIA***'],
  [
    'AWS secret in a credentials file',
    'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    'aws_secret_access_key = ***',
  ],
  [
    'private key',
    'k: -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- end',
    'k: [RSA PRIVATE KEY ***] end',
  ],
  [
    'ordinary messages are kept',
    'renewLease: the lease of "files" is no longer held with token 7',
    'renewLease: the lease of "files" is no longer held with token 7',
  ],
  [
    'keys that look random are kept',
    'uploads/aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7d.png',
    'uploads/aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7d.png',
  ],
];

describe('redactText', () => {
  it.each(TEXT_CASES)('%s', (_name, input, expected) => {
    expect(redactText(input)).toBe(expected);
    // Redacting twice changes nothing (outputs pass through more than one boundary).
    expect(redactText(expected)).toBe(expected);
  });
});

describe('redact', () => {
  it('drops secret fields at any depth, keeps numbers, and redacts URLs inside other fields', () => {
    const input = {
      control: { kind: 'postgres', url: 'postgres://ctl:ctl-pw@db:5432/retention' },
      store: { kind: 'vercel-blob', token: 'plain-token-value', prefix: 'docs/' },
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG' },
      env: {
        BLOB_READ_WRITE_TOKEN: 'x-token',
        SENTRY_DSN: 'https://pub@o1.ingest.sentry.io/9',
        RETENTION_HOME: '/var/lib/retention',
      },
      lease: { policy: 'files', token: 12 },
      list: [{ password: 'in-a-list' }, 'postgres://u:in-a-string@h/d'],
      when: new Date('2024-01-01T00:00:00Z'),
    };
    expect(redact(input)).toEqual({
      control: { kind: 'postgres', url: 'postgres://ctl:***@db:5432/retention' },
      store: { kind: 'vercel-blob', token: '***', prefix: 'docs/' },
      credentials: { accessKeyId: '***', secretAccessKey: '***' },
      env: {
        BLOB_READ_WRITE_TOKEN: '***',
        SENTRY_DSN: 'https://***@o1.ingest.sentry.io/9',
        RETENTION_HOME: '/var/lib/retention',
      },
      lease: { policy: 'files', token: 12 },
      list: [{ password: '***' }, 'postgres://u:***@h/d'],
      when: new Date('2024-01-01T00:00:00Z'),
    });
    expect(input.store.token).toBe('plain-token-value');
  });

  it('survives cycles', () => {
    const node: Record<string, unknown> = { password: 'p4ssw0rd' };
    node.self = node;
    expect(redact(node)).toEqual({ password: '***', self: '[circular]' });
  });
});
