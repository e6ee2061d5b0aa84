import type { StoreLoaders } from './descriptors.ts';
import { loadFsStore } from './fs/load.ts';
import { loadS3Store } from './s3/load.ts';
import { loadVercelBlobStore } from './vercel-blob/load.ts';

/** The stores of class blobs: the blobs function's, and a rows policy's linked files. */
export const BLOB_LOADERS = {
  blobs: { fs: loadFsStore, s3: loadS3Store, 'vercel-blob': loadVercelBlobStore },
} satisfies StoreLoaders;
