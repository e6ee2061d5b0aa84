import type { StoreDescriptor } from '../../core/backend.ts';
import { type FsStoreConfig, FsStoreSchema } from './schema.ts';

/** Files under a local directory: blobs only, and only where the CLI runs. */
export const fsBackend = {
  kind: 'fs',
  classes: { blobs: { schema: FsStoreSchema, backupTo: 'a directory outside the store root' } },
  deployment: {
    grant: () => ({
      refused: {
        path: 'store.kind',
        message: '"fs" is a directory on the machine that runs the tool; a Lambda function has no such directory',
        fix: 'run local policies with the CLI, and deploy a config without them (RETENTION_CONFIG=<file> npx sst deploy)',
      },
    }),
  },
} satisfies StoreDescriptor<FsStoreConfig>;
