/**
 * The guest's serial console as lines, watched for the kernel's fatal reports.
 * QEMU hands the console over in chunks of any size (often a few bytes on a
 * fast host), so a report is only recognised once its line is whole.
 */
import { LineSplitter } from '../guest/protocol.js';

const FATAL_LINE = /(BUG: |Oops: |general protection fault|Kernel panic - not syncing|kernel BUG at)/;

export class ConsoleWatch {
  private readonly lines = new LineSplitter();
  /** Whether a fatal report's line has been seen since the last reset. */
  fatal = false;

  /** The whole lines this chunk completes, without their carriage returns. */
  push(chunk: string): string[] {
    const done = this.lines.push(chunk).map((l) => l.replace(/\r$/, ''));
    if (!this.fatal && done.some((l) => FATAL_LINE.test(l))) this.fatal = true;
    return done;
  }

  reset(): void {
    this.fatal = false;
  }
}
