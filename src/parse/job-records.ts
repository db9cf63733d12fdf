/**
 * Folding a job's record stream into what happened: the steps (insmod,
 * device, rmmod), and per check the outcome userspace saw.
 */
import type { CheckName } from '../model/checks.js';
import type { GuestRecord } from '../guest/protocol.js';
import type { Outcome, PageReport, ReadFinding, StepResult } from '../model/outcome.js';
import { parseKernelLine } from './kmsg.js';
import { readFinding, readWords, seenInstead, writeReached } from './read-probe.js';

/** The word shared-write writes through the mapping (the test program's SHARED_MARK). */
export const SHARED_MARK = 0x5eed0001;
import { type KernelLine } from '../model/kernel-log.js';

export interface CheckObservation {
  check: CheckName;
  /** Undefined when the check never finished (the job ended early: crash, hang). */
  outcome: Outcome | undefined;
  exitStatus: number | null;
  pages: number;
  pageReports: PageReport[];
  seedPrintf: string | undefined;
  /** tracefs lines recorded while this check ran. */
  trace: string[];
  aliases?: { tested: boolean; pairs: Array<[number, number]>; why?: string };
  readFinding?: ReadFinding;
  /** The word the check expected each page to start with (under --either-order, the order page 0 had). */
  pattern?: string;
}

export interface LabProgramRun {
  run: number;
  output: string[];
  /** undefined: the job stopped before the run ended. */
  status: number | undefined;
  stopped: '' | 'after-result' | 'deadline';
}

export interface JobObservation {
  steps: Partial<Record<'insmod' | 'device' | 'rmmod', StepResult>>;
  checks: CheckObservation[];
  kmsg: KernelLine[];
  tracing: boolean;
  /** The job script reached its end. */
  complete: boolean;
  /** Lines that were not records: kept for the report. */
  stray: string[];
  /** INSPECT jobs: vmalloc areas that appeared while the driver was loaded and outlived rmmod (/proc/vmallocinfo lines without their address). */
  vmallocLeft: string[];
  /** A kprobe the kernel refused, which left the job untraced. */
  refusedProbe?: string;
  /** INSPECT jobs: the kernel's taint mask at the end. */
  tainted: number | undefined;
  /** INSPECT jobs: pages rmmod freed while still marked PG_reserved (undefined: not watched). */
  reservedFreed: number | undefined;
  /** STATE jobs: what the guest held before insmod and after rmmod. */
  guestState: Partial<Record<'before' | 'after', GuestState>>;
  /** Tracing was off because tracefs would not make mmaplab's trace instance. */
  noTraceInstance?: boolean;
  /** arm64: the CPU has no hardware dirty-bit management (PAGE_SHARED is writable-clean, so a write to it faults). */
  softwareDirty?: boolean;
  /** The lab's own test program's runs (./mmap-test N): what each printed and how it ended. */
  labRuns: LabProgramRun[];
  /** Every vmalloc area that appeared while the driver was loaded and outlived rmmod, the driver's or not. */
  vmallocNew: string[];
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

type Rec<T extends GuestRecord['t']> = Extract<GuestRecord, { t: T }>;

function outcomeOf(check: CheckName, recs: readonly GuestRecord[], exitStatus: number, pageReports: PageReport[]): Outcome {
  const pagesOk = pageReports.filter((p) => p.ok).length;
  for (const r of recs) {
    if (r.t === 'open' && !r.ok) return { kind: 'open-failed', errno: r.err ?? `errno ${r.errno}`, message: r.msg ?? '' };
    if (r.t === 'mmap' && !r.ok) return { kind: 'mmap-failed', errno: r.err ?? `errno ${r.errno}`, message: r.msg ?? '', page: r.page };
    if (r.t === 'mprotect' && !r.ok) return { kind: 'mprotect-denied', errno: r.err ?? `errno ${r.errno}`, message: r.msg ?? '' };
    if (r.t === 'fault') {
      const base = { page: r.page, addr: r.addr, code: r.code, pagesOk };
      return r.signal === 'SIGBUS' ? { kind: 'sigbus', ...base } : { kind: 'sigsegv', ...base };
    }
  }
  const ro = recs.find((r): r is Rec<'ro-write'> => r.t === 'ro-write');
  if (check === 'readonly' && ro && !ro.faulted) return { kind: 'write-allowed', reached: ro.reached ?? false };
  const done = recs.find((r): r is Rec<'done'> => r.t === 'done');
  const sig = signalOfStatus(exitStatus);
  if (!done && (exitStatus === 124 || sig?.name === 'SIGTERM')) return { kind: 'hang', step: `the ${check} check` };
  if (sig) return { kind: 'killed', signal: sig.name, status: exitStatus };
  const readbacks = recs.filter((r): r is Rec<'readback'> => r.t === 'readback');
  const probe = recs.find((r): r is Rec<'read-probe'> => r.t === 'read-probe');
  if (check === 'shared-write' && probe) {
    const finding = readFinding(probe, SHARED_MARK);
    const reached = writeReached(finding);
    if (reached === false) return { kind: 'write-lost', seen: seenInstead(probe) };
    if (reached === undefined) return { kind: 'skipped', reason: `neither read() nor a second mapping can show the write (${readWords(finding)})` };
  } else if (check === 'shared-write') {
    if (readbacks.some((r) => r.via === 'read' && !r.ok)) {
      const err = readbacks.find((r) => r.via === 'read' && !r.ok)?.err ?? 'an error';
      return { kind: 'skipped', reason: `the driver offers no read() to read the write back (read() gave ${err})` };
    }
    const seen = readbacks.find((r) => r.via === 'read' && r.ok && r.value !== undefined);
    if (seen && !seen.matches) return { kind: 'write-lost', seen: seen.value ?? 'nothing' };
  }
  if (check === 'private-isolation') {
    const leak = readbacks.find((r) => r.matches);
    if (leak) return { kind: 'write-leaked', via: leak.via };
  }
  const bad = pageReports.find((p) => !p.ok);
  if (bad) {
    return { kind: 'wrong-data', pagesOk, pages: done?.pages ?? pageReports.length, firstBad: { page: bad.page, word: bad.word, index: bad.index, expectIndex: bad.expectIndex } };
  }
  // The word the check ended up expecting: page 0's, under --either-order.
  const pattern = recs.findLast((r): r is Rec<'pattern'> => r.t === 'pattern')?.word ?? recs.find((r): r is Rec<'start'> => r.t === 'start')?.pattern;
  if (done && done.pagesOk === done.pages) return { kind: 'ok', pagesOk: done.pagesOk, pages: done.pages, ...(pattern ? { pattern } : {}) };
  return { kind: 'killed', signal: 'unknown', status: exitStatus };
}

function aliasesOf(recs: readonly GuestRecord[]): Pick<CheckObservation, 'aliases'> {
  const a = recs.find((r): r is Rec<'alias'> => r.t === 'alias');
  return a ? { aliases: { tested: a.tested, pairs: a.pairs ?? [], ...(a.why ? { why: a.why } : {}) } } : {};
}

function readFindingOf(recs: readonly GuestRecord[]): Pick<CheckObservation, 'readFinding'> {
  const p = recs.find((r): r is Rec<'read-probe'> => r.t === 'read-probe');
  return p ? { readFinding: readFinding(p, SHARED_MARK) } : {};
}

/** The device step as the report words it, from the facts the job reported. */
export function deviceStep(r: Rec<'device'>): StepResult {
  switch (r.how) {
    case 'given':
      return { ok: true, status: 0, output: `${r.path ?? ''} (given)` };
    case 'devtmpfs':
      return { ok: true, status: 0, output: `${r.path ?? ''} (made by devtmpfs)` };
    case 'none':
      return { ok: false, status: 1, output: `no new character device after insmod${r.looked ? ` (looked for '${r.looked}' in /proc/devices)` : ''}` };
    case 'name':
    case 'new-chrdev': {
      const status = r.mknod ?? 1;
      return { ok: status === 0, status, output: `${r.path ?? ''} ${r.major ?? '?'}:0 (${r.name ?? ''})${r.error ? ` ${r.error}` : ''}` };
    }
  }
}

/** vmallocinfo lines without their address range (it differs between readings of the same area). */
function areaOf(line: string): string {
  // Hashed, or "(____ptrval____)" while the kernel's pointer hashing is not yet seeded.
  return line.trim().replace(/^0x(?:[0-9a-f]+|\(_+ptrval_+\))-0x(?:[0-9a-f]+|\(_+ptrval_+\))\s+/, '');
}

/**
 * Of the areas left after rmmod, those the driver made: named by it, or
 * called from an address the kernel no longer names, which is code that is
 * gone (kernel text always resolves): a bare address of the word size,
 * wherever modules live (x86-64's module area 0xffffffffc..., i386's vmalloc
 * space 0xd08..., arm64's beside the randomized kernel image 0xffffc76f...).
 */
export function leakedAreas(lines: readonly string[], module: string): string[] {
  return lines.filter((l) => l.includes(`[${module}]`) || /(^|\s)0x(?:[0-9a-f]{8}|[0-9a-f]{16})(\s|$)/.test(l));
}

/** The areas after rmmod that were not there before insmod, each repeat counted. */
export function vmallocLeftOver(before: readonly string[], after: readonly string[]): string[] {
  const seen = new Map<string, number>();
  for (const l of before) seen.set(areaOf(l), (seen.get(areaOf(l)) ?? 0) + 1);
  const left: string[] = [];
  for (const l of after) {
    const a = areaOf(l);
    const n = seen.get(a) ?? 0;
    if (n > 0) seen.set(a, n - 1);
    else left.push(a);
  }
  return left;
}

/** The records of each check, as the test program reported them between its start and its exit. */
interface PerCheck {
  recs: Map<CheckName, GuestRecord[]>;
  exits: Map<CheckName, number>;
  traces: Map<CheckName, string[]>;
  current: GuestRecord[] | undefined;
  vmalloc: { before: string[]; after: string[]; seen: boolean };
}

/** What a guest held at one moment (STATE jobs): what a driver can leave registered, and the taint. */
export interface GuestState {
  modules: string[];
  chrdevs: string[];
  classes: string[];
  misc: string[];
  proc: string[];
  tainted: number;
}

const words = (s: string | undefined, sep: string): string[] => (s ?? '').split(sep).filter(Boolean);

/** The lab's program's records: its lines of a run (sent after it ended), then how it ended. */
function foldLabRun(runs: LabProgramRun[], r: Extract<GuestRecord, { t: 'lab-output' | 'lab-run' }>): void {
  const run = Number(r.run);
  let entry = runs.find((x) => x.run === run && x.status === undefined);
  if (!entry) runs.push((entry = { run, output: [], status: undefined, stopped: '' }));
  if (r.t === 'lab-output') {
    if (entry.output.length < 200) entry.output.push(r.line);
  } else Object.assign(entry, { status: r.status, stopped: r.stopped });
}

/** One record into what the job saw. */
function fold(obs: JobObservation, acc: PerCheck, r: GuestRecord): void {
  switch (r.t) {
    case 'step':
      if (r.step === 'insmod' || r.step === 'device' || r.step === 'rmmod') obs.steps[r.step] = { ok: r.status === 0, status: r.status, output: r.output };
      return;
    case 'start':
      acc.current = [r];
      acc.recs.set(r.check, acc.current);
      return;
    case 'exit':
      acc.exits.set(r.check, r.status);
      acc.current = undefined;
      return;
    case 'trace':
      acc.traces.set(r.check, [...(acc.traces.get(r.check) ?? []), r.line]);
      return;
    case 'kmsg':
      obs.kmsg.push(parseKernelLine(r.line));
      return;
    case 'tracing':
      obs.tracing = r.on;
      if (!r.on && r.off === 'refused') obs.refusedProbe = r.probe ?? '?';
      if (!r.on && r.off === 'no-instance') obs.noTraceInstance = true;
      return;
    case 'lab-output':
    case 'lab-run':
      foldLabRun(obs.labRuns, r);
      return;
    case 'cpu':
      if (r.dirty === 'sw') obs.softwareDirty = true;
      return;
    case 'device':
      obs.steps.device = deviceStep(r);
      return;
    case 'vmalloc':
      acc.vmalloc.seen = true;
      acc.vmalloc[r.when].push(r.line);
      return;
    case 'job-done':
      obs.complete = true;
      return;
    case 'text':
      if (r.text.trim()) obs.stray.push(r.text);
      return;
    case 'vmalloc-left':
      obs.vmallocLeft.push(r.line);
      return;
    case 'tainted':
      obs.tainted = r.value;
      return;
    case 'reserved-freed':
      obs.reservedFreed = r.pages;
      return;
    case 'guest-state':
      obs.guestState[r.when] = { modules: words(r.modules, ' '), chrdevs: words(r.chrdevs, '|'), classes: words(r.classes, '|'), misc: words(r.misc, '|'), proc: words(r.proc, '|'), tainted: r.tainted };
      return;
    case 'ready':
    case 'job-end':
    case 'synced':
    case 'warmed':
      return;
    default:
      acc.current?.push(r);
  }
}

function observeCheck(check: CheckName, acc: PerCheck): CheckObservation {
  const recs = acc.recs.get(check) ?? [];
  const pageReports = recs
    .filter((r): r is Rec<'page'> => r.t === 'page')
    .map(({ page, addr, word, index, expectIndex, pfn, ok }) => ({ page, addr, word, index, expectIndex, ...(pfn === undefined ? {} : { pfn }), ok }));
  const status = acc.exits.get(check);
  const pattern = recs.findLast((r): r is Rec<'pattern'> => r.t === 'pattern')?.word ?? recs.find((r): r is Rec<'start'> => r.t === 'start')?.pattern;
  return {
    check,
    outcome: status === undefined ? undefined : outcomeOf(check, recs, status, pageReports),
    exitStatus: status ?? null,
    pages: recs.find((r): r is Rec<'done'> => r.t === 'done')?.pages ?? pageReports.length,
    pageReports,
    seedPrintf: recs.find((r): r is Rec<'seed-printf'> => r.t === 'seed-printf')?.text,
    trace: acc.traces.get(check) ?? [],
    ...aliasesOf(recs),
    ...readFindingOf(recs),
    ...(pattern ? { pattern } : {}),
  };
}

export function observeJob(records: readonly GuestRecord[], checks: readonly CheckName[]): JobObservation {
  const obs: JobObservation = { steps: {}, checks: [], kmsg: [], tracing: false, complete: false, stray: [], vmallocLeft: [], tainted: undefined, reservedFreed: undefined, guestState: {}, vmallocNew: [], labRuns: [] };
  const acc: PerCheck = { recs: new Map(), exits: new Map(), traces: new Map(), current: undefined, vmalloc: { before: [], after: [], seen: false } };
  for (const r of records) {
    // The guest is the driver's to run: a record of the wrong shape (a field of another type) is stray text, not a crash of mmaplab.
    try {
      fold(obs, acc, r);
    } catch {
      obs.stray.push(JSON.stringify(r).slice(0, 200));
    }
  }
  // Only once rmmod succeeded does the job read the areas again.
  if (acc.vmalloc.seen && obs.steps.rmmod?.ok) obs.vmallocNew.push(...vmallocLeftOver(acc.vmalloc.before, acc.vmalloc.after));
  obs.vmallocLeft.push(...obs.vmallocNew);
  obs.checks = checks.map((c) => observeCheck(c, acc));
  return obs;
}

/** The kernel log lines between a job's "check <name> begin" and "end" markers. */
export function checkWindow(lines: readonly KernelLine[], check: CheckName): { from: number; to: number } | undefined {
  const from = lines.findIndex((l) => l.text === `mmaplab: check ${check} begin`);
  if (from < 0) return undefined;
  const rel = lines.slice(from + 1).findIndex((l) => l.text.startsWith(`mmaplab: check ${check} end`));
  return { from, to: rel < 0 ? lines.length : from + 1 + rel };
}

export function isMarker(text: string): boolean {
  return /^mmaplab: (job \d+ (begin|end)|step \w+|check [\w-]+ (begin|end.*))$/.test(text);
}
