/**
 * The guest's serial console as lines, watched for the kernel's fatal reports.
 * QEMU hands the console over in chunks of any size (often a few bytes on a
 * fast host), so a report is only recognised once its line is whole; what
 * counts as one is parse/kmsg's, the same as the report's.
 */
import { LineSplitter } from '../guest/protocol.js';
import type { ProblemKind } from '../model/kernel-log.js';
import { parseKernelLine, problemKindOf } from '../parse/kmsg.js';

/** Reports after which the task that met them is dead or stuck; warnings and the BUG: lines the kernel survives are not. */
const NOT_FATAL: ReadonlySet<ProblemKind> = new Set(['warning', 'hung-task', 'rcu-stall', 'oom']);

function isFatalLine(line: string): boolean {
  const kind = problemKindOf(parseKernelLine(line).text);
  return kind !== undefined && !NOT_FATAL.has(kind);
}
/**
 * The kernel saying the job's own task is stuck: a soft lockup or a hung task
 * naming insmod, rmmod or the test program (a report about some other task,
 * or a stall that names none, is not the job's, and does not stop it).
 */
const LOCKUP_LINE = /(watchdog: BUG: soft lockup - CPU#\d+ stuck for \d+s! \[(?:insmod|rmmod|modprobe|mmap-test):\d+\]|INFO: task (?:insmod|rmmod|modprobe|mmap-test):\d+ blocked for more than|Watchdog detected hard LOCKUP)/;

export class ConsoleWatch {
  private readonly splitter = new LineSplitter();
  /** Whole lines seen since the last reset. */
  lines = 0;
  /** Whether a fatal report's line has been seen since the last reset. */
  fatal = false;
  /** Whether a lockup report's line has been seen since the last reset. */
  lockup = false;

  /** The whole lines this chunk completes, without their carriage returns. */
  push(chunk: string): string[] {
    const done = this.splitter.push(chunk).map((l) => l.replace(/\r$/, ''));
    this.lines += done.length;
    if (!this.fatal && done.some(isFatalLine)) this.fatal = true;
    if (!this.lockup && done.some((l) => LOCKUP_LINE.test(l))) this.lockup = true;
    return done;
  }

  reset(): void {
    this.lines = 0;
    this.fatal = false;
    this.lockup = false;
  }
}
