/**
 * The result model every renderer reads: for each strategy and check, what
 * happened, what the lab expected, and why. JSON output is this model, versioned.
 */
import type { Diagnostic } from '../build/diagnostics.js';
import type { CheckName, MapMode } from '../guest/checks.js';
import type { KernelLine, KernelProblem } from '../parse/kmsg.js';
import type { CheckItem } from '../diagnose/verdicts.js';

/**
 * 1: RunReport and CheckReport. 2: adds the matrix document (kind 'matrix',
 * one entry per kernel) written for several --kernel values and by `merge`.
 */
export const SCHEMA_VERSION = 2;

/** What userspace saw in one check. */
export type Outcome =
  /** pattern: the 32-bit word every page started with, as the check expected it. */
  | { kind: 'ok'; pagesOk: number; pages: number; pattern?: string }
  | { kind: 'wrong-data'; pagesOk: number; pages: number; firstBad: { page: number; word: string; index: number; expectIndex: number | null } }
  | { kind: 'sigbus'; page: number | null; addr: string; code: string; pagesOk: number }
  | { kind: 'sigsegv'; page: number | null; addr: string; code: string; pagesOk: number }
  | { kind: 'mmap-failed'; errno: string; message: string; page: number }
  | { kind: 'open-failed'; errno: string; message: string }
  /** A write through MAP_SHARED that read() did not see. */
  | { kind: 'write-lost'; seen: string }
  /** A write into MAP_PRIVATE that reached the driver or a shared mapping. */
  | { kind: 'write-leaked'; via: 'read' | 'shared' }
  | { kind: 'mprotect-denied'; errno: string; message: string }
  /** Killed by a signal the test program did not catch (e.g. the oops killed it). */
  | { kind: 'killed'; signal: string; status: number }
  /** The kernel oopsed or panicked while this check ran. */
  | { kind: 'crash'; title: string }
  /** An SSH target stopped answering while this check ran (crashed, hung, rebooted or left the network). */
  | { kind: 'lost'; reason: string }
  /** No progress until the deadline; evidence is a lockup report when the kernel printed one. */
  | { kind: 'hang'; step: string; evidence?: string }
  | { kind: 'not-run'; reason: string }
  /** The check cannot judge this driver (e.g. it offers no read() to read a write back); neither pass nor fail. */
  | { kind: 'skipped'; reason: string };

export type OutcomeKind = Outcome['kind'];

/** What the lab expects of a strategy in a check: an outcome kind, and where it matters, the page or errno. */
export interface Expected {
  kind: OutcomeKind;
  page?: number;
  errno?: string;
}

export interface PageReport {
  page: number;
  addr: string;
  word: string;
  index: number;
  /** null when the driver's pages carry no index. */
  expectIndex: number | null;
  /** The page frame behind the address, when the test could read it (null: unknown). */
  pfn?: string | null;
  ok: boolean;
}

/** A traced kernel call made while a check ran, e.g. remap_pfn_range() returning -22. */
export interface TracedCalls {
  fn: string;
  /** Who called it, e.g. "seed_mmap+0x55/0x90 [mmaplab]". */
  caller: string;
  calls: number;
  /** Return value -> how many times. */
  returns: Record<string, number>;
  /** remap_pfn_range() only: the sizes (bytes) the driver asked to map. */
  sizes?: number[];
}

export interface Explanation {
  /** Stable key: one explanation per distinct failure in a report. */
  id: string;
  /** One line: what happened, in the kernel's terms. */
  summary: string;
  /** The chain of reasons, each a sentence. */
  why: string[];
  fixes: string[];
}

export interface CheckResult {
  strategy: string;
  check: CheckName;
  /** The mapping mode the check uses. */
  mode: MapMode;
  outcome: Outcome;
  pagesOk: number;
  pages: number;
  expected: Expected;
  matchesExpected: boolean;
  /** The raw exit status as a shell saw it (135 = killed by SIGBUS), or null if it never exited. */
  exitStatus: number | null;
  /** e.g. "Bus error (exit status 135, SIGBUS)", as the seed's user saw it. */
  exitDescription: string;
  pageReports: PageReport[];
  /** What the question's printf("[%x]", ((char *)m)[0]) printed, when page 0 was readable. */
  seedPrintf: string | undefined;
  /** The kernel's mapping calls while this check ran (empty when tracing is unavailable). */
  traced: TracedCalls[];
  /** check's distinct-pages test by writing, when page frames were not available: [page, the page it shows]. */
  aliases?: { tested: boolean; pairs: Array<[number, number]>; why?: string };
  /** The driver's kernel log lines while this check ran. */
  kernelLog: KernelLine[];
  explanation: Explanation | undefined;
}

export interface StepResult {
  ok: boolean;
  status: number;
  output: string;
}

export interface StrategyRun {
  strategy: string;
  insmod: StepResult | undefined;
  rmmod: StepResult | undefined;
  /** Which boot of the run served this strategy (a crash moves the rest to a fresh boot). */
  boot: number;
  tracing: boolean;
  /**
   * How the job ended: done, or the guest crashed/hung/stalled; on an SSH
   * target, connection-lost (the machine went down or off the network).
   */
  end: 'done' | 'guest-died' | 'timeout' | 'stalled' | 'connection-lost';
  problems: KernelProblem[];
}

/** A QEMU guest on a Debian kernel (reports before SSH targets carry no kind). */
export interface GuestMachine {
  kind?: 'guest';
  accel: 'kvm' | 'tcg';
  accelReason: string;
  qemu: string;
  boots: number;
  bootAttempts: number;
  /** What the first guest booted: the uncompressed vmlinux through PVH (faster), or the packaged bzImage. */
  bootImage?: 'pvh' | 'bzimage';
  /** QEMU's machine: microvm (faster) or pc (where microvm does not boot the kernel). */
  machineType?: 'pc' | 'microvm';
  /** Whether jobs ran in guests restored from a snapshot; absent in reports from before snapshots. */
  snapshot?: SnapshotUse;
}

/**
 * off: every guest booted (--no-snapshot, mmaplab shell). restored: the cached
 * snapshot served every job. made: this run booted once to make it (why: there
 * was none, or it was stale or damaged), then restored it. failed: it could not
 * be made or did not restore; the jobs ran in booted guests.
 */
export type SnapshotUse =
  | { use: 'off'; reason: string }
  | { use: 'restored'; key: string; restores: number; restoreMs: number }
  | { use: 'made'; key: string; restores: number; restoreMs: number; bootMs: number; why: 'missing' | 'stale' | 'corrupt' }
  | { use: 'failed'; reason: string; restores: number; restoreMs: number };

/** A real machine reached over SSH (--target), running its own kernel. */
export interface TargetMachine {
  kind: 'ssh';
  /** ssh://user@host:port */
  target: string;
  /** The host key it was verified with: SHA256:... */
  hostKey: string;
  os: string;
  arch: string;
  /** /proc/sys/kernel/random/boot_id: which boot of the machine ran the lab. */
  bootId: string;
  /** What mmaplab could not undo there (empty: nothing left behind). */
  leftBehind: string[];
}

export interface RunReport {
  schemaVersion: typeof SCHEMA_VERSION;
  tool: { name: 'mmaplab'; version: string };
  command: 'run';
  status: 'pass' | 'fail';
  exitCode: 0 | 1;
  kernel: { spec: string; release: string; packageVersion: string; flavour: string };
  machine: GuestMachine | TargetMachine;
  module: { name: string; compiler: string; buildCached: boolean; buildWarnings: Diagnostic[] };
  strategies: StrategyRun[];
  checks: CheckName[];
  /** The grid: one cell per strategy and check, strategies in order, checks in order. */
  results: CheckResult[];
  kernelLog: { lines: KernelLine[]; problems: KernelProblem[] };
  notes: string[];
  /** The end of the console when a job did not finish (crash, hang): what the user needs first. */
  consoleTail: string[];
  artifacts: { dir: string; consoleLog: string; resultsJson: string; module: string; testProgram: string };
  /**
   * bootMs: wall time from QEMU's start to the first guest's ready. guestReadyMs: the
   * guest's uptime then, by its own clock (under TCG not comparable with wall time).
   */
  timings: { totalMs: number; kernelMs: number; buildMs: number; bootMs: number; guestReadyMs: number; jobMs: number };
}

/** One place decides the exit code: 0 when every outcome is as expected and the kernel logged no problem. */
export function runStatus(results: readonly CheckResult[], problems: readonly KernelProblem[]): { status: 'pass' | 'fail'; exitCode: 0 | 1 } {
  const pass = results.length > 0 && results.every((r) => r.matchesExpected) && problems.length === 0;
  return pass ? { status: 'pass', exitCode: 0 } : { status: 'fail', exitCode: 1 };
}

/** `mmaplab check`'s report: the named checks, and the mapping checks as grid cells. */
export interface CheckReport {
  schemaVersion: typeof SCHEMA_VERSION;
  tool: { name: 'mmaplab'; version: string };
  command: 'check';
  status: 'pass' | 'fail';
  exitCode: 0 | 1;
  driver: { source: string; module: string | undefined; compiler: string | undefined; buildWarnings: Diagnostic[] };
  kernel: RunReport['kernel'];
  machine: RunReport['machine'] | undefined;
  items: CheckItem[];
  /** The mapping checks as the grid's cells (strategy "custom"). */
  results: CheckResult[];
  kernelLog: { lines: KernelLine[]; problems: KernelProblem[] };
  notes: string[];
  consoleTail: string[];
  artifacts: { dir: string; consoleLog: string | undefined; resultsJson: string; module: string | undefined };
}
