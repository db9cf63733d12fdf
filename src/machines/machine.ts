/**
 * Where jobs run, as peers behind one interface: guests booted as needed,
 * guests restored from the kernel's snapshot, and a real machine over SSH.
 * `run`, `check` and `shell` talk to a Machine and never ask which kind it is:
 * what they used to learn by `instanceof` (the report's machine description,
 * the console logs, the shell) is asked of the machine itself.
 */
import type { LabJob } from '../guest/job.js';
import type { GuestRecord } from '../guest/protocol.js';
import type { Flood, StrategyRun } from '../model/outcome.js';
import type { GuestMachine, TargetMachine } from '../model/report.js';
import type { JobPhases, JobTiming } from '../model/timing.js';

export interface HostedJob {
  end: StrategyRun['end'];
  records: GuestRecord[];
  /** The kernel log the job's machine printed (a guest's console, a target's followed log). */
  console: string;
  /** Which boot served it (a target: always 1). */
  boot: number;
  /** end 'flooded': how much the guest printed before it was stopped. */
  flood?: Flood;
  /** Where its time went (a guest: which one, its restore, the job's phases; a target: the phases). */
  timing?: HostedTiming;
}

export interface HostedTiming {
  guest: number;
  servedBefore: number;
  restoreMs: number;
  phases: JobPhases;
}

/** The user's terminal, handed to a shell on the machine (mmaplab shell). */
export interface ShellSession {
  input: NodeJS.ReadableStream;
  output: (text: string) => void;
  /** Resolves when the user wants out without the shell's exit (the escape key). */
  detach?: Promise<void> | undefined;
  /** The user's terminal size, for a pseudo-terminal on a target. */
  terminal?: { rows: number; cols: number } | undefined;
  /** The loaded driver, for the banner. */
  moduleName: string;
}

export interface Machine {
  /** How many jobs may be sent at once (restored guests queue them for their lanes: any number). */
  readonly parallel: number;
  /** Start getting ready for the first job while the driver builds (a restored guest restores one ahead). */
  prepare(): void;
  runJob(job: LabJob): Promise<HostedJob>;
  /** A shell where the last job left the driver loaded. */
  interact(session: ShellSession): Promise<void>;
  /** What the report says ran the jobs; after close() it includes what a target kept. */
  describe(): GuestMachine | TargetMachine;
  /** The kernel logs kept in the run directory, console.log first (empty before the first guest). */
  consoleLogs(): string[];
  /** Wall time to the first guest that took a job (a boot or a restore) and its own uptime then. */
  firstReady(): { bootMs: number; guestReadyMs: number };
  /** The port of QEMU's gdb stub on 127.0.0.1, where the guest was booted for debugging (none elsewhere). */
  gdbStub(): number | undefined;
  /** Power off or clean up; what could not be undone (a target's leftovers). */
  close(): Promise<string[]>;
  /** Interrupted (Ctrl-C): stop at once, keeping every log in its place. */
  abort(): Promise<void>;
}

export type { Phase } from '../model/progress.js';

/** A hosted job's timing as the report gives it. */
export function jobTiming(job: number, label: string, t: HostedTiming): JobTiming {
  return { job, label, guest: t.guest, servedBefore: t.servedBefore, restoreMs: t.restoreMs, ...t.phases };
}
