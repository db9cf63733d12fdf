/**
 * Whether a guest is as it was before a job, so it may serve the next one: the
 * job ended and its script finished, the kernel reported nothing (no oops, BUG,
 * WARNING, lockup or panic), the driver is unloaded, no module, character
 * device, device class, misc device, /proc entry or vmalloc area of the
 * driver's is left, no page was freed still reserved, no taint but O and E was
 * added since the guest's first job, and no check had to be killed. What
 * happens between two jobs (a timer the driver left firing) is the machine's
 * to see on the console before it hands the guest on.
 * The facts come from vm/job.sh (STATE=1); this is the one place they are judged.
 */
import type { GuestRecord } from '../guest/protocol.js';
import type { CheckName } from '../model/checks.js';
import type { StrategyRun } from '../model/outcome.js';
import { findProblems } from './kmsg.js';
import { leakedAreas, observeJob } from './job-records.js';

export type GuestAfterJob = { kind: 'as-it-was' } | { kind: 'changed'; why: string };

/** Out-of-tree (O) and unsigned (E) modules: every lab driver taints the kernel so, harmlessly. */
const HARMLESS_TAINT = (1 << 12) | (1 << 13);

/** A check the test program killed at its deadline (timeout's status). */
const KILLED_AT_DEADLINE = 124;

const changed = (why: string): GuestAfterJob => ({ kind: 'changed', why });

function added(before: readonly string[], after: readonly string[]): string[] {
  const had = new Set(before);
  return after.filter((x) => !had.has(x));
}

/**
 * baseline: the taint of the guest before its first job (a WARNING between two
 * jobs taints the kernel too, and the next job's own "before" would hide it).
 */
export function guestAfterJob(end: StrategyRun['end'], records: readonly GuestRecord[], moduleName: string, checks: readonly CheckName[], baseline?: { tainted: number }): GuestAfterJob {
  if (end !== 'done') return changed(`the job ended ${end}`);
  const obs = observeJob(records, checks);
  if (!obs.complete) return changed('the job script did not reach its end');
  const problem = findProblems(obs.kmsg)[0];
  if (problem) return changed(`the kernel reported ${problem.title}`);
  if (obs.steps.insmod?.ok && !obs.steps.rmmod?.ok) return changed('the driver is still loaded (rmmod did not succeed)');
  const { before, after } = obs.guestState;
  if (!before || !after) return changed('the job did not report the guest\'s state');
  const modules = added(before.modules, after.modules);
  if (modules.length) return changed(`modules left loaded: ${modules.join(', ')}`);
  for (const [what, key] of [['character devices', 'chrdevs'], ['device classes', 'classes'], ['misc devices', 'misc'], ['/proc entries', 'proc']] as const) {
    const left = added(before[key], after[key]);
    if (left.length) return changed(`${what} left registered: ${left.join(', ')}`);
  }
  const taint = after.tainted & ~(baseline?.tainted ?? before.tainted) & ~HARMLESS_TAINT;
  if (taint) return changed(`the kernel's taint grew (mask ${after.tainted})`);
  const areas = leakedAreas(obs.vmallocNew, moduleName);
  if (areas.length) return changed(`${areas.length} vmalloc area(s) of the driver's left after rmmod`);
  if (obs.reservedFreed) return changed(`${obs.reservedFreed} page(s) freed while still marked reserved`);
  const killed = obs.checks.find((c) => c.exitStatus === KILLED_AT_DEADLINE);
  if (killed) return changed(`check ${killed.check} was killed at its deadline (its task may still be in the driver)`);
  return { kind: 'as-it-was' };
}
