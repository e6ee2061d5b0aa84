import type { ControlStore, Lease } from '../control/types.ts';
import { LeaseLostError } from '../errors.ts';

/** The lease, renewed in the background and checked (fencing) before every batch. */
export class Fence {
  private lost = false;
  /** A fenced write (the checkpoint) succeeded and nothing has run since: it was the check. */
  private confirmed = false;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly control: ControlStore,
    private lease: Lease,
    private readonly ttlMs: number,
  ) {
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
  confirmedByFencedWrite(): void {
    this.confirmed = true;
  }

  /**
   * The check before a batch that follows a fenced write with no I/O in between (one-statement
   * sweeps: checkpoint, then the next statement): that write was the check. Otherwise `check`.
   */
  async checkBeforeNext(): Promise<void> {
    if (this.confirmed && !this.lost) {
      this.confirmed = false;
      return;
    }
    await this.check();
  }

  /** Throws LeaseLostError unless we still hold the lease; extends it on success. */
  async check(): Promise<void> {
    this.confirmed = false;
    if (!(await this.renew())) {
      throw new LeaseLostError('the lease was taken over or expired; stopped before the next batch', { policy: this.lease.policy, token: this.lease.token });
    }
  }

  private async renew(): Promise<boolean> {
    if (this.lost) return false;
    const renewed = await this.control.renewLease(this.lease, this.ttlMs);
    if (renewed) this.lease = renewed;
    else this.lost = true;
    return renewed !== null;
  }

  async release(): Promise<void> {
    clearInterval(this.heartbeat);
    if (!this.lost) await this.control.releaseLease(this.lease);
  }
}
