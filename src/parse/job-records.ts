/**
 * Folding a job's record stream into what happened: the steps (insmod,
 * device, rmmod), and per mapping mode the outcome userspace saw.
 */
import type { GuestRecord, MapMode } from '../guest/protocol.js';
import type { Outcome, PageReport, StepResult } from '../report/model.js';
import { parseKernelLine, type KernelLine } from './kmsg.js';

export interface ModeObservation {
  mode: MapMode;
  /** Undefined when the mode never finished (the job ended early: crash, hang). */
  outcome: Outcome | undefined;
  exitStatus: number | null;
  pages: number;
  pageReports: PageReport[];
  seedPrintf: string | undefined;
}

export interface JobObservation {
  steps: Partial<Record<'insmod' | 'device' | 'rmmod', StepResult>>;
  modes: ModeObservation[];
  kmsg: KernelLine[];
  /** The job script reached its end. */
  complete: boolean;
  /** Lines that were not records: kept for the report. */
  stray: string[];
}

const SIGNALS: Record<number, [string, string]> = {
  1: ['SIGHUP', 'Hangup'],
  2: ['SIGINT', 'Interrupt'],
  3: ['SIGQUIT', 'Quit'],
  4: ['SIGILL', 'Illegal instruction'],
  5: ['SIGTRAP', 'Trace/breakpoint trap'],
  6: ['SIGABRT', 'Aborted'],
  7: ['SIGBUS', 'Bus error'],
  8: ['SIGFPE', 'Floating point exception'],
  9: ['SIGKILL', 'Killed'],
  11: ['SIGSEGV', 'Segmentation fault'],
  13: ['SIGPIPE', 'Broken pipe'],
  14: ['SIGALRM', 'Alarm clock'],
  15: ['SIGTERM', 'Terminated'],
};

export function signalOfStatus(status: number): { name: string; description: string; number: number } | undefined {
  if (status <= 128 || status > 128 + 64) return undefined;
  const n = status - 128;
  const [name, description] = SIGNALS[n] ?? [`SIG${n}`, `Signal ${n}`];
  return { name, description, number: n };
}

/** How a shell would describe an exit status: "Bus error (exit status 135)". */
export function describeExitStatus(status: number | null): string {
  if (status === null) return 'did not exit';
  const sig = signalOfStatus(status);
  return sig ? `${sig.description} (exit status ${status}, ${sig.name})` : `exit status ${status}`;
}

function outcomeOf(recs: readonly GuestRecord[], exitStatus: number, pages: number, pageReports: PageReport[]): Outcome {
  const pagesOk = pageReports.filter((p) => p.ok).length;
  for (const r of recs) {
    if (r.t === 'open' && !r.ok) return { kind: 'open-failed', errno: r.err ?? `errno ${r.errno}`, message: r.msg ?? '' };
    if (r.t === 'mmap' && !r.ok) return { kind: 'mmap-failed', errno: r.err ?? `errno ${r.errno}`, message: r.msg ?? '' };
    if (r.t === 'fault') {
      const base = { page: r.page, addr: r.addr, code: r.code, pagesOk };
      return r.signal === 'SIGBUS' ? { kind: 'sigbus', ...base } : { kind: 'sigsegv', ...base };
    }
  }
  const sig = signalOfStatus(exitStatus);
  if (sig) return { kind: 'killed', signal: sig.name, status: exitStatus };
  const done = recs.find((r) => r.t === 'done');
  if (!done && exitStatus === 124) return { kind: 'hang', step: 'test program' };
  const bad = pageReports.find((p) => !p.ok);
  if (done && !bad && pagesOk === pages) return { kind: 'ok', pagesOk, pages };
  if (bad) return { kind: 'wrong-data', pagesOk, pages, firstBad: { page: bad.page, word: bad.word, index: bad.index } };
  return { kind: 'killed', signal: 'unknown', status: exitStatus };
}

export function observeJob(records: readonly GuestRecord[], modes: readonly MapMode[], pages: number): JobObservation {
  const obs: JobObservation = { steps: {}, modes: [], kmsg: [], complete: false, stray: [] };
  let current: { mode: MapMode; recs: GuestRecord[] } | undefined;
  const finished = new Map<MapMode, ModeObservation>();
  const partial = new Map<MapMode, GuestRecord[]>();

  const pagesOf = (recs: GuestRecord[]) =>
    recs.filter((r): r is Extract<GuestRecord, { t: 'page' }> => r.t === 'page').map(({ page, addr, word, index, ok }) => ({ page, addr, word, index, ok }));
  const seedPrintfOf = (recs: GuestRecord[]) => recs.find((r): r is Extract<GuestRecord, { t: 'seed-printf' }> => r.t === 'seed-printf')?.text;

  for (const r of records) {
    switch (r.t) {
      case 'step':
        if (r.step === 'insmod' || r.step === 'device' || r.step === 'rmmod') obs.steps[r.step] = { ok: r.status === 0, status: r.status, output: r.output };
        break;
      case 'start':
        current = { mode: r.mode, recs: [r] };
        partial.set(r.mode, current.recs);
        break;
      case 'exit': {
        const recs = current?.mode === r.mode ? current.recs : [];
        const pageReports = pagesOf(recs);
        finished.set(r.mode, {
          mode: r.mode,
          outcome: outcomeOf(recs, r.status, pages, pageReports),
          exitStatus: r.status,
          pages,
          pageReports,
          seedPrintf: seedPrintfOf(recs),
        });
        current = undefined;
        break;
      }
      case 'kmsg':
        obs.kmsg.push(parseKernelLine(r.line));
        break;
      case 'job-done':
        obs.complete = true;
        break;
      case 'text':
        if (r.text.trim()) obs.stray.push(r.text);
        break;
      case 'ready':
      case 'job-end':
        break;
      default:
        current?.recs.push(r);
    }
  }
  for (const mode of modes) {
    const done = finished.get(mode);
    if (done) {
      obs.modes.push(done);
      continue;
    }
    const recs = partial.get(mode) ?? [];
    obs.modes.push({ mode, outcome: undefined, exitStatus: null, pages, pageReports: pagesOf(recs), seedPrintf: seedPrintfOf(recs) });
  }
  return obs;
}

/** The kernel log lines between a job's "test <mode> begin" and "end" markers. */
export function modeWindow(lines: readonly KernelLine[], mode: MapMode): { from: number; to: number } | undefined {
  const from = lines.findIndex((l) => l.text === `mmaplab: test ${mode} begin`);
  if (from < 0) return undefined;
  const rel = lines.slice(from + 1).findIndex((l) => l.text.startsWith(`mmaplab: test ${mode} end`));
  return { from, to: rel < 0 ? lines.length : from + 1 + rel };
}

export function isMarker(text: string): boolean {
  return /^mmaplab: (job \d+ (begin|end)|step \w+|test \w+ (begin|end.*))$/.test(text);
}
