import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RetentionConfigInput } from '../config/schema.ts';
import type { SqlExecutor } from '../sql/client.ts';

/**
 * Demo data modelled on real deployments: call-recording temp audio, application logs, a
 * thumbnail cache, and documents filed by purpose code over twelve years. Re-seeding replaces
 * the tree, so the demo shows deletions every time it runs.
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;

export const DEMO_PURPOSES = ['testing', 'general', 'financial', 'legal', 'medical'] as const;

/** Items the demo puts on legal hold (keys relative to the documents root). */
export const DEMO_HOLDS = [
  { key: 'legal/doc-0003.pdf', prefix: false, reason: 'litigation hold: case 2019-CV-1042' },
  { key: 'financial/doc-0001.pdf', prefix: false, reason: 'tax audit 2021' },
  { key: 'medical/doc-001', prefix: true, reason: 'patient records request #5521' },
];

/**
 * A log past its 30 days in every demo tree (`app/app-NNN.log` is NNN days and an hour old): the
 * file the demo suggests restoring. One file, not the whole run: a restore holds what it brings
 * back, so the next demo still shows deletions, and this one file held by its restore.
 */
export const DEMO_LOG_TO_RESTORE = 'app/app-030.log';

/** Held documents are seeded past their retention, so the demo shows holds doing their job. */
const HELD_AGE_MS = 11 * 365 * 24 * 3_600_000;

interface SeedFile {
  key: string;
  ageMs: number;
  size: number;
}

/** A row of the demo `documents` table; its file lives under the documents folder. */
export interface DemoDocument {
  id: number;
  purposeCode: string;
  file: string;
  ageMs: number;
  size: number;
}

/** Folder name → the purpose code stored in the table. */
const PURPOSE_CODES: Record<(typeof DEMO_PURPOSES)[number], string> = {
  testing: 'System Testing',
  general: 'General',
  financial: 'Financial',
  legal: 'Legal',
  medical: 'Medical',
};

/** Deterministic pseudo-random numbers so every demo run seeds the same tree. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

function demoFiles(): Record<string, SeedFile[]> {
  const next = random(42);
  const temp: SeedFile[] = Array.from({ length: 48 }, (_, i) => ({
    key: `call-${String(i).padStart(4, '0')}.wav`,
    ageMs: 10 * MINUTE + next() * 60 * DAY,
    size: 16_000 + Math.floor(next() * 48_000),
  }));
  const logs: SeedFile[] = Array.from({ length: 120 }, (_, day) => ({
    key: `app/app-${String(day).padStart(3, '0')}.log`,
    ageMs: day * DAY + HOUR,
    size: 2_000 + Math.floor(next() * 8_000),
  }));
  logs.push({ key: 'app/current.log', ageMs: 5 * MINUTE, size: 1_024 });
  const cache: SeedFile[] = Array.from({ length: 64 }, (_, i) => ({
    key: `thumbs/${(i % 8).toString(16)}/${i.toString(16).padStart(4, '0')}.jpg`,
    ageMs: HOUR + next() * 90 * DAY,
    size: 4_000 + Math.floor(next() * 12_000),
  }));
  return {
    temp_audio: temp,
    logs,
    cache,
    documents: demoDocuments().map(({ file, ageMs, size }) => ({ key: file, ageMs, size })),
  };
}

/** Documents filed by purpose over twelve years; held ones are seeded past their retention. */
export function demoDocuments(): DemoDocument[] {
  const next = random(7);
  const documents: DemoDocument[] = [];
  DEMO_PURPOSES.forEach((purpose) => {
    for (let i = 0; i < 24; i += 1) {
      const file = `${purpose}/doc-${String(i).padStart(4, '0')}.pdf`;
      const ageMs = HOUR + next() * 12 * YEAR;
      documents.push({
        id: documents.length + 1,
        purposeCode: PURPOSE_CODES[purpose],
        file,
        ageMs: heldBy(file) ? Math.max(ageMs, HELD_AGE_MS) : ageMs,
        size: 20_000 + Math.floor(next() * 200_000),
      });
    }
  });
  return documents;
}

function heldBy(file: string): (typeof DEMO_HOLDS)[number] | undefined {
  return DEMO_HOLDS.find((hold) => (hold.prefix ? file.startsWith(hold.key) : file === hold.key));
}

/** Holds on the demo rows: row keys are their ids. */
export function demoDocumentHolds(): Array<{ key: string; prefix: false; reason: string }> {
  return demoDocuments().flatMap((document) => {
    const hold = heldBy(document.file);
    return hold
      ? [{ key: String(document.id), prefix: false as const, reason: `${hold.reason} (${document.file})` }]
      : [];
  });
}

/** (Re)creates `demo.documents` with the demo rows; their files are written by seedDemo. */
export async function seedDocumentsTable(sql: SqlExecutor, now: Date): Promise<number> {
  const documents = demoDocuments();
  await sql.query('CREATE SCHEMA IF NOT EXISTS demo');
  await sql.query('DROP TABLE IF EXISTS demo.documents');
  await sql.query(
    `CREATE TABLE demo.documents (id bigint PRIMARY KEY, purpose_code text NOT NULL, file_path text NOT NULL,
       size_bytes bigint NOT NULL, created_at timestamptz NOT NULL)`,
  );
  await sql.query('CREATE INDEX documents_created_at ON demo.documents (created_at, id)');
  // Per purpose code: each purpose's due rows are one index range (see the rows store's README entry).
  await sql.query('CREATE INDEX documents_purpose ON demo.documents (purpose_code, created_at, id)');
  await sql.query(
    `INSERT INTO demo.documents SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])`,
    [
      documents.map((document) => document.id),
      documents.map((document) => document.purposeCode),
      documents.map((document) => document.file),
      documents.map((document) => document.size),
      documents.map((document) => new Date(now.getTime() - document.ageMs)),
    ],
  );
  return documents.length;
}

/** Writes the demo tree under `<dir>/data` (replacing any previous one) and returns the config. */
export async function seedDemo(
  dir: string,
  now: Date,
  databaseUrl: string,
): Promise<{ config: RetentionConfigInput; files: number }> {
  const data = path.join(dir, 'data');
  await rm(data, { recursive: true, force: true });
  let files = 0;
  for (const [folder, entries] of Object.entries(demoFiles())) {
    for (const entry of entries) {
      const file = path.join(data, folder, entry.key);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, Buffer.alloc(entry.size));
      const mtime = new Date(now.getTime() - entry.ageMs);
      await utimes(file, mtime, mtime);
      files += 1;
    }
  }
  return { config: demoConfig(dir, databaseUrl), files };
}

export function demoConfig(dir: string, databaseUrl: string): RetentionConfigInput {
  const root = (folder: string): string => path.join(dir, 'data', folder);
  return {
    policies: [
      {
        name: 'temp-audio',
        description: 'Call recordings staged for transcription: gone after a day.',
        class: 'blobs',
        store: { kind: 'fs', root: root('temp_audio'), include: ['**/*.wav'] },
        retention: '24h',
        schedule: '0 * * * *',
        // Temp data: most of it is past retention at any time, so the fraction guard is off.
        limits: { maxDeletesPerRun: 1_000, maxDeleteFraction: 1 },
      },
      {
        name: 'app-logs',
        description: 'Application logs: 30 days, copied aside before deletion for a week.',
        class: 'blobs',
        store: { kind: 'fs', root: root('logs'), include: ['**/*.log'], removeEmptyDirs: true },
        retention: '30d',
        schedule: '30 3 * * *',
        limits: { maxDeletesPerRun: 1_000, maxDeleteFraction: 0.9 },
        backup: { to: path.join(dir, 'backups'), keepFor: '7d' },
      },
      {
        name: 'thumbnail-cache',
        description: 'Rendered thumbnails: rebuilt on demand, kept a week.',
        class: 'blobs',
        store: { kind: 'fs', root: root('cache'), removeEmptyDirs: true },
        retention: '7d',
        schedule: '15 */6 * * *',
        limits: { maxDeletesPerRun: 1_000, maxDeleteFraction: 0.95 },
      },
      {
        name: 'documents',
        description: 'Document rows by purpose code, each with its legal retention; their files go first.',
        class: 'rows',
        store: { kind: 'postgres', url: databaseUrl },
        table: 'demo.documents',
        timestamp: 'created_at',
        size: 'size_bytes',
        retention: {
          by: 'purpose_code',
          rules: { 'System Testing': '24h', General: '30d', Financial: '1y', Legal: '7y', Medical: '10y' },
        },
        blob: { column: 'file_path', store: { kind: 'fs', root: root('documents') } },
        schedule: '0 2 * * *',
        limits: { maxDeletesPerRun: 1_000, maxDeleteFraction: 0.75 },
      },
    ],
  };
}
