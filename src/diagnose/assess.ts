/**
 * From what a job reported (records, kernel log, console) to per-mode results
 * with expectations and explanations. Pure: the run command, `parse` and the
 * tests all come through here.
 */
import type { GuestRecord, MapMode } from '../guest/protocol.js';
import { isMarker, modeWindow, observeJob, describeExitStatus, type ModeObservation } from '../parse/job-records.js';
import { findProblems, isAmbient, isRoutineNoise, parseKernelLog, type KernelLine, type KernelProblem } from '../parse/kmsg.js';
import type { ModeResult, Outcome, StepResult } from '../report/model.js';
import { expectationFor, matchesExpected } from './expectations.js';
import { explain } from './explain.js';

export type JobEnd = 'done' | 'guest-died' | 'timeout' | 'stalled';

export interface AssessInput {
  strategy: string;
  modes: readonly MapMode[];
  pages: number;
  jobId: number;
  end: JobEnd;
  records: readonly GuestRecord[];
  /** The whole console, for when the job never got to send its own kernel log. */
  console: string;
}

export interface Assessment {
  results: ModeResult[];
  insmod: StepResult | undefined;
  rmmod: StepResult | undefined;
  kernelLog: { lines: KernelLine[]; problems: KernelProblem[] };
  notes: string[];
  consoleTail: string[];
}

/** The console from the job's begin marker on (the console also carries boot messages). */
function consoleSlice(console: string, jobId: number): KernelLine[] {
  const lines = parseKernelLog(console);
  const from = lines.findIndex((l) => l.text === `mmaplab: job ${jobId} begin`);
  return from < 0 ? lines : lines.slice(from);
}

/** Which step the guest was in when it stopped, from the last marker it logged. */
export function lastStep(lines: readonly KernelLine[]): string {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^mmaplab: (?:step (\w+)|test (\w+) begin)$/.exec(lines[i]!.text);
    if (m) return m[1] ?? `the ${m[2]} test`;
  }
  return 'boot';
}

/** The outcome of the mode the guest was in when it stopped (crashed or hung). */
function stoppedOutcome(end: JobEnd, mode: MapMode, lines: readonly KernelLine[], problems: readonly KernelProblem[]): Outcome {
  const step = lastStep(lines);
  if (step !== `the ${mode} test`) return { kind: 'not-run', reason: `the guest stopped during ${step}` };
  // A lockup report is the kernel noticing the hang, not a crash.
  const lockup = problems.find((p) => p.kind === 'soft-lockup' || p.kind === 'hung-task' || p.kind === 'rcu-stall');
  const fatal = problems.find((p) => p.kind === 'panic') ?? problems.find((p) => p !== lockup && p.kind !== 'warning');
  if (fatal || end === 'guest-died') return { kind: 'crash', title: fatal?.title ?? 'the guest died without a kernel message' };
  if (lockup) return { kind: 'hang', step, evidence: lockup.title };
  if (end === 'stalled') return { kind: 'crash', title: problems[0]?.title ?? 'the kernel reported a problem and stopped' };
  return { kind: 'hang', step };
}

export function assessJob(input: AssessInput): Assessment {
  const obs = observeJob(input.records, input.modes, input.pages);
  const notes: string[] = [];
  // Prefer the job's own dmesg slice; fall back to the console when the job never finished.
  const lines = obs.complete && obs.kmsg.length ? obs.kmsg : consoleSlice(input.console, input.jobId);
  const problems = findProblems(lines);
  if (!obs.complete) {
    const step = lastStep(lines);
    notes.push(
      input.end === 'timeout'
        ? `the guest stopped responding during ${step} and was killed at the deadline; the console so far is kept`
        : input.end === 'stalled'
          ? `the kernel crashed during ${step} and the guest made no progress after it; it was killed`
          : `the guest went down during ${step} before the job finished`,
    );
  }

  const insmod = obs.steps.insmod;
  let blamed = false;
  const results = obs.modes.map((m: ModeObservation): ModeResult => {
    let outcome = m.outcome;
    if (!outcome) {
      if (insmod && !insmod.ok) outcome = { kind: 'not-run', reason: `insmod failed (status ${insmod.status})${insmod.output ? `: ${insmod.output}` : ''}` };
      else if (blamed) outcome = { kind: 'not-run', reason: 'the guest stopped during an earlier step' };
      else {
        outcome = stoppedOutcome(input.end, m.mode, lines, problems);
        blamed = true;
      }
    }
    const window = modeWindow(lines, m.mode);
    // The mode's own lines: a problem report shows as its title only (it is rendered in full once).
    const modeLog = window
      ? lines.slice(window.from + 1, window.to).filter((l, k) => {
          const i = window.from + 1 + k;
          const inBody = problems.some((p) => i > p.line && i < p.endLine);
          return !inBody && !isMarker(l.text) && !isRoutineNoise(l.text) && !isAmbient(l.text);
        })
      : [];
    const expected = expectationFor(input.strategy, m.mode);
    const pagesOk = m.pageReports.filter((p) => p.ok).length;
    return {
      strategy: input.strategy,
      mode: m.mode,
      outcome,
      pagesOk,
      pages: m.pages,
      expected,
      matchesExpected: matchesExpected(outcome, expected),
      exitStatus: m.exitStatus,
      exitDescription: describeExitStatus(m.exitStatus),
      pageReports: m.pageReports,
      seedPrintf: m.seedPrintf,
      kernelLog: modeLog,
      explanation: undefined,
    };
  });
  // Explanations may compare modes (EINVAL only under MAP_PRIVATE points at copy-on-write).
  for (const r of results) {
    r.explanation = explain({
      strategy: r.strategy,
      mode: r.mode,
      outcome: r.outcome,
      pages: r.pages,
      kernelLog: r.kernelLog,
      seedPrintf: r.seedPrintf,
      others: results.filter((o) => o !== r).map((o) => ({ mode: o.mode, outcome: o.outcome })),
    });
  }
  if (obs.stray.length) notes.push(`the guest printed ${obs.stray.length} line(s) outside the protocol: ${obs.stray.slice(0, 3).join(' | ')}`);
  return {
    results,
    insmod,
    rmmod: obs.steps.rmmod,
    kernelLog: { lines: lines.filter((l) => !isMarker(l.text)), problems },
    notes,
    consoleTail: obs.complete ? [] : input.console.trimEnd().split('\n').slice(-15),
  };
}
