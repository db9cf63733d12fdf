/**
 * The documents mmaplab writes (results.json, --json): a run's report, a
 * check's report and the matrix of several kernels, with the machine that ran
 * them. JSON output is this model, versioned; every renderer reads it.
 */
import type { ErrorKind, SourceLocation } from '../util/errors.js';
import type { ApiChange, BuildMistake, Diagnostic } from './diagnostic.js';
import type { CheckName } from './checks.js';
import type { KernelLine, KernelProblem } from './kernel-log.js';
import type { PatternChoice } from './pattern.js';
import type { BuildIsolation } from './isolation.js';
import type { CheckResult, StrategyRun } from './outcome.js';
import type { JobTiming } from './timing.js';

/**
 * 1: RunReport and CheckReport. 2: adds the matrix document (kind 'matrix',
 * one entry per kernel) written for several --kernel values and by `merge`.
 */
export const SCHEMA_VERSION = 2;

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
  /** QEMU's machine: microvm (faster) or pc (where microvm does not boot the kernel) on x86, virt on arm64. */
  machineType?: 'pc' | 'microvm' | 'virt';
  /** Whether jobs ran in guests restored from a snapshot; absent in reports from before snapshots. */
  snapshot?: SnapshotUse;
}

/**
 * off: every guest booted (--no-snapshot, mmaplab shell). restored: the cached
 * snapshot served every job. made: this run booted once to make it (why: there
 * was none, or it was stale or damaged), then restored it. failed: it could not
 * be made or did not restore; the jobs ran in booted guests.
 */
/** restores: guests restored; jobs: the jobs they served (absent in reports from before guests served several). */
export type SnapshotUse =
  | { use: 'off'; reason: string }
  | { use: 'restored'; key: string; restores: number; restoreMs: number; jobs?: number }
  | { use: 'made'; key: string; restores: number; restoreMs: number; jobs?: number; bootMs: number; why: 'missing' | 'stale' | 'corrupt' }
  | { use: 'failed'; reason: string; restores: number; restoreMs: number; jobs?: number };

/** A real machine reached over SSH (--target), running its own kernel. */
export interface TargetMachine {
  kind: 'ssh';
  /** --target as given when ssh_config resolved it (ssh://labbox), else ssh://user@host:port. */
  target: string;
  /** Where ssh_config sent it, when that differs from target: ssh://user@host:port. */
  address?: string;
  /** The ProxyJump hosts it went through, first first: ssh://user@host:port each. */
  via?: string[];
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
  /** arch: the machine's (Debian's name: amd64, i386, arm64; an SSH target's uname -m where mmaplab knows none); absent in results of mmaplab before 0.1 knew only amd64. */
  kernel: { spec: string; release: string; packageVersion: string; flavour: string; arch?: string };
  machine: GuestMachine | TargetMachine;
  module: { name: string; compiler: string; buildCached: boolean; buildWarnings: Diagnostic[]; isolation?: BuildIsolation };
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
  timings: { totalMs: number; kernelMs: number; buildMs: number; bootMs: number; guestReadyMs: number; jobMs: number; jobs?: JobTiming[] };
}

/** `mmaplab check`'s report: the named checks, and the mapping checks as grid cells. */
export interface CheckReport {
  schemaVersion: typeof SCHEMA_VERSION;
  tool: { name: 'mmaplab'; version: string };
  command: 'check';
  status: 'pass' | 'fail';
  exitCode: 0 | 1;
  /**
   * isolation: how the driver's build was confined (absent in reports from before sandboxed builds);
   * replayed: the one file whose change was rebuilt by replaying Kbuild's recorded commands, not by make (check --watch).
   */
  driver: { source: string; module: string | undefined; compiler: string | undefined; buildWarnings: Diagnostic[]; isolation?: BuildIsolation; replayed?: string };
  kernel: RunReport['kernel'];
  machine: RunReport['machine'] | undefined;
  items: CheckItem[];
  /** The bytes every page had to start with, and what said so. */
  pattern: PatternChoice;
  /** The mapping checks as the grid's cells (strategy "custom"). */
  results: CheckResult[];
  kernelLog: { lines: KernelLine[]; problems: KernelProblem[] };
  notes: string[];
  consoleTail: string[];
  artifacts: { dir: string; consoleLog: string | undefined; resultsJson: string; module: string | undefined };
  /** Absent in reports from before check timed itself. */
  timings?: { totalMs: number; kernelMs: number; buildMs: number; jobs: JobTiming[] };
  /** The lab's own test program (a driver in the lab's layout, with its test/ folder), run as the lab runs it; absent for a driver without one. */
  labTest?: LabTestReport;
}

/** The lab's own test program beside mmaplab's checks: not run (why), not compiling, or each run's verdict. */
export type LabTestReport =
  | { kind: 'skipped'; program: string; reason: string }
  | { kind: 'build-failed'; program: string; message: string; details: string[] }
  | { kind: 'ran'; program: string; command: string; node: string; runs: LabTestRun[] };

/** One `./mmap-test N` as the lab's instructions run it: its verdict, why, and what it printed. */
export interface LabTestRun {
  run: number;
  verdict: Verdict;
  reason: string;
  output: string[];
}

export type Verdict = 'pass' | 'fail' | 'skip';

/** One of `check`'s named checks: its verdict, a one-line reason, and for a failure a hint. */
export interface CheckItem {
  id: string;
  title: string;
  verdict: Verdict;
  reason: string;
  hint?: string;
  details?: string[];
  /** builds: the kernel API changes behind a failed build, where known. */
  apiChanges?: ApiChange[];
  /** builds: the common C mistakes behind its errors or warnings, where known. */
  buildMistakes?: BuildMistake[];
}

/** Why a kernel has no report: its kernel could not be fetched, the driver did not build, the guest did not boot. */
export interface KernelError {
  kind: ErrorKind;
  message: string;
  details: string[];
  hint: string | undefined;
  /** Compiler diagnostics at the user's file:line, for annotations. */
  locations: SourceLocation[];
  /** The kernel API changes behind a failed build, where known. */
  apiChanges: ApiChange[];
  artifacts: Record<string, string>;
}

export type KernelEntry =
  | { spec: string; kind: 'run'; report: RunReport }
  | { spec: string; kind: 'check'; report: CheckReport }
  | { spec: string; kind: 'error'; error: KernelError };

/** One row of the matrix (a strategy's check, or one of `check`'s items) and its value on each kernel. */
export interface MatrixRow {
  key: string;
  cells: Array<{ spec: string; value: string; ok: boolean } | { spec: string; value: undefined; ok: false }>;
}

export interface MatrixReport {
  schemaVersion: typeof SCHEMA_VERSION;
  tool: { name: 'mmaplab'; version: string };
  kind: 'matrix';
  command: 'run' | 'check';
  /** pass: every kernel passed; fail: a kernel failed (or the driver did not build on it); error: a kernel could not be tried. */
  status: 'pass' | 'fail' | 'error';
  exitCode: 0 | 1 | 3;
  kernels: KernelEntry[];
  /** Rows whose value is not the same on every kernel: what changed between them. */
  differences: MatrixRow[];
  artifacts: { dir: string; resultsJson: string };
  timings: { totalMs: number };
}
