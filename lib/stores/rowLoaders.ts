import { BLOB_LOADERS } from './blobLoaders.ts';
import type { StoreLoaders } from './descriptors.ts';
import { loadPostgresRowsStore } from './postgres/loadRows.ts';

/** The stores of class rows, and those of class blobs, where a rows policy's linked files are. */
export const ROW_LOADERS = {
  rows: { postgres: loadPostgresRowsStore },
  ...BLOB_LOADERS,
} satisfies StoreLoaders;
