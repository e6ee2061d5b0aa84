import type { StoreDescriptor } from '../../core/backend.ts';
import { type VercelBlobStoreConfig, VercelBlobStoreSchema } from './schema.ts';

/** Blobs under a pathname prefix of a Vercel Blob store. */
export const vercelBlobBackend = {
  kind: 'vercel-blob',
  classes: { blobs: { schema: VercelBlobStoreSchema, backupTo: 'a pathname prefix outside the store prefix' } },
  deployment: {
    // Reached with its token (the SDK reads BLOB_READ_WRITE_TOKEN), never with IAM. Backups are
    // copies inside the same store: the same token.
    grant: (store) => ({ statements: [], secrets: store.token === undefined ? ['blobToken'] : [] }),
  },
} satisfies StoreDescriptor<VercelBlobStoreConfig>;
