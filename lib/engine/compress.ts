import type { AuditResolution } from '../core/control.ts';
import { durationMs } from '../core/durations.ts';
import type { CompressOutcome, StoreCompression } from '../core/store.ts';
import type { EligibleItem, Hold } from '../core/types.ts';
import { describeCause, InterruptedError } from '../errors.ts';
import { type CompressPlan, compressPlan, selectForCompression } from '../policy/compress.ts';
import { pageSize } from './batchSize.ts';
import type { Fence } from './fence.ts';
import { type ActiveRun, auditIntent } from './start.ts';
import type { SweepEnd } from './sweep.ts';

/**
 * The compress tier (`compress: { after }`, fs policies): after a completed delete sweep, one pass
 * over the scope compresses files past `after` that are not yet due for deletion and not held.
 * The engine's guarantees carry over: the lease is checked before each batch (a round trip) and
 * before each file and each removal of an original (locally, `assertHeld`), the budget between
 * batches, a signal stops it, a dry run lists `would_compress` and changes nothing. Each
 * compression is written ahead as a `compress` intent and resolved `compressed` (sizes in the
 * record's note): a crash leaves `pending` intents that the next run resolves by presence, like
 * deletions. No checkpoint: already-compressed files are skipped, so the next run goes on.
 * At most `maxDeletesPerRun` compressions per run (unless `--force`): a wrong root cannot be
 * rewritten whole in one run; the rest waits for the next run without failing this one.
 */
export async function compressPass(run: ActiveRun, holds: Hold[], fence: Fence | null): Promise<SweepEnd> {
  const { policy, deps, options, tally, budget, log } = run;
  const compression = deps.store.compress;
  if (policy.class !== 'blobs' || !policy.compress || !compression || options.limit !== undefined)
    return { status: 'completed' };
  const plan = compressPlan(policy.compress, durationMs(policy.compress.after), run.cutoffs);
  const summary = tally.startCompression(options.dryRun);
  let allowance = options.force || options.dryRun ? Number.POSITIVE_INFINITY : policy.limits.maxDeletesPerRun;
  let cursor: string | undefined;
  for (;;) {
    if (options.signal?.aborted) {
      const reason = String(options.signal.reason ?? 'a signal');
      log.warn('run_interrupted', { reason, compressed: summary.count });
      return { status: 'partial', stopReason: 'signal', error: new InterruptedError(reason) };
    }
    // Checked before the first batch too: the sweep's batches already spent part of the budget.
    if (!budget.allowsNextBatch()) {
      log.warn('budget_exhausted', { pass: 'compress', compressed: summary.count });
      summary.unfinished = 'budget';
      return { status: 'partial', stopReason: 'budget' };
    }
    const started = deps.clock.now().getTime();
    const page = await deps.store.scan({
      cutoffs: run.cutoffs,
      limit: pageSize(policy),
      ...(cursor ? { cursor } : {}),
    });
    const batch = selectForCompression(page.items, run.cutoffs, plan, holds).slice(0, allowance);
    if (options.dryRun) for (const item of batch) tally.countCompression(item, undefined);
    else if (batch.length > 0) await compressBatch(run, compression, fence!, batch, plan);
    allowance -= batch.length;
    budget.recordBatch(deps.clock.now().getTime() - started);
    if (page.done) break;
    if (allowance <= 0) {
      log.warn('compress_limit_reached', { compressed: summary.count, max_per_run: policy.limits.maxDeletesPerRun });
      summary.unfinished = 'limit';
      break;
    }
    cursor = page.cursor;
  }
  // The listings just walked the scope: temporaries of compressions killed earlier were met and go now.
  if (fence) {
    const removed = await compression.removeLeftovers({ run: run.context, beforeRequest: fence.assertHeld });
    if (removed > 0) log.info('compress_leftovers_removed', { removed });
  }
  return { status: 'completed' };
}

/** One batch: intents, the fence, the store's compressions, resolutions; as `Sweep.deleteBatch` for deletions. */
async function compressBatch(
  run: ActiveRun,
  compression: StoreCompression,
  fence: Fence,
  batch: EligibleItem[],
  plan: CompressPlan,
): Promise<void> {
  const { control, store } = run.deps;
  const { context, tally, log } = run;
  const settle = (resolutions: AuditResolution[]) => control.resolveIntents(context.runId, resolutions);
  await control.recordIntents(batch.map((item) => auditIntent(run, item, 'compress')));
  let outcomes: CompressOutcome[];
  try {
    await fence.check();
    outcomes = await compression.compress(batch, { run: context, beforeRequest: fence.assertHeld });
  } catch (error) {
    // Unknown which went: an original still present was not removed (its copy, if any, is redone).
    const present = await store.present(batch.map((item) => item.key));
    await settle(
      batch.map((item) =>
        present.has(item.key)
          ? { key: item.key, status: 'abandoned' as const, error: `not compressed: ${describeCause(error)}` }
          : { key: item.key, status: 'compressed' as const },
      ),
    );
    throw error;
  }
  const answered = new Set(outcomes.map((outcome) => outcome.key));
  const unattempted = batch.filter((item) => !answered.has(item.key));
  await settle([
    ...outcomes.map((outcome) => {
      const text = note(outcome, plan);
      return { key: outcome.key, status: outcome.status, ...(text ? { error: text } : {}) };
    }),
    ...unattempted.map((item) => ({
      key: item.key,
      status: 'abandoned' as const,
      error: 'not attempted: the run stopped (lease)',
    })),
  ]);
  const byKey = new Map(batch.map((item) => [item.key, item]));
  for (const outcome of outcomes) tally.countCompression(byKey.get(outcome.key)!, outcome);
  const count = (status: CompressOutcome['status']) => outcomes.filter((outcome) => outcome.status === status).length;
  log.info('batch_compressed', {
    batch_size: batch.length,
    compressed: count('compressed'),
    missing: count('missing'),
    kept: count('kept'),
    failed: count('failed'),
    bytes_saved: outcomes.reduce((sum, outcome) => sum + (outcome.bytesBefore ?? 0) - (outcome.bytesAfter ?? 0), 0),
    ...(unattempted.length > 0 ? { not_attempted: unattempted.length } : {}),
  });
  if (unattempted.length > 0) fence.assertHeld();
}

/** The record's note: a compression's sizes (`gzip: 1200 → 300 bytes (saved 900) as a.log.gz`), else the cause. */
function note(outcome: CompressOutcome, plan: CompressPlan): string | undefined {
  if (outcome.status !== 'compressed') return outcome.error;
  const before = outcome.bytesBefore ?? 0;
  const after = outcome.bytesAfter ?? 0;
  const sizes = `${plan.format}: ${before} → ${after} bytes (saved ${before - after}) as ${outcome.compressedKey}`;
  return outcome.error ? `${sizes}; ${outcome.error}` : sizes;
}
