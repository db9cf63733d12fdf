/**
 * The machines alive in this process, so an interrupted CLI can stop them all
 * without knowing their kinds: every guest is killed (none may start after),
 * every target cleaned up, and each machine keeps its logs where they belong.
 */
import { RemoteLab } from '../ssh/remote-lab.js';
import { GuestVm } from '../vm/guest-vm.js';
import type { Machine } from './machine.js';

const live = new Set<Machine>();

export function track(m: Machine): void {
  live.add(m);
}

export function untrack(m: Machine): void {
  live.delete(m);
}

export async function abortAll(): Promise<void> {
  // Guests outside a machine too (a KVM probe, the boot that makes a snapshot).
  await Promise.all([GuestVm.killAll(), RemoteLab.cleanupAll()]);
  await Promise.all([...live].map((m) => m.abort().catch(() => undefined)));
}
