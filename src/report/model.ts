/**
 * The result model every renderer reads: what happened in each mode, what the
 * lab expected, and why. JSON output is this model, versioned.
 */
import type { Diagnostic } from '../build/diagnostics.js';
import type { MapMode } from '../guest/protocol.js';
import type { KernelLine, KernelProblem } from '../parse/kmsg.js';

export const SCHEMA_VERSION = 1;

/** What userspace saw in one mode. */
export type Outcome =
  | { kind: 'ok'; pagesOk: number; pages: number }
  | { kind: 'wrong-data'; pagesOk: number; pages: number; firstBad: { page: number; word: string; index: number } }
  | { kind: 'sigbus'; page: number | null; addr: string; code: string; pagesOk: number }
  | { kind: 'sigsegv'; page: number | null; addr: string; code: string; pagesOk: number }
  | { kind: 'mmap-failed'; errno: string; message: string }
  | { kind: 'open-failed'; errno: string; message: string }
  /** Killed by a signal the test program did not catch (e.g. the oops killed it). */
  | { kind: 'killed'; signal: string; status: number }
  /** The kernel oopsed or panicked while this mode ran. */
  | { kind: 'crash'; title: string }
  /** No progress until the deadline; evidence is a lockup report when the kernel printed one. */
  | { kind: 'hang'; step: string; evidence?: string }
  | { kind: 'not-run'; reason: string };

export type OutcomeKind = Outcome['kind'];

/** What the lab expects of a strategy in a mode: an outcome kind, and for faults, the page. */
export interface Expected {
  kind: OutcomeKind;
  page?: number;
}

export interface PageReport {
  page: number;
  addr: string;
  word: string;
  index: number;
  ok: boolean;
}

export interface Explanation {
  /** One line: what happened, in the kernel's terms. */
  summary: string;
  /** The chain of reasons, each a sentence. */
  why: string[];
  fixes: string[];
}

export interface ModeResult {
  strategy: string;
  mode: MapMode;
  outcome: Outcome;
  pagesOk: number;
  pages: number;
  expected: Expected;
  matchesExpected: boolean;
  /** The raw exit status as a shell saw it (135 = killed by SIGBUS), or null if it never exited. */
  exitStatus: number | null;
  /** e.g. "Bus error (signal 7)", as the seed's user saw it. */
  exitDescription: string;
  pageReports: PageReport[];
  /** What the question's printf("[%x]", ((char *)m)[0]) printed, when page 0 was readable. */
  seedPrintf: string | undefined;
  /** The driver's kernel log lines while this mode ran. */
  kernelLog: KernelLine[];
  explanation: Explanation | undefined;
}

export interface StepResult {
  ok: boolean;
  status: number;
  output: string;
}

export interface RunReport {
  schemaVersion: typeof SCHEMA_VERSION;
  tool: { name: 'mmaplab'; version: string };
  command: 'run';
  status: 'pass' | 'fail';
  exitCode: 0 | 1;
  kernel: { spec: string; release: string; packageVersion: string; flavour: string };
  machine: { accel: 'kvm' | 'tcg'; accelReason: string; qemu: string; bootAttempts: number };
  module: {
    name: string;
    strategy: string;
    compiler: string;
    buildCached: boolean;
    buildWarnings: Diagnostic[];
    insmod: StepResult | undefined;
    rmmod: StepResult | undefined;
  };
  results: ModeResult[];
  kernelLog: { lines: KernelLine[]; problems: KernelProblem[] };
  notes: string[];
  /** The end of the console when the job did not finish (crash, hang): what the user needs first. */
  consoleTail: string[];
  artifacts: { dir: string; consoleLog: string; resultsJson: string; module: string; testProgram: string };
  /** bootMs is host wall time to the guest's ready; guestReadyMs the guest's own uptime then. */
  timings: { totalMs: number; kernelMs: number; buildMs: number; bootMs: number; guestReadyMs: number; jobMs: number };
}

/** One place decides the exit code: 0 when every outcome is as expected, else 1. */
export function runStatus(results: readonly ModeResult[], problems: readonly KernelProblem[]): { status: 'pass' | 'fail'; exitCode: 0 | 1 } {
  const unexpectedProblem = problems.length > 0;
  const pass = results.length > 0 && results.every((r) => r.matchesExpected) && !unexpectedProblem;
  return pass ? { status: 'pass', exitCode: 0 } : { status: 'fail', exitCode: 1 };
}
