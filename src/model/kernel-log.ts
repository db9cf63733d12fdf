/** The kernel log as data: printk lines and the problem reports found in them (parsed by parse/kmsg). */

export interface KernelLine {
  /** Seconds since boot, when the line carries a printk timestamp. */
  time: number | undefined;
  text: string;
}

/** oom: the kernel ran out of memory and its OOM killer ran ("X invoked oom-killer"), with the allocating call trace. */
export type ProblemKind = 'oops' | 'bug' | 'warning' | 'gpf' | 'panic' | 'soft-lockup' | 'bad-page' | 'hung-task' | 'rcu-stall' | 'oom';

/** After these the task that met them is dead, or the kernel is. */
export const FATAL_KINDS: ReadonlySet<ProblemKind> = new Set(['oops', 'bug', 'gpf', 'panic']);
/** The kernel noticing a CPU or task stuck: a hang, not a crash. */
export const LOCKUP_KINDS: ReadonlySet<ProblemKind> = new Set(['soft-lockup', 'hung-task', 'rcu-stall']);

export interface StackFrame {
  fn: string;
  offset: string | undefined;
  module: string | undefined;
  /** "? fn" frames are guesses the unwinder found on the stack. */
  reliable: boolean;
  /** file:line in the module's source, when the built module could resolve it. */
  source?: string;
}

export interface Culprit {
  fn: string;
  /** file:line in the driver's source, when resolved. */
  source?: string;
  how: 'rip' | 'trace' | 'call-site';
  /** call-site: the kernel function the driver called there (its frame was not in the trace). */
  callee?: string;
  /** Where the driver's inlined helper holding `source` was called from, innermost first. */
  calledFrom?: string[];
  /** That line of the driver's source, trimmed, for the report to quote. */
  code?: string;
}

/** "my_init+0x44 (vmmap.c:57)", or the kernel's own words where the driver was not found. */
export function problemPlace(p: KernelProblem): string | undefined {
  const c = p.culprit;
  if (c?.how === 'call-site') return `${c.callee ?? '?'}() called from ${c.fn}${c.source ? ` (${c.source})` : ''}`;
  if (c) return c.source ? `${c.fn} (${c.source}${c.calledFrom?.length ? `, called at ${c.calledFrom.join(', then ')}` : ''})` : c.fn;
  const where = p.locationSource ?? p.source;
  if (p.location) return where ? `${p.location} (${where})` : p.location;
  return where;
}

export interface KernelProblem {
  kind: ProblemKind;
  title: string;
  /** What a WARN() said before its WARNING line, e.g. "Trying to vfree() nonexistent vm area (...)". */
  message?: string;
  time: number | undefined;
  /** Where the fault happened, from the RIP line, e.g. "seed_mmap+0x1a/0x80". */
  location: string | undefined;
  /** The module the RIP was in, e.g. "mmaplab". */
  locationModule?: string;
  /** file:line of the RIP in the module's source, when the built module could resolve it. */
  locationSource?: string;
  /** The source line the kernel named, for WARNING and "kernel BUG at", e.g. "drivers/x.c:15". */
  source: string | undefined;
  modules: string[];
  callTrace: StackFrame[];
  /** The step the guest was in when the kernel reported it: insmod, rmmod, "the private check", boot. */
  during?: string;
  /**
   * Where in the driver it happened: the faulting instruction when it is the
   * driver's, else the driver's nearest frame in the call trace, else (the
   * driver's frame lost to a tail call) the driver's own call of the function
   * that complained. Set once the built module could be read.
   */
  culprit?: Culprit;
  /** Index of the first line of the report in the lines it was parsed from. */
  line: number;
  /** Index just past the report's last line (its "end trace" marker when it has one). */
  endLine: number;
}
