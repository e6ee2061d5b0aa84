import path from 'node:path';
import * as z from 'zod';
import { issue, problemCheck } from '../core/issues.ts';
import { Duration, Retention } from '../core/retention.ts';

// The config of the disk monitor and of emergency runs (README "Disk filling up"): zod only,
// assembled into the config by schema.ts.

/**
 * What a run does in an emergency (`retention run --emergency`, or the daemon when the policy's
 * file system crosses its critical line): each rule given only narrows what the emergency deletes
 * (an item goes when it is older than `retention` and not among the `keepNewest` newest).
 */
export const Emergency = z
  .strictObject({
    /** Replaces the policy's retention for an emergency run. */
    retention: Retention.optional(),
    /** Keep only the newest N items in scope (by timestamp); holds still hold. */
    keepNewest: z.number().int().positive().optional(),
    /** At most this many deletions in one emergency run. */
    maxDeletes: z.number().int().positive().optional(),
  })
  .superRefine((emergency, ctx) => {
    if (emergency.retention === undefined && emergency.keepNewest === undefined)
      issue(ctx, 'says neither what to keep nor for how long', 'add keepNewest: <n> or retention: "<duration>"');
  });

/**
 * The disk monitor (`retention disk`, and the daemon every `interval`): the file systems that fs
 * policies live on, against a warning and a critical line (percent used).
 */
export const DiskConfig = z
  .strictObject({
    warning: z.number().gt(0).lt(100).default(80),
    critical: z.number().gt(0).max(100).default(90),
    /** An alert of one kind (file system + level) is repeated at most this often; critical ones always go. */
    cooldown: Duration.default('6h'),
    /** How often the daemon looks. */
    interval: Duration.default('5m'),
    /** The latest alerts as JSON (for dashboards), and the cooldown state; default $RETENTION_HOME/disk-alerts.json. */
    alertFile: z
      .string()
      .min(1)
      .superRefine(
        problemCheck((file: string) =>
          path.isAbsolute(file)
            ? undefined
            : { message: `${file} is not absolute`, fix: 'e.g. "/var/lib/retention-alerts.json"' },
        ),
      )
      .optional(),
  })
  .superRefine((disk, ctx) => {
    if (disk.warning >= disk.critical)
      issue(ctx, `warning ${disk.warning} is not below critical ${disk.critical}`, 'e.g. warning: 80, critical: 90', [
        'warning',
      ]);
  });

export type EmergencyConfig = z.output<typeof Emergency>;
export type DiskSettings = z.output<typeof DiskConfig>;
