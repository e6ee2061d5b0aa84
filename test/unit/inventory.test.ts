import { describe, expect, it } from 'vitest';
import type { Store } from '../../lib/core/store.ts';
import {
  decodeInventoryKey,
  inventoryRows,
  inventoryShardStore,
  rowItem,
  shardRows,
} from '../../lib/stores/s3/inventory.ts';
import { S3StoreSchema } from '../../lib/stores/s3/schema.ts';

/** S3 Inventory rows as the blobs function reads them (pure): CSV, keys, dates, scope, paging. */
const store = S3StoreSchema.parse({
  kind: 's3',
  bucket: 'acme-archive',
  prefix: 'scans/',
  exclude: ['**/*.tmp'],
  region: 'eu-west-1',
});
const row = (key: string, extra: Record<string, string> = {}) => ({
  Bucket: 'acme-archive',
  Key: key,
  Size: '5',
  LastModifiedDate: '2019-01-01T00:00:00.000Z',
  ...extra,
});

describe('inventory rows', () => {
  it('reads quoted CSV fields, commas, doubled quotes and newlines inside them, by the fileSchema', () => {
    const csv = '"acme-archive","scans%2Fa","1","2019-01-01T00:00:00.000Z"\r\n"acme-archive","x""y,z\nw","2",""\n';
    expect(inventoryRows(csv, 'Bucket, Key, Size, LastModifiedDate')).toEqual([
      { Bucket: 'acme-archive', Key: 'scans%2Fa', Size: '1', LastModifiedDate: '2019-01-01T00:00:00.000Z' },
      { Bucket: 'acme-archive', Key: 'x"y,z\nw', Size: '2', LastModifiedDate: '' },
    ]);
  });

  it.each([
    ['scans/plain.tif', 'scans/plain.tif'],
    ['scans%2Fwith+space.tif', 'scans/with space.tif'],
    ['scans/a%2Bb.tif', 'scans/a+b.tif'],
    ['scans/%E2%82%AC.tif', 'scans/€.tif'],
    ['scans/%E2%82.tif', undefined],
  ])('decodes the form-encoded key %s', (encoded, key) => {
    expect(decodeInventoryKey(encoded)).toBe(key);
  });

  it.each([
    [row('scans/a'), { item: { key: 'scans/a', size: 5 } }],
    [row('scans/a', { IsLatest: 'false' }), { skip: 'noncurrent' }],
    [row('scans/a', { IsDeleteMarker: 'true' }), { skip: 'delete_marker' }],
    [row('scans/a', { LastModifiedDate: '2019-01-01' }), { problem: expect.stringContaining('LastModifiedDate') }],
    [row('scans/a', { LastModifiedDate: '2019-02-30T00:00:00Z' }), { problem: expect.stringContaining('ISO') }],
    [row('scans/a', { Size: '-1' }), { problem: expect.stringContaining('Size') }],
    [row(''), { problem: expect.stringContaining('Key') }],
  ])('reads a row as what it says about the current object (%#)', (input, expected) => {
    expect(rowItem(input)).toMatchObject(expected);
  });

  it('keeps only current objects in the store scope, once each, in key order', () => {
    const rows = [
      row('scans/b'),
      row('scans/a'),
      row('scans/b'),
      row('other/a'),
      row('scans/c.tmp'),
      row('scans/d', { IsLatest: 'false' }),
    ];
    const sorted = shardRows(rows, store);
    expect(sorted.items.map((item) => item.key)).toEqual(['scans/a', 'scans/b']);
    expect(sorted).toMatchObject({ outOfScope: 2, notCurrent: 1 });
  });
});

describe('a shard as a store', () => {
  const rows = shardRows(
    ['scans/a', 'scans/b', 'scans/c', 'scans/d', 'scans/e'].map((key) => row(key)),
    store,
  );
  const unused = (() => Promise.reject(new Error('not called'))) as never;
  const s3 = { kind: 's3', location: 's3://acme-archive/scans/', order: 'key' } as Store;
  const shard = inventoryShardStore(
    { ...s3, open: unused, close: unused, delete: unused, present: unused } as Store,
    rows,
  );
  const cutoffs = { default: new Date('2020-01-01T00:00:00Z'), byValue: {} } as never;

  it('pages through its rows after the checkpoint key, and ends', async () => {
    const first = await shard.scan({ cutoffs, limit: 2 });
    expect(first).toMatchObject({ cursor: 'scans/b', done: false });
    const resumed = await shard.scan({ cutoffs, cursor: 'scans/b', limit: 2 });
    expect(resumed.items.map((item) => item.key)).toEqual(['scans/c', 'scans/d']);
    const last = await shard.scan({ cutoffs, cursor: 'scans/d', limit: 2 });
    expect(last).toMatchObject({ items: [expect.objectContaining({ key: 'scans/e' })], done: true });
    // A checkpoint between keys (a key the batch no longer holds) resumes at the next one.
    expect((await shard.scan({ cutoffs, cursor: 'scans/bb', limit: 9 })).items[0]!.key).toBe('scans/c');
  });
});
