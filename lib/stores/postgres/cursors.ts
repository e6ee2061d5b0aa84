import type { Item } from '../../core/types.ts';
import { StoreError } from '../../errors.ts';
import type { SegmentCursor } from './segments.ts';
import { type Cursor, keyParts, type RowsShape } from './sql.ts';

/**
 * Rows as items, and positions in a table as the opaque cursors the engine checkpoints: along
 * the timestamp index (`{ts, key}`), or within a purpose (`{purpose, position?}`) for a
 * segmented sweep.
 */

/** What a scanned row carries besides its key and timestamp, each when the shape has it. */
export interface ScannedColumns {
  purpose?: string | null;
  linked?: string | null;
  size?: number | null;
}

export function toItem(row: { key: string; ts: string } & ScannedColumns, shape: RowsShape): Item {
  return {
    key: row.key,
    timestamp: new Date(row.ts),
    ...(row.size === undefined || row.size === null ? {} : { size: row.size }),
    ...(row.purpose !== undefined && shape.by ? { attributes: { [shape.by.name]: row.purpose } } : {}),
    // The linked file's key, so a hold on the file path holds the row (and the file with it).
    ...(row.linked === undefined || row.linked === null ? {} : { linkedKey: row.linked }),
  };
}

/** The cursor after a scanned row: its timestamp as the column holds it (microseconds included) and its key. */
export function cursorAfter(
  row: { key: string; ts: string; ts_raw?: string },
  shape: RowsShape,
  location: string,
): string {
  const key = keyParts(shape, row.key);
  if (!key)
    throw new StoreError(`${location}: scanned key ${row.key} does not parse`, { store: location, key: row.key });
  return JSON.stringify({ ts: row.ts_raw ?? row.ts, key } satisfies Cursor);
}

/** Scans go along the timestamp index: a position within a purpose (from a segmented sweep) restarts them. */
export function timestampPosition(position: Cursor | SegmentCursor | undefined): Cursor | undefined {
  return position && !('purpose' in position) ? position : undefined;
}

/** A checkpoint position: along the timestamp index (`{ts, key}`), or within a purpose (`{purpose, position?}`). */
export function parseCursor(cursor: string, shape: RowsShape, location: string): Cursor | SegmentCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(cursor);
  } catch {
    parsed = undefined;
  }
  const asPosition = (value: unknown): Cursor | undefined => {
    const candidate = value as Partial<Cursor> | undefined;
    if (
      typeof candidate?.ts !== 'string' ||
      !Array.isArray(candidate.key) ||
      candidate.key.length !== shape.key.length ||
      !candidate.key.every((part) => typeof part === 'string')
    )
      return undefined;
    return { ts: candidate.ts, key: candidate.key };
  };
  const segmented = parsed as { purpose?: unknown; position?: unknown } | undefined;
  if (
    segmented &&
    typeof segmented === 'object' &&
    'purpose' in segmented &&
    (segmented.purpose === null || typeof segmented.purpose === 'string')
  ) {
    const position = segmented.position === undefined ? undefined : asPosition(segmented.position);
    if (segmented.position === undefined || position)
      return { purpose: segmented.purpose, ...(position ? { position } : {}) };
  }
  const position = asPosition(parsed);
  if (!position)
    throw new StoreError(
      `${location}: checkpoint cursor ${cursor} is not a position in (${shape.ts}, ${shape.key.join(', ')})`,
      { store: location, cursor },
    );
  return position;
}
