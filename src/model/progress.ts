/**
 * What a command says as it goes: a phase, a line of text, and, where it
 * helps a person watching, which concurrent part of the work it is about and
 * how many bytes of a download have come. The CLI renders it as plain lines
 * or as a live status area; the commands never know which.
 */

/** Where a command is. */
export type Phase = 'fetch' | 'connect' | 'build' | 'accel' | 'boot' | 'snapshot' | 'restore' | 'job' | 'report';

export interface ProgressDetail {
  /** A part of the work that runs beside others (a job's strategy): its own line on a terminal. */
  lane?: string;
  /** A download under way: bytes so far, of the total. */
  bytes?: ByteCount;
  /** The lane's work has ended. */
  finished?: boolean;
}

export type Progress = (phase: Phase, message: string, detail?: ProgressDetail) => void;

export interface ByteCount {
  done: number;
  total: number;
}
