/**
 * The exit policy, in one place: what each result and each error means for
 * the process's exit status. Reports carry the status they were given here;
 * the CLI turns errors and signals into codes through here too.
 */
import type { ErrorKind } from '../util/errors.js';
import type { KernelProblem } from './kernel-log.js';
import type { CheckResult } from './outcome.js';
import type { CheckItem, KernelEntry } from './report.js';

export const ExitCode = {
  ok: 0,
  /** Some outcome differs from what the lab expects (or a check failed). */
  mismatch: 1,
  /** Bad flag, bad spec, bad configuration. */
  usage: 2,
  /** The tool could not do its job: missing tool, fetch, build, boot. */
  infra: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

type Status = { status: 'pass' | 'fail'; exitCode: 0 | 1 };
const PASS: Status = { status: 'pass', exitCode: ExitCode.ok };
const FAIL: Status = { status: 'fail', exitCode: ExitCode.mismatch };

/** `run`: every outcome as expected and no problem in the kernel log. */
export function runStatus(results: readonly CheckResult[], problems: readonly KernelProblem[]): Status {
  return results.length > 0 && results.every((r) => r.matchesExpected) && problems.length === 0 ? PASS : FAIL;
}

/** `check`: no named check failed (a skipped one is not a failure). */
export function checksStatus(items: readonly CheckItem[]): Status {
  return items.some((i) => i.verdict === 'fail') ? FAIL : PASS;
}

/** A kernel log read on its own (`parse` of a console): any problem fails it. */
export function consoleStatus(problems: readonly KernelProblem[]): Status {
  return problems.length ? FAIL : PASS;
}

/**
 * Several kernels: a driver that does not build is a failure of the driver;
 * anything else without a report is the tool's.
 */
export function matrixStatus(kernels: readonly KernelEntry[]): { status: 'pass' | 'fail' | 'error'; exitCode: 0 | 1 | 3 } {
  if (kernels.some((k) => k.kind === 'error' && k.error.kind !== 'build')) return { status: 'error', exitCode: ExitCode.infra };
  if (kernels.every((k) => k.kind !== 'error' && k.report.status === 'pass')) return PASS;
  return FAIL;
}

/** An error that stopped a command: a usage error is the user's, anything else the tool's. */
export function errorExitCode(kind: ErrorKind): ExitCode {
  return kind === 'usage' ? ExitCode.usage : ExitCode.infra;
}

/** Interrupted: 128 + the signal, as a shell reports it. */
export function signalExitCode(signal: 'SIGINT' | 'SIGTERM'): number {
  return signal === 'SIGINT' ? 130 : 143;
}
