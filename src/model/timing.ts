/**
 * Where one job's time went, as the host saw it: each phase ends when the
 * record that closes it arrives (records come over the channel as the guest
 * writes them), so measuring costs the guest nothing.
 */
export interface JobPhases {
  /** From sending the job to its first record: unpacking it, starting the script, arming the tracing. */
  startMs: number;
  /** insmod, from the record before it to its own. */
  insmodMs?: number;
  /** From insmod's record to the last check's exit: finding the device and every check. */
  checksMs?: number;
  /** rmmod, and the watch on the pages it frees. */
  rmmodMs?: number;
  /** From rmmod's record to the job's end: what the job reads afterwards (the kernel log, the guest's state). */
  endMs?: number;
  /** From sending the job to its end. */
  totalMs: number;
}

/** One job's timings in a report. */
export interface JobTiming extends JobPhases {
  job: number;
  /** The strategy (run) or the pass's first check (check). */
  label: string;
  /** Which guest served it (1, 2, ... in the order they came up) and how many jobs that guest served before it. */
  guest: number;
  servedBefore: number;
  /** Restoring (or booting) the guest for this job; 0 when a guest that served an earlier job took it. */
  restoreMs: number;
}
