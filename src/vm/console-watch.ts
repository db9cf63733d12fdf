/**
 * The guest's serial console as lines, watched for the kernel's fatal reports.
 * QEMU hands the console over in chunks of any size (often a few bytes on a
 * fast host), so a report is only recognised once its line is whole.
 */
import { LineSplitter } from '../guest/protocol.js';

/** A report after which the task that caused it is dead or stuck (not the BUG: lines the kernel survives). */
const FATAL_LINE = /(BUG: (?!scheduling while atomic|sleeping function called|Bad rss-counter|workqueue lockup|using smp_processor_id)|Oops: |general protection fault|Kernel panic - not syncing|kernel BUG at)/;
/**
 * The kernel saying the job's own task is stuck: a soft lockup or a hung task
 * naming insmod, rmmod or the test program (a report about some other task,
 * or a stall that names none, is not the job's, and does not stop it).
 */
const LOCKUP_LINE = /(watchdog: BUG: soft lockup - CPU#\d+ stuck for \d+s! \[(?:insmod|rmmod|modprobe|mmap-test):\d+\]|INFO: task (?:insmod|rmmod|modprobe|mmap-test):\d+ blocked for more than|Watchdog detected hard LOCKUP)/;

export class ConsoleWatch {
  private readonly lines = new LineSplitter();
  /** Whether a fatal report's line has been seen since the last reset. */
  fatal = false;
  /** Whether a lockup report's line has been seen since the last reset. */
  lockup = false;

  /** The whole lines this chunk completes, without their carriage returns. */
  push(chunk: string): string[] {
    const done = this.lines.push(chunk).map((l) => l.replace(/\r$/, ''));
    if (!this.fatal && done.some((l) => FATAL_LINE.test(l))) this.fatal = true;
    if (!this.lockup && done.some((l) => LOCKUP_LINE.test(l))) this.lockup = true;
    return done;
  }

  reset(): void {
    this.fatal = false;
    this.lockup = false;
  }
}
