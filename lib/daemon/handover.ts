import type { ControlStore, Lease } from '../core/control.ts';

/**
 * The control store a scheduled run gets: the same store, except that the run's request for the
 * policy's lease is answered with the lease the daemon already holds (renewed, so it is fresh and
 * still ours). The daemon takes the lease before the run to decide, while no one else can start
 * a run of the policy, whether this tick's run already happened (scheduler.ts); the engine then
 * fences, renews and releases it as its own. Renewal refuses a lost lease or a paused policy:
 * the engine is then answered null, as when someone else holds the lease, and the lease stays
 * the daemon's to release. `onHandover` is told once the engine holds it.
 */
export function handingOver(control: ControlStore, lease: Lease, onHandover: () => void): ControlStore {
  let asked = false;
  const acquireLease: ControlStore['acquireLease'] = async (policy, owner, ttlMs) => {
    if (asked || policy !== lease.policy) return control.acquireLease(policy, owner, ttlMs);
    asked = true;
    const renewed = await control.renewLease(lease, ttlMs);
    if (renewed) onHandover();
    return renewed;
  };
  return new Proxy(control, {
    get(target, property) {
      if (property === 'acquireLease') return acquireLease;
      const value: unknown = Reflect.get(target, property, target);
      // Methods run on the real store (its private fields), not on the proxy.
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
