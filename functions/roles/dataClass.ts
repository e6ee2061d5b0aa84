import type { ControlLoaders } from '../../lib/control/descriptors.ts';
import type { DataClass } from '../../lib/core/types.ts';
import { createRunMonitor } from '../../lib/observe/sentry.ts';
import { createDataClassHandler } from '../../lib/serverless/handler.ts';
import { openStore, type StoreLoaders } from '../../lib/stores/descriptors.ts';
import { runtime, secret } from '../adapter.ts';

/**
 * A data-class function: its runtime, Sentry from the linked DSN, and the handler from lib/, with
 * the store code of its class (`stores`) and the control store code it carries (`controls`).
 */
export function dataClassHandler(dataClass: DataClass, stores: StoreLoaders, controls: ControlLoaders) {
  // The Vercel Blob SDK reads its token from the environment on every call.
  const blobToken = secret('blobToken');
  if (blobToken && !process.env.BLOB_READ_WRITE_TOKEN) process.env.BLOB_READ_WRITE_TOKEN = blobToken;
  const shared = runtime(controls);
  const monitor = createRunMonitor({
    dsn: secret('sentryDsn'),
    clock: shared.clock,
    ...(process.env.RETENTION_STAGE ? { environment: process.env.RETENTION_STAGE } : {}),
  });
  return createDataClassHandler(dataClass, shared, { monitor, createStore: (policy) => openStore(stores, policy) });
}
