import { defineConfig } from './lib/config/load.ts';

/**
 * The deployed policies: `sst.config.ts` schedules every enabled one and bundles this file into
 * the functions; the CLI reads it when run from the repo root. These are examples: replace the
 * buckets and prefixes with your own before `npx sst deploy`.
 */
export default defineConfig({
  policies: [
    {
      name: 'pdfs',
      description: 'Generated PDFs: kept 7 days, backed up for 30 more',
      class: 'blobs',
      store: { kind: 's3', bucket: 'acme-docs', prefix: 'pdfs/', region: 'us-east-1' },
      retention: '7d',
      schedule: '0 3 * * *',
      budget: '10m',
      backup: { to: 's3://acme-retention-backups/', keepFor: '30d' },
    },
    {
      name: 'uploads',
      description: 'User uploads in Vercel Blob: scratch files 1 day, the rest 30 days',
      class: 'blobs',
      store: { kind: 'vercel-blob', prefix: 'uploads/' },
      retention: { by: 'prefix', rules: { 'uploads/tmp/': '24h', 'uploads/': '30d' } },
      schedule: '30 * * * *',
      budget: '5m',
    },
  ],
});
