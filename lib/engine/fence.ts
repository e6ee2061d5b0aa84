import type { ControlStore, Lease } from '../control/types.ts';
import { LeaseLostError } from '../errors.ts';

/** The lease, renewed in the background and checked (fencing) before every batch. */
export class Fence {
  private lost = false;
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

  /** Throws LeaseLostError unless we still hold the lease; extends it on success. */
  async check(): Promise<void> {
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
