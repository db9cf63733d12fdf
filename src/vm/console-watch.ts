/**
 * The guest's serial console as lines, watched for the kernel's fatal reports.
 * QEMU hands the console over in chunks of any size (often a few bytes on a
 * fast host), so a report is only recognised once its line is whole.
 */
import { LineSplitter } from '../guest/protocol.js';

const FATAL_LINE = /(BUG: |Oops: |general protection fault|Kernel panic - not syncing|kernel BUG at)/;
/** The kernel saying a CPU or task is stuck: the job will not finish. */
const LOCKUP_LINE = /(watchdog: BUG: soft lockup|rcu: INFO: rcu_\w+ (?:self-)?detected stall|INFO: task .* blocked for more than)/;

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
