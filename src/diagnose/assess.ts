/**
 * From what one job reported (records, kernel log, console) to per-check
 * results with expectations and explanations. Pure: the run command, `parse`
 * and the tests all come through here.
 */
import { checkMode, type CheckName } from '../model/checks.js';
import type { GuestRecord } from '../guest/protocol.js';
import { checkWindow, describeExitStatus, isMarker, observeJob, type CheckObservation } from '../parse/job-records.js';
import { findProblems, isAmbient, isRoutineNoise, parseKernelLog } from '../parse/kmsg.js';
import { FATAL_KINDS, LOCKUP_KINDS, type KernelLine, type KernelProblem } from '../model/kernel-log.js';
import { summariseTrace } from '../parse/trace.js';
import { visibleControls } from '../util/safe-text.js';
import { mappingPicture } from './mapping-picture.js';
import type { CheckResult, Flood, Outcome, StepResult, StrategyRun } from '../model/outcome.js';
import { expectationFor, matchesExpected } from './expectations.js';
import { explain } from './explain.js';

export type JobEnd = StrategyRun['end'];

export interface AssessInput {
  strategy: string;
  checks: readonly CheckName[];
  jobId: number;
  end: JobEnd;
  records: readonly GuestRecord[];
  /** The console of the boot that ran the job, for when the job never sent its own kernel log. */
  console: string;
  boot?: number;
  /** What the job's notes are headed with: the strategy (default), or nothing ('') where there is one driver (check). */
  label?: string;
  /** end 'flooded': how much the guest printed before it was stopped. */
  flood?: Flood;
}

export interface Assessment {
  strategy: StrategyRun;
  results: CheckResult[];
  /** The job's kernel log (its dmesg slice, or the console from its begin marker). */
  kernelLog: KernelLine[];
  notes: string[];
  consoleTail: string[];
  /** What an INSPECT job found besides the checks: the device step, vmalloc areas left, taint. */
  inspect: { device: StepResult | undefined; vmallocLeft: string[]; tainted: number | undefined; reservedFreed: number | undefined };
}

/** The console from the job's begin marker on (the console also carries boot messages). */
function consoleSlice(console: string, jobId: number): KernelLine[] {
  const lines = parseKernelLog(console);
  const from = lines.findIndex((l) => l.text === `mmaplab: job ${jobId} begin`);
  if (from >= 0) return lines.slice(from);
  // The job never logged its start (the machine went down as it began): nothing of the jobs before it is its own.
  const lastEnd = lines.findLastIndex((l) => /^mmaplab: job \d+ end$/.test(l.text));
  return lines.slice(lastEnd + 1);
}

/**
 * The job script's own words, on the console, for a command it could not
 * start ("run.sh: line 41: can't fork: Resource temporarily unavailable"):
 * the guest ran out of processes, and what the script would have reported
 * then is missing. Only this job's part of the console is read.
 */
function forkFailure(console: string, jobId: number): string | undefined {
  const begin = console.lastIndexOf(`mmaplab: job ${jobId} begin`);
  const own = begin >= 0 ? console.slice(begin) : '';
  return /\brun\.sh: line \d+: (can't fork: [^\r\n]{1,80})/.exec(own)?.[1];
}

/** Which step the guest was in when it stopped, from the last marker it logged. */
/** arm64 CPUs without FEAT_HAFDBS: what the readonly check can and cannot see there. */
export const SOFTWARE_DIRTY_NOTE =
  "this arm64 CPU manages the dirty bit in software (no hardware dirty-bit management): PAGE_SHARED is writable-clean here, so a write into a read-only mapping made with PAGE_SHARED faults, where x86 and CPUs with it let the write through; the readonly check cannot catch a driver that passes PAGE_SHARED on this machine (QEMU's max CPU, mmaplab's default arm64 guest, has it)";

export function lastStep(lines: readonly KernelLine[]): string {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^mmaplab: (?:step (\w+)|check ([\w-]+) begin)$/.exec(lines[i]!.text);
    if (m) return m[1] ?? `the ${m[2]} check`;
  }
  return 'boot';
}

/** The outcome of the check the guest was in when it stopped (crashed or hung). */
function stoppedOutcome(end: JobEnd, check: CheckName, lines: readonly KernelLine[], problems: readonly KernelProblem[], flood: Flood | undefined): Outcome {
  // An SSH target that a job before this one lost or hung: this job never began.
  if (lines.length === 0 && (end === 'connection-lost' || end === 'timeout')) {
    return { kind: 'not-run', reason: end === 'connection-lost' ? 'the connection to the target was lost before this job' : 'an earlier job hung the target; no job runs after it' };
  }
  const step = lastStep(lines);
  if (step !== `the ${check} check`) {
    if (end === 'connection-lost') return { kind: 'not-run', reason: step === 'boot' ? 'the connection to the target was lost before this job began' : `the connection to the target was lost during ${step}` };
    return { kind: 'not-run', reason: end === 'flooded' ? `the driver flooded the console during ${step}` : `the guest stopped during ${step}` };
  }
  // A flood holds the printing task up behind the console: a lockup report then is the flood's, not a hang of the driver's.
  if (end === 'flooded') return { kind: 'flood', step, lines: flood?.lines ?? 0, seconds: flood?.seconds ?? 0 };
  // A lockup report is the kernel noticing the hang, not a crash.
  const lockup = problems.find((p) => LOCKUP_KINDS.has(p.kind));
  const fatal = problems.find((p) => p.kind === 'panic') ?? problems.find((p) => FATAL_KINDS.has(p.kind));
  if (fatal || end === 'guest-died') return { kind: 'crash', title: fatal?.title ?? 'the guest died without a kernel message' };
  if (end === 'connection-lost') return { kind: 'lost', reason: 'the machine stopped answering during this check' };
  if (lockup) return { kind: 'hang', step, evidence: lockup.title };
  if (end === 'stalled') return { kind: 'crash', title: problems[0]?.title ?? 'the kernel reported a problem and stopped' };
  return { kind: 'hang', step };
}

/**
 * A check whose window holds an oops, BUG or panic crashed, whatever status its
 * process left: killed by the oops, or stuck in the kernel until the test
 * program's own deadline (status 124) is still that crash.
 */
function crashIn(lines: readonly KernelLine[], problems: readonly KernelProblem[], check: CheckName): Outcome | undefined {
  const window = checkWindow(lines, check);
  if (!window) return undefined;
  const fatal = problems.find((p) => FATAL_KINDS.has(p.kind) && p.line > window.from && p.line < window.to);
  return fatal && { kind: 'crash', title: fatal.title };
}


/** Why the job did not finish, in one note (nothing when it did). */
function stopNote(end: JobEnd, step: string, lockup: KernelProblem | undefined, flood: Flood | undefined): string {
  if (end === 'flooded') return `stopped: the driver printed ${flood ? `${flood.lines} lines in ${flood.seconds} s` : 'without end'} during ${step}, more than a lab job ever prints; the console could not keep up (its log keeps the head and the tail)`;
  if (lockup && end === 'stalled') return `stopped once the kernel reported the guest stuck during ${step} (${lockup.title}); the guest was killed and the console so far is kept`;
  if (lockup && end === 'timeout') return `the guest stopped responding during ${step} (the kernel reported: ${lockup.title}) and was killed at the deadline; the console so far is kept`;
  switch (end) {
    case 'timeout':
      return `the guest stopped responding during ${step} and was killed at the deadline; the console so far is kept`;
    case 'stalled':
      return `the kernel crashed during ${step} and the guest made no progress after it; it was killed`;
    case 'connection-lost':
      return `the connection to the target was lost ${step === 'boot' ? 'as the job began' : `during ${step}`}; the kernel log received until then is kept`;
    case 'guest-died':
    case 'done':
      return `the guest went down during ${step} before the job finished`;
  }
}

/** A check's own kernel log lines: a problem report shows as its title only (it is rendered in full once). */
function checkLogOf(lines: readonly KernelLine[], problems: readonly KernelProblem[], check: CheckName): KernelLine[] {
  const window = checkWindow(lines, check);
  if (!window) return [];
  const own = lines.slice(window.from + 1, window.to).filter((l, k) => {
    const i = window.from + 1 + k;
    const inBody = problems.some((p) => i > p.line && i < p.endLine);
    return !inBody && !isMarker(l.text) && !isRoutineNoise(l.text) && !isAmbient(l.text);
  });
  return capLines(own, CHECK_LOG_LINES);
}

/** What results.json keeps of a check's kernel log, and of a job's: a driver printing in a loop must not make it hundreds of MB. */
const CHECK_LOG_LINES = 200;
const JOB_LOG_LINES = 2000;

/** At most `max` lines: the first and last halves, and a line saying how many between are not kept. */
export function capLines(lines: readonly KernelLine[], max: number): KernelLine[] {
  if (lines.length <= max) return [...lines];
  const half = Math.floor(max / 2);
  const dropped = lines.length - 2 * half;
  return [...lines.slice(0, half), { time: undefined, text: `[mmaplab: ${dropped} lines not kept here; the run's console.log and records.jsonl have more]` }, ...lines.slice(-half)];
}

/** One cell of the grid: what the check saw, what the lab expected of the strategy, and why. */
function cellOf(strategy: string, c: CheckObservation, outcome: Outcome, lines: readonly KernelLine[], problems: readonly KernelProblem[]): CheckResult {
  const checkLog = checkLogOf(lines, problems, c.check);
  const expected = expectationFor(strategy, c.check);
  const mode = checkMode(c.check);
  const traced = summariseTrace(c.trace);
  const result: CheckResult = {
    strategy,
    check: c.check,
    mode,
    outcome,
    pagesOk: c.pageReports.filter((p) => p.ok).length,
    pages: c.pages,
    expected,
    matchesExpected: matchesExpected(outcome, expected),
    exitStatus: c.exitStatus,
    exitDescription: describeExitStatus(c.exitStatus),
    pageReports: c.pageReports,
    seedPrintf: c.seedPrintf,
    traced,
    ...(c.aliases ? { aliases: c.aliases } : {}),
    ...(c.readFinding ? { readFinding: c.readFinding } : {}),
    kernelLog: checkLog,
    explanation: explain({ strategy, check: c.check, mode, outcome, pages: c.pages, kernelLog: checkLog, seedPrintf: c.seedPrintf, traced }),
  };
  const picture = mappingPicture(result, c.pattern);
  return picture ? { ...result, picture } : result;
}

export function assessJob(input: AssessInput): Assessment {
  const obs = observeJob(input.records, input.checks);
  const notes: string[] = [];
  // Prefer the job's own dmesg slice; fall back to the console when the job never finished.
  const lines = obs.complete && obs.kmsg.length ? obs.kmsg : consoleSlice(input.console, input.jobId);
  const problems = findProblems(lines);
  for (const p of problems) p.during = lastStep(lines.slice(0, p.line + 1));
  // A target lost or hung before this job began: the note belongs to the job that lost it, not to the rest.
  const neverStarted = input.end !== 'done' && input.records.length === 0 && input.console === '';
  const who = input.label ?? input.strategy;
  const note = (text: string) => (who ? `${who}: ${text}` : text);
  const lockup = problems.find((p) => LOCKUP_KINDS.has(p.kind));
  if (!obs.complete && !neverStarted) notes.push(note(stopNote(input.end, lastStep(lines), lockup, input.flood)));
  const noFork = forkFailure(input.console, input.jobId);
  if (noFork) notes.push(note(`the guest ran out of processes during the job: its script could not start a command (${noFork}), so what it would have reported then is missing; something the driver started (kernel threads, say) used them up`));

  const insmod = obs.steps.insmod;
  // The first check without an outcome is charged with the stop; the ones after it did not run.
  let blamed = false;
  const results = obs.checks.map((c): CheckResult => {
    // Only a check whose process did not end by itself (killed, stuck, never reported) is charged with an oops in
    // its window; one that finished (ok, or mmap() refused cleanly) saw what it reports, and the kernel check lists the oops.
    const unfinished = !c.outcome || c.outcome.kind === 'killed' || c.outcome.kind === 'hang';
    let outcome = unfinished ? (crashIn(lines, problems, c.check) ?? c.outcome) : c.outcome;
    if (!outcome) {
      if (insmod && !insmod.ok) outcome = { kind: 'not-run', reason: `insmod failed (status ${insmod.status})${insmod.output ? `: ${insmod.output}` : ''}` };
      else if (blamed && !neverStarted) outcome = { kind: 'not-run', reason: input.end === 'connection-lost' ? 'the connection to the target was lost during an earlier check' : 'the guest stopped during an earlier check' };
      else {
        outcome = stoppedOutcome(input.end, c.check, lines, problems, input.flood);
        blamed = true;
      }
    }
    return cellOf(input.strategy, c, outcome, lines, problems);
  });
  // A kernel that refused a probe says so; no kprobe events at all is in the report's tracing line, an architecture not traced in the run's notes.
  if (obs.refusedProbe) notes.push(note(`tracing off: the kernel refused a kprobe on ${obs.refusedProbe}`));
  if (obs.noTraceInstance) notes.push(note("tracing off: tracefs would not make mmaplab's trace instance (instances/mmaplab)"));
  // A fact of the machine, not of one strategy's job: said once (assemble drops the repeats).
  if (obs.softwareDirty) notes.push(SOFTWARE_DIRTY_NOTE);
  if (obs.stray.length) notes.push(note(`the guest printed ${obs.stray.length} line(s) outside the protocol: ${obs.stray.slice(0, 3).join(' | ')}`));
  return {
    strategy: { strategy: input.strategy, insmod, rmmod: obs.steps.rmmod, boot: input.boot ?? 1, tracing: obs.tracing, end: input.end, problems, ...(input.flood ? { flood: input.flood } : {}) },
    results,
    kernelLog: capLines(lines.filter((l) => !isMarker(l.text)), JOB_LOG_LINES),
    notes,
    consoleTail: obs.complete ? [] : input.console.trimEnd().split('\n').slice(-15).map((l) => visibleControls(l.replace(/\r$/, '').slice(0, 2000))),
    inspect: { device: obs.steps.device, vmallocLeft: obs.vmallocLeft, tainted: obs.tainted, reservedFreed: obs.reservedFreed },
  };
}
