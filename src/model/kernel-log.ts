/** The kernel log as data: printk lines and the problem reports found in them (parsed by parse/kmsg). */

export interface KernelLine {
  /** Seconds since boot, when the line carries a printk timestamp. */
  time: number | undefined;
  text: string;
}

export type ProblemKind = 'oops' | 'bug' | 'warning' | 'gpf' | 'panic' | 'soft-lockup' | 'bad-page' | 'hung-task' | 'rcu-stall';

export interface StackFrame {
  fn: string;
  offset: string | undefined;
  module: string | undefined;
  /** "? fn" frames are guesses the unwinder found on the stack. */
  reliable: boolean;
  /** file:line in the module's source, when the built module could resolve it. */
  source?: string;
}

export interface KernelProblem {
  kind: ProblemKind;
  title: string;
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
  /** Index of the first line of the report in the lines it was parsed from. */
  line: number;
  /** Index just past the report's last line (its "end trace" marker when it has one). */
  endLine: number;
}
