import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import type { Store } from '../../lib/core/store.ts';
import type { EligibleItem, Hold } from '../../lib/core/types.ts';
import { orphanStore, unreferencedFiles } from '../../lib/engine/orphans.ts';
import { isEligible } from '../../lib/policy/classify.ts';
import { computeCutoffs } from '../../lib/policy/plan.ts';
import { createStore } from '../../lib/stores/registry.ts';
import { seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * The orphan test against a real table and directory: what the CLI cannot time, a row inserted
 * between the listing and the delete, and the SQL of the links (keyset pages over a composite key).
 */
const shared = usePostgresAndScratch('retention-orphans-');
const DAY = 86_400_000;

async function fixture(name: string, createTable: string, sidecars?: unknown) {
  const url = await shared.server.createDatabase(name);
  const root = path.join(shared.scratch, name);
  await mkdir(root);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(createTable);
  const config = parseConfig({
    policies: [
      {
        name,
        class: 'rows',
        schedule: '0 2 * * *',
        store: { kind: 'postgres', url },
        table: 'docs',
        timestamp: 'created_at',
        retention: '30d',
        allowSeqScan: true,
        blob: { column: 'file', store: { kind: 'fs', root, ...(sidecars ? { sidecars } : {}) } },
      },
    ],
  });
  const policy = config.policies[0]!;
  const store = await createStore(policy);
  await store.open();
  return { client, root, store, policy };
}

const cutoffs = (now: Date) => computeCutoffs({ by: 'orphan', rules: { 'no row in docs.file': '24h' } }, now);

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

describe('orphan files of a rows table', () => {
  it('a row inserted between the listing and the delete keeps its file; the other orphans go', async () => {
    const { client, root, store } = await fixture(
      'race',
      'CREATE TABLE docs (id int PRIMARY KEY, file text, created_at timestamptz NOT NULL DEFAULT now())',
    );
    try {
      const old = new Date(Date.now() - 3 * DAY);
      await seedFiles(root, [
        { key: 'a.pdf', mtime: old },
        { key: 'b.pdf', mtime: old },
        { key: 'c.pdf', mtime: old },
      ]);
      await client.query(`INSERT INTO docs (id, file) VALUES (1, 'a.pdf')`);
      const links = store.linked!;
      const orphans = orphanStore(await links.files(), unreferencedFiles(links), store);
      const now = new Date();
      const page = await orphans.scan({ cutoffs: cutoffs(now), limit: 100 });
      expect(page.items.map((item) => item.key)).toEqual(['b.pdf', 'c.pdf']);
      expect(orphans.counts).toEqual({ files: 3, young: 0, needed: 1 });

      // An upload that reused c.pdf committed its row after the listing.
      await client.query(`INSERT INTO docs (id, file) VALUES (2, 'c.pdf')`);
      const eligible = page.items.map((item) => isEligible(item, cutoffs(now))!) as EligibleItem[];
      const outcomes = await orphans.delete(eligible);
      expect(outcomes.sort((x, y) => x.key.localeCompare(y.key))).toEqual([
        expect.objectContaining({ key: 'b.pdf', status: 'deleted' }),
        { key: 'c.pdf', status: 'kept', error: 'a row of docs.file names it' },
      ]);
      expect(await Promise.all(['a.pdf', 'b.pdf', 'c.pdf'].map((key) => exists(path.join(root, key))))).toEqual([
        true,
        false,
        true,
      ]);
    } finally {
      await store.close();
      await client.end();
    }
  });

  it('counts every file in the census, orphans past the grace unheld as eligible; sidecars go with their main', async () => {
    const { client, root, store } = await fixture(
      'census',
      'CREATE TABLE docs (id int PRIMARY KEY, file text, created_at timestamptz NOT NULL DEFAULT now())',
      [{ pattern: '*.json', mainFile: '*.jpg' }],
    );
    try {
      const now = Date.now();
      const old = new Date(now - 3 * DAY);
      await seedFiles(root, [
        { key: 'p1.jpg', mtime: old },
        { key: 'p1.json', mtime: old },
        { key: 'p2.json', mtime: old },
        { key: 'held.jpg', mtime: old },
        { key: 'young.jpg', mtime: new Date(now - 60_000) },
      ]);
      await client.query(`INSERT INTO docs (id, file) VALUES (1, 'p1.jpg')`);
      const links = store.linked!;
      const orphans = orphanStore(
        await links.files(),
        unreferencedFiles(links, [{ pattern: '*.json', mainFile: '*.jpg' }]),
        store,
      );
      const holds: Hold[] = [
        { id: 1, policy: null, key: 'held.jpg', prefix: false, reason: 'case', createdBy: 't', createdAt: new Date() },
      ];
      const census = await orphans.census({ cutoffs: cutoffs(new Date()), holds });
      expect(census).toMatchObject({ total: 5, eligible: 1, exact: true });
      const page = await orphans.scan({ cutoffs: cutoffs(new Date()), limit: 100 });
      expect(page.items.map((item) => item.key)).toEqual(['held.jpg', 'p2.json']);
      expect(await unreferencedFiles(links, [{ pattern: '*.json', mainFile: '*.jpg' }]).needed(['p1.json'])).toEqual(
        new Map([['p1.json', 'sidecar of p1.jpg, which a row of docs.file names']]),
      );
    } finally {
      await store.close();
      await client.end();
    }
  });

  it('pages the rows that name a file in key order over a composite key (rows without one skipped)', async () => {
    const { client, store } = await fixture(
      'links',
      `CREATE TABLE docs (tenant text, id int, file text, created_at timestamptz NOT NULL DEFAULT now(),
                          PRIMARY KEY (tenant, id))`,
    );
    try {
      await client.query(
        `INSERT INTO docs (tenant, id, file) VALUES ('b', 1, 'b1'), ('a', 2, 'a2'), ('a', 10, 'a10'), ('a', 3, NULL), ('c', 1, 'c1')`,
      );
      const links = (store as Store).linked!;
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 5; pages += 1) {
        const page = await links.links({ limit: 2, ...(cursor ? { cursor } : {}) });
        seen.push(...page.rows.map((row) => `${row.key}=${row.linkedKey}`));
        cursor = page.cursor;
        if (page.done) break;
      }
      expect(seen).toEqual(['["a", "2"]=a2', '["a", "10"]=a10', '["b", "1"]=b1', '["c", "1"]=c1']);
      expect(await links.referenced(['a2', 'zz', 'c1'])).toEqual(new Set(['a2', 'c1']));
    } finally {
      await store.close();
      await client.end();
    }
  });
});
