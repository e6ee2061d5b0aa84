import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RetryEvent } from '../../lib/core/async.ts';
import type { Store } from '../../lib/core/store.ts';
import { systemClock } from '../../lib/core/types.ts';
import { runPolicy } from '../../lib/engine/run.ts';
import { ConfigError, StoreError } from '../../lib/errors.ts';
import { Logger } from '../../lib/observe/log.ts';
import { VercelBlobStoreSchema } from '../../lib/stores/vercel-blob/schema.ts';
import {
  createVercelBlobStore,
  type VercelBlobStoreConfig,
  type VercelBlobStoreDeps,
} from '../../lib/stores/vercel-blob/store.ts';
import { FakeControl } from '../support/fakeControl.ts';
import { policyWith } from '../support/fakeRuns.ts';
import { startVercelBlobStandIn, type VercelBlobStandIn } from '../support/vercelBlob.ts';
import {
  CONTRACT_NOW,
  contractCutoffs,
  daysAgo,
  eligibleItems,
  type StoreFixture,
  scanAll,
  storeContract,
} from './store-contract.ts';

let standIn: VercelBlobStandIn;
const savedEnv = { ...process.env };

beforeAll(async () => {
  standIn = await startVercelBlobStandIn();
  // The SDK reads these at every call. No SDK retries of 5xx in tests (ours of 429 stay).
  process.env.VERCEL_BLOB_API_URL = standIn.apiUrl;
  process.env.BLOB_READ_WRITE_TOKEN = standIn.token;
  process.env.VERCEL_BLOB_RETRIES = '0';
});

afterAll(async () => {
  process.env = savedEnv;
  await standIn?.stop();
});

function storeWith(options: Partial<VercelBlobStoreConfig> = {}, deps: VercelBlobStoreDeps = {}): Store {
  return createVercelBlobStore(VercelBlobStoreSchema.parse({ kind: 'vercel-blob', ...options }), deps);
}

// copy() gives a fresh uploadedAt, so the contract's "restores with the original timestamp"
// cannot hold on Vercel Blob: backup and restore are tested below instead.
storeContract(
  'vercel-blob (stand-in, real SDK)',
  async (): Promise<StoreFixture> => {
    standIn.clear();
    return {
      createStore: () => storeWith(),
      seed: async (items) =>
        standIn.seed(
          items.map((item) => ({
            pathname: item.key,
            uploadedAt: item.timestamp,
            ...(item.size !== undefined ? { size: item.size } : {}),
          })),
        ),
      exists: async (key) => standIn.get(key) !== undefined,
      touch: async (key, timestamp) => standIn.seed([{ pathname: key, uploadedAt: timestamp, body: 'rewritten' }]),
      teardown: async () => undefined,
    };
  },
  { backup: 'fresh-timestamps' },
);

describe('vercel-blob store', () => {
  beforeEach(() => {
    standIn.clear();
    standIn.resetCounters();
  });

  it('validates the policy store of the issue with its defaults', () => {
    expect(VercelBlobStoreSchema.parse({ kind: 'vercel-blob', prefix: 'pdfs/' })).toEqual({
      kind: 'vercel-blob',
      prefix: 'pdfs/',
      access: 'public',
    });
  });

  it('needs a token: ConfigError on store.token when neither the config nor BLOB_READ_WRITE_TOKEN has one', async () => {
    delete process.env.BLOB_READ_WRITE_TOKEN;
    try {
      const error = await storeWith()
        .open()
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues[0]).toMatchObject({ path: 'store.token' });
      await expect(storeWith({ token: 'vercel_blob_rw_x_wrong' }).open()).rejects.toBeInstanceOf(ConfigError);
      await expect(storeWith({ token: standIn.token }).open()).resolves.toBeUndefined();
    } finally {
      process.env.BLOB_READ_WRITE_TOKEN = standIn.token;
    }
  });

  it('sweeps a listing of more than 3 pages with ≤1 list page and ≤1 del per 1000 deleted, and no head()', async () => {
    const blobs = Array.from({ length: 3500 }, (_, index) => ({
      pathname: `pdfs/${String(index).padStart(5, '0')}.pdf`,
      uploadedAt: daysAgo(40),
      size: 10,
    }));
    standIn.seed([...blobs, { pathname: 'other/keep.pdf', uploadedAt: daysAgo(40) }]);
    const store = storeWith({ prefix: 'pdfs/' });

    // The engine's loop: scan a page, delete what is eligible in it.
    let cursor: string | undefined;
    let pages = 0;
    let deleted = 0;
    for (;;) {
      const page = await store.scan({ cutoffs: contractCutoffs, limit: 1000, ...(cursor ? { cursor } : {}) });
      pages += 1;
      const outcomes = await store.delete(
        [...page.items].map((item) => ({ ...item, cutoff: daysAgo(30), rule: 'retention: 30d' })),
      );
      deleted += outcomes.filter((outcome) => outcome.status === 'deleted').length;
      if (page.done) break;
      cursor = page.cursor;
    }

    expect({ pages, deleted }).toEqual({ pages: 4, deleted: 3500 });
    // Scan pages plus one re-list per page before its del(): 8 list calls for 3.5 pages of 1000.
    expect(standIn.calls).toMatchObject({ list: 8, delete: 4, head: 0 });
    expect(standIn.get('other/keep.pdf')).toBeDefined();
  });

  it('a run lists the prefix once, for its census, and deletes from that listing: 2 list pages per 1000 deleted', async () => {
    standIn.seed([
      ...Array.from({ length: 3000 }, (_, index) => ({
        pathname: `pdfs/${String(index).padStart(5, '0')}.pdf`,
        uploadedAt: daysAgo(40),
      })),
      { pathname: 'pdfs/young.pdf', uploadedAt: new Date() },
    ]);
    const store = storeWith({ prefix: 'pdfs/' });
    standIn.resetCounters();
    const log = new Logger({ sink: { write: () => undefined }, level: 'error', clock: systemClock });
    const report = await runPolicy(
      policyWith({ batchSize: 500 }),
      { trigger: 'manual', dryRun: false, force: false, list: false },
      { control: new FakeControl(systemClock), store, clock: systemClock, log, actor: 'test:blob' },
    );
    expect(report).toMatchObject({ status: 'completed', deleted: 3000, backlog: 0 });
    // The census listing (3 pages of 1000 and the young blob's), one re-list per batch of 1000,
    // and open's check (limit 1): 2 pages per 1000 deleted. Before: 5 (census, scan by 500, re-list).
    expect(standIn.calls).toMatchObject({ list: 4 + 3 + 1, delete: 3, head: 0 });
    expect(standIn.get('pdfs/young.pdf')).toBeDefined();
  });

  it('splits del() into chunks of at most 1000 URLs', async () => {
    standIn.seed(Array.from({ length: 2001 }, (_, index) => ({ pathname: `k${index}`, uploadedAt: daysAgo(40) })));
    const store = storeWith();
    const items = [...(await eligibleItems(store)).values()];
    standIn.resetCounters();

    const outcomes = await store.delete(items);

    expect(outcomes.filter((outcome) => outcome.status !== 'deleted')).toEqual([]);
    expect(standIn.calls).toMatchObject({ delete: 3, head: 0 });
  });

  it('honours a 429 Retry-After, counts the waits, and gives up after a bounded number of attempts', async () => {
    standIn.seed([{ pathname: 'a.pdf', uploadedAt: daysAgo(40) }]);
    const waits: RetryEvent[] = [];
    const store = storeWith({}, { onRetry: (event) => waits.push(event) });

    standIn.rateLimit(1, 1);
    const started = Date.now();
    expect((await scanAll(store)).items.map((item) => item.key)).toEqual(['a.pdf']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(waits).toEqual([{ attempt: 1, waitMs: expect.any(Number), reason: 'rate_limited' }]);
    expect(waits[0]!.waitMs).toBeGreaterThanOrEqual(1000);
    expect(standIn.statuses.filter((status) => status === 429)).toHaveLength(1);

    const fast = storeWith({}, { sleep: async () => undefined });
    standIn.rateLimit(5, 1);
    await expect(fast.scan({ cutoffs: contractCutoffs, limit: 10 })).rejects.toBeInstanceOf(StoreError);
    expect(standIn.statuses.filter((status) => status === 429)).toHaveLength(6);
  });

  it('reports a del() that fails (503, SDK retries off) as failed for its items, without throwing', async () => {
    standIn.seed([{ pathname: 'a.pdf', uploadedAt: daysAgo(40) }]);
    const store = storeWith();
    const items = [...(await eligibleItems(store)).values()];
    standIn.unavailable(1, 'delete');

    expect(await store.delete(items)).toEqual([
      { key: 'a.pdf', status: 'failed', error: expect.stringMatching(/^del: /) },
    ]);
    expect(standIn.get('a.pdf')).toBeDefined();
  });

  it('scopes with prefix and include/exclude, and refuses to delete outside them', async () => {
    standIn.seed(
      ['docs/a.pdf', 'docs/b.txt', 'docs/tmp/c.pdf', 'elsewhere/d.pdf'].map((pathname) => ({
        pathname,
        uploadedAt: daysAgo(40),
      })),
    );
    const store = storeWith({ prefix: 'docs/', include: ['**/*.pdf'], exclude: ['docs/tmp/**'] });

    expect((await scanAll(store)).items.map((item) => item.key)).toEqual(['docs/a.pdf']);
    expect(await store.census({ cutoffs: contractCutoffs, holds: [] })).toMatchObject({ total: 1, eligible: 1 });
    const [outcome] = await store.delete([
      { key: 'elsewhere/d.pdf', timestamp: daysAgo(40), cutoff: CONTRACT_NOW, rule: 'retention: 30d' },
    ]);
    expect(outcome).toMatchObject({
      key: 'elsewhere/d.pdf',
      status: 'failed',
      error: expect.stringMatching(/^refused/),
    });
    expect(standIn.get('elsewhere/d.pdf')).toBeDefined();
  });

  it('backs up with copy(), restores (never overwriting), and prunes old run backups', async () => {
    const keys = ['pdfs/a b.pdf', 'pdfs/ü+%#?.pdf'];
    standIn.seed(keys.map((pathname, index) => ({ pathname, uploadedAt: daysAgo(90), body: `body-${index}` })));
    const store = storeWith({ prefix: 'pdfs/' });
    const items = [...(await eligibleItems(store)).values()];
    const ref = { to: 'backups', policy: 'pdfs', runId: 'run-1' };

    expect(await store.backups!.backup(items, ref)).toEqual(keys.map((key) => ({ key, ok: true })));
    expect(standIn.get('backups/pdfs/run-1/pdfs/ü+%#?.pdf')?.body.toString()).toBe('body-1');
    await store.delete(items);

    const restored = await store.backups!.restore(ref, [...keys, 'pdfs/never-backed-up']);
    expect(restored.map(({ key, status }) => [key, status])).toEqual([
      ...keys.map((key) => [key, 'restored']),
      ['pdfs/never-backed-up', 'no_backup'],
    ]);
    expect(standIn.get('pdfs/ü+%#?.pdf')?.body.toString()).toBe('body-1');
    standIn.seed([{ pathname: 'pdfs/a b.pdf', uploadedAt: CONTRACT_NOW, body: 'newer' }]);
    expect(await store.backups!.restore(ref, ['pdfs/a b.pdf'])).toEqual([{ key: 'pdfs/a b.pdf', status: 'exists' }]);
    expect(standIn.get('pdfs/a b.pdf')?.body.toString()).toBe('newer');

    standIn.seed([{ pathname: 'backups/pdfs/run-old/pdfs/x.pdf', uploadedAt: daysAgo(10) }]);
    expect(await store.backups!.prune('backups/', 'pdfs', daysAgo(20))).toBe(0);
    expect(await store.backups!.prune('backups/', 'pdfs', new Date(Date.now() - 60_000))).toBe(1);
    expect(standIn.get('backups/pdfs/run-old/pdfs/x.pdf')).toBeUndefined();
    expect(standIn.get('backups/pdfs/run-1/pdfs/a b.pdf')).toBeDefined();

    await expect(store.backups!.backup(items, { ...ref, to: 'pdfs/backups/' })).rejects.toBeInstanceOf(ConfigError);
  });
});
