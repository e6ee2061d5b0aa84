import * as z from 'zod';
import type { Census, CensusQuery, Page, ScanQuery, Store } from '../../core/store.ts';
import type { Item } from '../../core/types.ts';
import { CensusTally, compareUtf8, scopeMatcher } from '../common.ts';
import type { S3StoreConfig } from './schema.ts';

/**
 * S3 Inventory as the scan source of an S3 policy (buckets of 10^8+ objects, where one listing
 * pass takes days). Step Functions' Distributed Map reads the inventory's manifest.json and its
 * CSV data files (ItemReader, `InputType: MANIFEST`) and hands the blobs function batches of rows;
 * each batch is a *shard*. Here, pure: the manifest's and the rows' shapes as S3 writes them, and
 * a shard as a Store whose scan yields only its rows in the policy's scope, while its delete and
 * `present` are the policy's own S3 store's (a listing re-checks each batch right before the
 * delete: an object rewritten since the inventory date is `kept`, one already gone `missing`).
 */

/** manifest.json (S3 User Guide, "Inventory manifest"): the fields the readers need. */
export const InventoryManifest = z.object({
  sourceBucket: z.string().min(1),
  destinationBucket: z.string().min(1),
  fileFormat: z.literal('CSV', { error: 'only CSV inventories can be read (Step Functions reads no ORC/Parquet)' }),
  /** Column names in order, comma-separated: `Bucket, Key, Size, LastModifiedDate, ETag, …`. */
  fileSchema: z.string().min(1),
  files: z.array(z.object({ key: z.string().min(1), size: z.number(), MD5checksum: z.string() })).min(1),
});

/** One inventory row as ItemReader hands it: every value a string, named by the manifest's fileSchema. */
export type InventoryRow = Record<string, string>;

function schemaColumns(fileSchema: string): string[] {
  return fileSchema.split(',').map((column) => column.trim());
}

/**
 * The rows of one CSV data file (already gunzipped), as ItemReader yields them: RFC 4180 fields,
 * every field quoted by S3, named by `fileSchema`. Used by the local Distributed-Map driver and tests.
 */
export function inventoryRows(csv: string, fileSchema: string): InventoryRow[] {
  const columns = schemaColumns(fileSchema);
  return parseCsv(csv).map((fields) =>
    Object.fromEntries(columns.map((column, index) => [column, fields[index] ?? ''])),
  );
}

/** RFC 4180: quoted fields may hold commas, newlines and doubled quotes. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  const field = /"((?:[^"]|"")*)"|([^",\r\n]*)/y;
  let at = 0;
  while (at < text.length) {
    const fields: string[] = [];
    for (;;) {
      field.lastIndex = at;
      const match = field.exec(text)!;
      fields.push(match[1] !== undefined ? match[1].replaceAll('""', '"') : match[2]!);
      at = field.lastIndex;
      if (text[at] !== ',') break;
      at += 1;
    }
    records.push(fields);
    if (text[at] === '\r') at += 1;
    if (text[at] === '\n') at += 1;
  }
  return records;
}

/**
 * A CSV inventory's keys are URL-encoded, form style (a space is `+`, a `+` is `%2B`). A key that
 * does not decode is refused; one decoded wrongly would name no object (`missing`), never another.
 */
export function decodeInventoryKey(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

/** What a row says about the current object, or why the row cannot be used. */
export type RowItem =
  | { item: Item & { etag?: string } }
  | { skip: 'noncurrent' | 'delete_marker' }
  | { problem: string };

export function rowItem(row: InventoryRow): RowItem {
  // Versioned inventories list every version: only the current, non-marker one is the object.
  if (row.IsLatest === 'false') return { skip: 'noncurrent' };
  if (row.IsDeleteMarker === 'true') return { skip: 'delete_marker' };
  const key = decodeInventoryKey(row.Key ?? '');
  if (key === undefined || key === '') return { problem: `Key ${JSON.stringify(row.Key)} is not a URL-encoded key` };
  const text = row.LastModifiedDate ?? '';
  const timestamp = new Date(text);
  // `new Date` rolls 2019-02-30 over to March 2nd: the calendar date must survive the round trip.
  const real = !Number.isNaN(timestamp.getTime()) && timestamp.toISOString().slice(0, 10) === text.slice(0, 10);
  if (!/^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(text) || !real)
    return { problem: `LastModifiedDate ${JSON.stringify(text)} is not an ISO instant` };
  const size = row.Size === undefined || row.Size === '' ? 0 : Number(row.Size);
  if (!Number.isSafeInteger(size) || size < 0)
    return { problem: `Size ${JSON.stringify(row.Size)} is not a byte count` };
  return { item: { key, timestamp, size, ...(row.ETag ? { etag: row.ETag } : {}) } };
}

/** How a shard's rows were sorted out before anything ran (reported with the shard's run). */
export interface ShardRows {
  /** Current objects in the policy's scope, in key order, each once: the shard's items. */
  items: Item[];
  /** Rows outside the store's prefixes or include/exclude: refused, never candidates. */
  outOfScope: number;
  /** Noncurrent versions and delete markers (versioned inventories). */
  notCurrent: number;
}

/** Sorts a shard's rows (already checked: same bucket, decodable) into the items the policy may touch. */
export function shardRows(rows: InventoryRow[], store: S3StoreConfig): ShardRows {
  const shards = store.prefixes ?? [store.prefix];
  const inScope = scopeMatcher(store.include, store.exclude);
  const byKey = new Map<string, Item>();
  let outOfScope = 0;
  let notCurrent = 0;
  for (const row of rows) {
    const read = rowItem(row);
    if ('skip' in read) notCurrent += 1;
    else if ('problem' in read) throw new Error(`unchecked inventory row: ${read.problem}`);
    else if (!shards.some((shard) => read.item.key.startsWith(shard)) || !inScope(read.item.key)) outOfScope += 1;
    else byKey.set(read.item.key, { key: read.item.key, timestamp: read.item.timestamp, size: read.item.size });
  }
  const items = [...byKey.values()].sort((a, b) => compareUtf8(a.key, b.key));
  return { items, outOfScope, notCurrent };
}

/**
 * The shard as a Store: scan pages through its items in key order (the cursor is the last key,
 * so a retried shard resumes after what its checkpoint says was done); census counts them, so the
 * limits judge the shard (a wrong retention shows in every shard's fraction); delete and present
 * are the S3 store's, whose delete re-lists each batch and refuses keys outside its scope.
 */
export function inventoryShardStore(s3: Store, rows: ShardRows): Store {
  const { items } = rows;
  return {
    kind: s3.kind,
    location: s3.location,
    order: 'key',
    open: (run) => s3.open(run),
    close: () => s3.close(),
    async scan({ cursor, limit }: ScanQuery): Promise<Page> {
      const start = cursor === undefined ? 0 : firstAfter(items, cursor);
      const page = items.slice(start, start + limit);
      const done = start + limit >= items.length;
      return { items: page, ...(page.length > 0 ? { cursor: page.at(-1)!.key } : cursor ? { cursor } : {}), done };
    },
    async census(query: CensusQuery): Promise<Census> {
      const tally = new CensusTally(query);
      for (const item of items) if (!tally.add(item)) break;
      return tally.census;
    },
    delete: (batch, options) => s3.delete(batch, options),
    present: (keys) => s3.present(keys),
  };
}

/** Index of the first item whose key sorts after `key` (binary search over the sorted items). */
function firstAfter(items: Item[], key: string): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareUtf8(items[middle]!.key, key) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}
