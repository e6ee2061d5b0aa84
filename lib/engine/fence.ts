import type { ControlStore, Lease } from '../core/control.ts';
import { LeaseLostError } from '../errors.ts';

/** Monotonic milliseconds: unaffected by wall-clock jumps, and it keeps counting while the process is stopped. */
export type MonotonicClock = () => number;

const monotonic: MonotonicClock = () => performance.now();

/**
 * The lease of a live run: renewed in the background, checked (fencing token, one round trip)
 * before every batch, and trusted locally in between only while it cannot have expired.
 *
 * A control store refuses to renew a paused policy's lease (and to write its checkpoint), so a
 * pause reaches a run in flight the same way a takeover or `lease break` does: through the next
 * fenced round trip, before the next batch (invariant 8). `assertHeld` is the local half, for
 * stores to call before each destructive request inside a batch: a holder stalled past its lease
 * (SIGSTOP, a frozen VM, a long GC) wakes up to a deadline already passed and stops, instead of
 * deleting items the run that took over has already recorded.
 */
export class Fence {
  private lost = false;
  /** A fenced write (the checkpoint) succeeded and nothing has run since: it was the check. */
  private confirmed = false;
  private readonly heartbeat: NodeJS.Timeout;
  /** Until when (monotonic ms) the lease is certainly ours, from the start of the last successful renewal. */
  private heldUntil: number;

  /** Monotonic ms after which the lease is no longer renewed: a run hung past its budget lets go. */
  private readonly renewUntil: number;

  /** `maxHoldMs`: how long, from now, this run may keep the lease at most (its budget plus a grace). */
  constructor(
    private readonly control: ControlStore,
    private lease: Lease,
    private readonly ttlMs: number,
    maxHoldMs = Number.POSITIVE_INFINITY,
    private readonly now: MonotonicClock = monotonic,
  ) {
    // Acquired moments ago: measured from now, with the same margin as a renewal.
    this.heldUntil = this.now() + this.trustedMs();
    this.renewUntil = this.now() + maxHoldMs;
    this.heartbeat = setInterval(() => void this.renew().catch(() => undefined), Math.max(1000, ttlMs / 3));
    this.heartbeat.unref();
  }

  get current(): Lease {
    return this.lease;
  }

  /**
   * A write fenced by this lease (it fails unless our token is current) just succeeded: the next
   * `checkBeforeNext` can rely on it instead of a round trip of its own.
   */
  confirmedByFencedWrite(startedAt: number): void {
    this.confirmed = true;
    this.heldUntil = Math.max(this.heldUntil, startedAt + this.trustedMs());
  }

  /**
   * The check before a batch that follows a fenced write with no I/O in between (one-statement
   * sweeps: checkpoint, then the next statement): that write was the check. Otherwise `check`.
   */
  async checkBeforeNext(): Promise<void> {
    if (this.confirmed && !this.lost) {
      this.confirmed = false;
      this.assertHeld();
      return;
    }
    await this.check();
  }

  /** Throws LeaseLostError unless we still hold the lease (and the policy is not paused); extends it on success. */
  async check(): Promise<void> {
    this.confirmed = false;
    if (!(await this.renew()))
      throw this.lostError('the lease was lost, broken or the policy paused; stopped before the next batch');
  }

  /**
   * No round trip: throws unless the lease is certainly still ours by the local monotonic clock.
   * Cheap enough to call before every destructive request.
   */
  assertHeld = (): void => {
    if (this.lost)
      throw this.lostError('the lease was lost, broken or the policy paused; stopped before the next deletion');
    if (this.now() > this.heldUntil) {
      this.lost = true;
      throw this.lostError(
        `the lease could not be confirmed for ${Math.round(this.trustedMs() / 1000)} s (the process stalled, or the control store is unreachable); stopped before the next deletion`,
      );
    }
  };

  /** Monotonic ms, for callers that confirm the lease by a fenced write of their own (`confirmedByFencedWrite`). */
  timestamp(): number {
    return this.now();
  }

  /** A renewal that started at `t` proves the lease until `t + ttl` by the store's clock; keep a quarter as margin. */
  private trustedMs(): number {
    return (this.ttlMs * 3) / 4;
  }

  private lostError(message: string): LeaseLostError {
    return new LeaseLostError(message, { policy: this.lease.policy, token: this.lease.token });
  }

  private async renew(): Promise<boolean> {
    if (this.lost) return false;
    const startedAt = this.now();
    // A run stuck past its budget (a frozen dependency) must not keep every other run out.
    if (startedAt > this.renewUntil) {
      this.lost = true;
      return false;
    }
    const renewed = await this.control.renewLease(this.lease, this.ttlMs);
    if (renewed) {
      this.lease = renewed;
      this.heldUntil = Math.max(this.heldUntil, startedAt + this.trustedMs());
    } else this.lost = true;
    return renewed !== null;
  }

  /** Releases the lease if it is still ours (the store's release is conditioned on the token). */
  async release(): Promise<void> {
    clearInterval(this.heartbeat);
    await this.control.releaseLease(this.lease);
  }
}
