import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  auditRecordDigest,
  type ChainEntry,
  type ChainedAuditRecord,
  type ChainLink,
  canonicalText,
  chainLink,
  emptyHead,
  entryCanonical,
  GENESIS,
  microsField,
  nextEntry,
} from '../../lib/core/chain.ts';
import { type Anchor, entryLink, LinkCheck, orderProblems, RecordCheck } from '../../lib/reports/chainCheck.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const record = (id: number, overrides: Partial<ChainedAuditRecord> = {}): ChainedAuditRecord => ({
  id,
  runId: 'run-1',
  policy: 'docs',
  store: 'fs:/srv',
  key: `k${id}`,
  itemTimestamp: new Date('2024-01-01T00:00:00.123Z'),
  size: 10,
  rule: 'retention: 30d',
  cutoff: new Date('2024-02-01T00:00:00Z'),
  actor: 'cli:a@h',
  trigger: 'manual',
  action: 'delete',
  status: 'pending',
  createdAt: new Date('2024-03-01T00:00:00Z'),
  resolvedAt: null,
  error: null,
  ...overrides,
});

describe('the canonical encoding', () => {
  it('is a compact JSON array of strings and nulls, escaping as JSON does', () => {
    expect(canonicalText(['a/1', 'q"uote\\', null, '\n\u0001é😀'])).toBe('["a/1","q\\"uote\\\\",null,"\\n\\u0001é😀"]');
  });

  it.each([
    [new Date('1970-01-01T00:00:00.000Z'), '0'],
    [new Date('2024-01-01T00:00:00.123Z'), '1704067200123000'],
    [new Date('1969-12-31T23:59:59.999Z'), '-1000'],
    [null, null],
  ])('writes %s as epoch microseconds: %s', (instant, expected) => {
    expect(microsField(instant)).toBe(expected);
  });

  it('links as sha256(previous hash ‖ canonical text)', () => {
    expect(chainLink(GENESIS, '["x"]')).toBe(sha256(`${GENESIS}["x"]`));
    expect(GENESIS).toMatch(/^0{64}$/);
  });

  it('digests every field of a record: any change, the mutable ones included, changes it', () => {
    const base = auditRecordDigest(record(1));
    const changes: Array<Partial<ChainedAuditRecord>> = [
      { id: 2 },
      { key: 'other' },
      { size: 11 },
      { size: undefined },
      { status: 'deleted' },
      { resolvedAt: new Date('2024-03-01T00:00:00Z') },
      { error: 'boom' },
      { itemTimestamp: new Date('2024-01-01T00:00:00.124Z') },
      { rule: 'retention: 31d' },
      { runId: 'run-2' },
    ];
    const digests = changes.map((change) => auditRecordDigest(record(1, change)));
    expect(new Set([base, ...digests]).size).toBe(changes.length + 1);
    expect(auditRecordDigest(record(1))).toBe(base);
  });

  it('chains an entry to the head it follows', () => {
    const at = new Date('2024-03-01T00:00:00Z');
    const first = nextEntry(emptyHead('docs'), 'record', at, [record(1), record(2)]);
    expect(first).toMatchObject({ chain: 'docs', seq: 1, kind: 'record', prev: GENESIS });
    expect(first.records).toEqual([
      { id: 1, digest: auditRecordDigest(record(1)), status: 'pending' },
      { id: 2, digest: auditRecordDigest(record(2)), status: 'pending' },
    ]);
    expect(first.hash).toBe(chainLink(GENESIS, entryCanonical(first)));
    const second = nextEntry({ chain: 'docs', seq: 1, hash: first.hash }, 'resolve', at, [
      record(1, { status: 'deleted' }),
    ]);
    expect(second).toMatchObject({ seq: 2, prev: first.hash });
  });
});

/** A valid chain of `count` entries of one record each; entry i covers record i. */
function chainOf(count: number): { entries: ChainEntry[]; records: ChainedAuditRecord[] } {
  const entries: ChainEntry[] = [];
  const records: ChainedAuditRecord[] = [];
  let head = emptyHead('docs');
  for (let id = 1; id <= count; id++) {
    records.push(record(id));
    const entry = nextEntry(head, 'record', new Date(Date.UTC(2024, 0, id)), [record(id)]);
    entries.push(entry);
    head = { chain: 'docs', seq: entry.seq, hash: entry.hash };
  }
  return { entries, records };
}

function walk(links: ChainLink[], options: { anchors?: Anchor[]; head?: { seq: number; hash: string } } = {}) {
  const check = new LinkCheck('control store', 'docs', { seq: 0, hash: GENESIS }, options.anchors);
  for (const link of links) check.next(link);
  check.end(options.head ? { head: { chain: 'docs', ...options.head }, by: 'the head row' } : undefined);
  return check;
}

describe('walking the links', () => {
  const { entries } = chainOf(5);
  const links = entries.map(entryLink);

  it('finds nothing wrong in an intact chain, its head and the heads runs recorded', () => {
    const check = walk(links, {
      anchors: [{ seq: 3, hash: entries[2]!.hash, by: 'run r3' }],
      head: { seq: 5, hash: entries[4]!.hash },
    });
    expect(check.problems).toEqual([]);
    expect(check.links).toBe(5);
  });

  it.each([
    ['a link removed', [links[0]!, links[1]!, links[3]!, links[4]!], 'removed', 4],
    [
      'two links swapped',
      [links[0]!, { ...links[2]!, seq: 2 }, { ...links[1]!, seq: 3 }, ...links.slice(3)],
      'reordered',
      2,
    ],
    [
      'a link changed',
      [links[0]!, { ...links[1]!, canonical: `${links[1]!.canonical} ` }, ...links.slice(2)],
      'changed',
      2,
    ],
    [
      'a link replaced by one rehashed',
      [links[0]!, { ...links[1]!, canonical: 'x', hash: chainLink(links[1]!.prev, 'x') }, ...links.slice(2)],
      'reordered',
      3,
    ],
  ] as const)('%s: %s at seq %i', (_name, walked, kind, seq) => {
    expect(walk([...walked]).problems[0]).toMatchObject({ kind, seq });
  });

  it('catches the end cut off by the head row and by a head a run recorded', () => {
    const cut = links.slice(0, 3);
    expect(walk(cut, { head: { seq: 5, hash: entries[4]!.hash } }).problems).toEqual([
      expect.objectContaining({ kind: 'removed', seq: 5, message: expect.stringContaining('the head row') }),
    ]);
    expect(walk(cut, { anchors: [{ seq: 4, hash: entries[3]!.hash, by: 'run r4' }] }).problems).toEqual([
      expect.objectContaining({ kind: 'removed', seq: 4, message: expect.stringContaining('run r4') }),
    ]);
  });

  it('catches a chain rewritten from some link on, against the head a run recorded before', () => {
    // Record 2 changed, and every link from it on recomputed: consistent, but not what run r4 saw.
    let head = { chain: 'docs', seq: 1, hash: entries[0]!.hash };
    const rewritten = [entries[0]!];
    for (let id = 2; id <= 5; id++) {
      const entry = nextEntry(head, 'record', new Date(Date.UTC(2024, 0, id)), [record(id, { key: 'forged' })]);
      rewritten.push(entry);
      head = { chain: 'docs', seq: entry.seq, hash: entry.hash };
    }
    const check = walk(rewritten.map(entryLink), { anchors: [{ seq: 4, hash: entries[3]!.hash, by: 'run r4' }] });
    expect(check.problems).toEqual([
      expect.objectContaining({ kind: 'changed', seq: 4, message: expect.stringContaining('run r4 recorded') }),
    ]);
  });
});

describe('checking records against their latest entry', () => {
  const check = (records: ChainedAuditRecord[], entries: ChainEntry[], unchainedOk = false) => {
    const recordCheck = new RecordCheck('control store', 'docs');
    for (const entry of entries) recordCheck.entry(entry);
    for (const each of records) recordCheck.record(each, { unchainedOk, awaitingRepair: false });
    recordCheck.end();
    return recordCheck;
  };
  const { entries, records } = chainOf(3);
  const resolved = record(2, { status: 'deleted', resolvedAt: new Date('2024-03-02T00:00:00Z') });
  const resolution = nextEntry({ chain: 'docs', seq: 3, hash: entries[2]!.hash }, 'resolve', new Date(), [resolved]);

  it('accepts records in the state of their latest entry', () => {
    const result = check([records[0]!, resolved, records[2]!], [...entries, resolution]);
    expect(result.problems).toEqual([]);
    expect(result.records).toBe(3);
  });

  it.each([
    ['a record back in an earlier state', [records[0]!, records[1]!, records[2]!], 'changed', 2],
    ['a record edited', [records[0]!, { ...resolved, key: 'x' }, records[2]!], 'changed', 2],
    ['a record removed', [records[0]!, resolved], 'removed', 3],
    ['a record no entry covers', [records[0]!, resolved, records[2]!, record(9)], 'added', 9],
  ] as const)('%s: %s (record %i)', (_name, seen, kind, id) => {
    expect(check([...seen], [...entries, resolution]).problems).toEqual([
      expect.objectContaining({ kind, recordId: id }),
    ]);
  });

  it("holds a record to its most advanced chained state: a recovery's abandoned chained after its own run's deletion", () => {
    // DynamoDB: the recovery changed the record first but appended its entry last.
    const abandoned = record(2, { status: 'abandoned', resolvedAt: new Date('2024-03-02T00:00:00Z') });
    const recovery = nextEntry({ chain: 'docs', seq: 4, hash: resolution.hash }, 'resolve', new Date(), [abandoned]);
    expect(check([records[0]!, resolved, records[2]!], [...entries, resolution, recovery]).problems).toEqual([]);
    // Set back to the earlier state, it is a change.
    expect(check([records[0]!, abandoned, records[2]!], [...entries, resolution, recovery]).problems).toEqual([
      expect.objectContaining({ kind: 'changed', recordId: 2 }),
    ]);
  });

  it('leaves records no entry covers alone where they are expected (before the chains, before --since)', () => {
    expect(check([record(9)], [], true).problems).toEqual([]);
  });

  it('orders problems by trail, chain, link and record', () => {
    const problem = (trail: string, chain: string, seq?: number, recordId?: number) => ({
      trail,
      chain,
      kind: 'changed' as const,
      ...(seq === undefined ? {} : { seq }),
      ...(recordId === undefined ? {} : { recordId }),
      message: '',
    });
    const ordered = orderProblems(
      [
        problem('rows', 'a', 1),
        problem('control', 'b', 2),
        problem('control', 'a'),
        problem('control', 'a', 3, 7),
        problem('control', 'a', 3, 2),
      ],
      ['control', 'rows'],
    );
    expect(ordered.map((p) => [p.trail, p.chain, p.seq, p.recordId])).toEqual([
      ['control', 'a', 3, 2],
      ['control', 'a', 3, 7],
      ['control', 'a', undefined, undefined],
      ['control', 'b', 2, undefined],
      ['rows', 'a', 1, undefined],
    ]);
  });
});
