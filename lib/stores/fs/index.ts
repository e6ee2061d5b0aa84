import type { StoreDescriptor } from '../../core/backend.ts';
import type { CompressFormat } from '../../policy/compress.ts';
import { type FsStoreConfig, FsStoreSchema } from './schema.ts';

/** Files under a local directory: blobs only, and only where the CLI runs. */
export const fsBackend = {
  kind: 'fs',
  classes: { blobs: { schema: FsStoreSchema, backupTo: 'a directory outside the store root' } },
  load: async () => {
    const { createFsStore } = await import('./store.ts');
    // A linked files' store (a rows policy's `blob`) has no compress tier: its files keep their names.
    return (policy: { store: FsStoreConfig; compress?: { format: CompressFormat } }) =>
      createFsStore(policy.store, policy.compress);
  },
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
