import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { escapeXml, parseDeleteObjects } from '../support/faultProxy.ts';
import { useProxiedS3 } from '../support/s3.ts';
import { CONTRACT_NOW, daysAgo, eligibleItems } from './store-contract.ts';

/**
 * S3 answers AccessDenied both for a missing permission and for an object under Object Lock.
 * s3rver has no Object Lock: the fault proxy answers per-key AccessDenied in DeleteObjects and
 * S3's GetObjectLegalHold / GetObjectRetention answers, and the real SDK drives the store.
 */
const env = useProxiedS3();

const xml = (body: string) => ({
  status: 200,
  headers: { 'content-type': 'application/xml' },
  body: `<?xml version="1.0" encoding="UTF-8"?>${body}`,
});
const s3Error = (status: number, code: string, message: string) => ({
  status,
  headers: { 'content-type': 'application/xml' },
  body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>r1</RequestId></Error>`,
});
const NO_LOCK_CONFIGURATION = s3Error(
  404,
  'NoSuchObjectLockConfiguration',
  'The specified object does not have a ObjectLock configuration',
);
const BUCKET_WITHOUT_LOCK = s3Error(400, 'InvalidRequest', 'Bucket is missing Object Lock Configuration');
const legalHold = (status: 'ON' | 'OFF') => xml(`<LegalHold><Status>${status}</Status></LegalHold>`);
const retention = (mode: string, until: string) =>
  xml(`<Retention><Mode>${mode}</Mode><RetainUntilDate>${until}</RetainUntilDate></Retention>`);

type Answer = ReturnType<typeof xml>;
/** Per key: S3's answers to GetObjectLegalHold and GetObjectRetention. */
type LockAnswers = Record<string, { legalHold: Answer; retention: Answer }>;

/** Answers the lock GETs; records which key, version and subresource each asked. */
function answerLocks(answers: LockAnswers): string[] {
  const asked: string[] = [];
  env.proxy.route(({ method, url }) => {
    const subresource = ['legal-hold', 'retention'].find((name) => url.searchParams.has(name));
    if (method !== 'GET' || !subresource) return undefined;
    const key = decodeURIComponent(url.pathname.slice(`/${env.bucket}/`.length));
    const version = url.searchParams.get('versionId');
    asked.push(`${subresource} ${key}${version ? `@${version}` : ''}`);
    const answer = answers[key];
    if (!answer) return s3Error(404, 'NoSuchKey', 'The specified key does not exist.');
    return subresource === 'legal-hold' ? answer.legalHold : answer.retention;
  });
  return asked;
}

async function exists(key: string): Promise<boolean> {
  return env.client.send(new HeadObjectCommand({ Bucket: env.bucket, Key: key })).then(
    () => true,
    () => false,
  );
}

describe('S3 Object Lock', () => {
  it('a per-key AccessDenied is held when S3 says a lock protects the object, failed otherwise', async () => {
    const cases: Array<[string, LockAnswers[string] | null, string, string | RegExp]> = [
      [
        'legal-hold.pdf',
        { legalHold: legalHold('ON'), retention: NO_LOCK_CONFIGURATION },
        'held',
        'object_lock: legal hold',
      ],
      [
        'compliance.pdf',
        { legalHold: NO_LOCK_CONFIGURATION, retention: retention('COMPLIANCE', '2030-01-01T00:00:00.000Z') },
        'held',
        'object_lock: retention until 2030-01-01T00:00:00.000Z (compliance mode)',
      ],
      [
        'governance.pdf',
        { legalHold: legalHold('OFF'), retention: retention('GOVERNANCE', '2024-06-01T00:00:01.000Z') },
        'held',
        'object_lock: retention until 2024-06-01T00:00:01.000Z (governance mode)',
      ],
      // A retention period that is over no longer protects: the refusal is about permissions.
      [
        'expired.pdf',
        { legalHold: legalHold('OFF'), retention: retention('GOVERNANCE', '2024-05-31T23:59:59.000Z') },
        'failed',
        /^AccessDenied: Access Denied \(not deleted, and no Object Lock holds it: grant s3:DeleteObject\)$/,
      ],
      [
        'no-lock.pdf',
        { legalHold: BUCKET_WITHOUT_LOCK, retention: BUCKET_WITHOUT_LOCK },
        'failed',
        /no Object Lock holds it: grant s3:DeleteObject/,
      ],
      // Unable to look (no s3:GetObjectLegalHold): never guessed to be held.
      [
        'unknowable.pdf',
        { legalHold: s3Error(403, 'AccessDenied', 'Access Denied'), retention: NO_LOCK_CONFIGURATION },
        'failed',
        /unknown: GetObjectLegalHold: AccessDenied.*grant s3:GetObjectLegalHold and s3:GetObjectRetention/,
      ],
      ['deletable.pdf', null, 'deleted', ''],
    ];
    await env.s3.seed(
      env.bucket,
      cases.map(([key]) => ({ key, timestamp: daysAgo(40) })),
    );
    const store = env.store({}, { clock: { now: () => CONTRACT_NOW } });
    const items = [...(await eligibleItems(store)).values()];
    const denied = cases.filter(([, answers]) => answers !== null).map(([key]) => key);
    env.proxy.failKeys(denied, { code: 'AccessDenied', message: 'Access Denied' });
    const asked = answerLocks(Object.fromEntries(cases.flatMap(([key, answers]) => (answers ? [[key, answers]] : []))));

    const outcomes = await store.delete(items);

    for (const [key, , status, error] of cases) {
      const outcome = outcomes.find((candidate) => candidate.key === key);
      expect(outcome?.status, key).toBe(status);
      if (status === 'held') expect(outcome?.error, key).toBe(error);
      if (status === 'failed') expect(outcome?.error, key).toMatch(error);
      expect(await exists(key), key).toBe(status !== 'deleted');
    }
    // AccessDenied is not retried, and only refused keys cost lock requests; a legal hold settles it.
    expect(env.proxy.requests.filter((request) => request.deleteKeys)).toHaveLength(1);
    expect(asked.sort()).toEqual(
      [
        ...denied.map((key) => `legal-hold ${key}`),
        ...denied
          .filter((key) => key !== 'legal-hold.pdf' && key !== 'unknowable.pdf')
          .map((key) => `retention ${key}`),
      ].sort(),
    );
  });

  it('a locked noncurrent version holds its key: the lock is asked for that version, the current version stays', async () => {
    await env.s3.seed(env.bucket, [{ key: 'v/old.pdf', timestamp: daysAgo(40) }]);
    const versions = [
      { id: 'v3', latest: true, at: daysAgo(40) },
      { id: 'v1', latest: false, at: daysAgo(60) },
    ];
    env.proxy.route(({ method, url, body }) => {
      // s3rver has no versions: answer as a versioned bucket with v1 under a legal hold.
      if (method === 'POST' && url.searchParams.has('delete')) {
        const results = parseDeleteObjects(body).map((object) =>
          object.versionId === 'v1'
            ? `<Error><Key>${escapeXml(object.key)}</Key><VersionId>v1</VersionId><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`
            : `<Deleted><Key>${escapeXml(object.key)}</Key><VersionId>${object.versionId}</VersionId></Deleted>`,
        );
        return xml(`<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${results.join('')}</DeleteResult>`);
      }
      if (method !== 'GET' || !url.searchParams.has('versions')) return undefined;
      const listed = (url.searchParams.get('key-marker') ?? '') < 'v/old.pdf' ? versions : [];
      const entries = listed.map(
        (version) =>
          `<Version><Key>v/old.pdf</Key><VersionId>${version.id}</VersionId><IsLatest>${version.latest}</IsLatest><LastModified>${version.at.toISOString()}</LastModified><ETag>"e"</ETag><Size>4</Size></Version>`,
      );
      return xml(
        `<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${env.bucket}</Name><IsTruncated>false</IsTruncated>${entries.join('')}</ListVersionsResult>`,
      );
    });
    const asked = answerLocks({ 'v/old.pdf': { legalHold: legalHold('ON'), retention: NO_LOCK_CONFIGURATION } });
    const store = env.store({ versions: 'all' }, { clock: { now: () => CONTRACT_NOW } });

    const outcomes = await store.delete([...(await eligibleItems(store)).values()]);

    expect(outcomes).toEqual([
      { key: 'v/old.pdf', status: 'held', error: 'object_lock: legal hold (a noncurrent version)' },
    ]);
    expect(asked).toEqual(['legal-hold v/old.pdf@v1']);
    expect(env.proxy.requests.filter((request) => request.deleteKeys).map((request) => request.deleteKeys)).toEqual([
      [{ key: 'v/old.pdf', versionId: 'v1' }],
    ]);
  });
});
