import type { StoreDescriptor } from '../../core/backend.ts';
import { s3Deployment } from './deployment.ts';
import { type S3StoreConfig, S3StoreSchema } from './schema.ts';

/** Objects under a prefix of an S3 bucket (or of an S3-compatible server). */
export const s3Backend = {
  kind: 's3',
  classes: { blobs: { schema: S3StoreSchema, backupTo: 's3://<bucket>/<prefix>, outside the store prefix' } },
  deployment: s3Deployment,
} satisfies StoreDescriptor<S3StoreConfig>;
