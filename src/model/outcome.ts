/**
 * What one check saw, as data: the outcome userspace met, what the lab
 * expected, the traced calls and the explanation. Every report, the matrix,
 * JUnit and grading read these.
 */
import type { CheckName, MapMode } from './checks.js';
import type { KernelLine, KernelProblem } from './kernel-log.js';
import type { MappingPicture } from './picture.js';

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
  /** A write into a read-only mapping that did not fault: the driver installed writable page-table entries; reached: its buffer shows it. */
  | { kind: 'write-allowed'; reached: boolean }
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
  /** The guest printed more console lines than a lab job ever does while this check ran, and was stopped. */
  | { kind: 'flood'; step: string; lines: number; seconds: number }
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
  /** The caller's file:line in the driver's source, and that line, when the built module resolved it. */
  callerSource?: string;
  callerCode?: string;
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

/** What the device's read() did with the word a MAP_SHARED mapping wrote (shared-write's probe). */
export type ReadBehaviour =
  /** read() failed: EINVAL is a driver with no .read at all. */
  | { kind: 'failed'; err: string }
  /** pread() is refused (ESPIPE): a stream device (nonseekable_open), whose read() has no offset to honour. */
  | { kind: 'not-seekable' }
  /** read() at the word's offset returned 0, end of file. */
  | { kind: 'eof'; offset: number }
  /** read() said it returned n bytes and left the caller's buffer as it was. */
  | { kind: 'copies-nothing'; n: number; offset: number }
  /** read() at the offset returned the bytes at offset 0. */
  | { kind: 'ignores-offset'; offset: number }
  | { kind: 'sees-write'; offset: number }
  /** read() honours the offset and copies, but not the word the mapping wrote. */
  | { kind: 'misses-write'; offset: number; value: string };

export interface ReadFinding {
  read: ReadBehaviour;
  /** Whether a second MAP_SHARED mapping of the device shows the write (undefined: it could not be mapped). */
  secondMapping: boolean | undefined;
  /** Whether read() from offset 0 shows the write at its place (a read() that ignores offsets still can). */
  fromStart: boolean;
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
  /** shared-write: what read() and a second mapping showed of the write. */
  readFinding?: ReadFinding;
  /** The buffer page each mapped page showed (none: nothing was mapped and read back, or nothing tells the pages apart). */
  picture?: MappingPicture;
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
  end: 'done' | 'guest-died' | 'timeout' | 'stalled' | 'flooded' | 'connection-lost';
  problems: KernelProblem[];
  /** end 'flooded': how much the guest printed before it was stopped. */
  flood?: Flood;
}

/**
 * More console lines than this in one job is a flood: a lab job prints some
 * tens (an oops, some hundred); a driver printing in a loop prints thousands a
 * second, and the serial console holds the printing task up behind them.
 */
export const FLOOD_LINES = 5_000;

/** A guest that printed more console lines in one job than a lab job ever does: lines seen, in how many seconds. */
export interface Flood {
  lines: number;
  seconds: number;
}

type Codes = { [K in OutcomeKind]: (o: Extract<Outcome, { kind: K }>) => string };

/**
 * An outcome's short code, at most 9 characters: the grid's cell and the
 * matrix's value in the JSON (part of the schema, so not a display label).
 * Every outcome kind must have one here, or this fails to compile.
 */
const CODES: Codes = {
  ok: () => 'ok',
  'wrong-data': (o) => `wrong@${o.firstBad.page}`,
  sigbus: (o) => `SIGBUS@${o.page ?? '?'}`,
  sigsegv: (o) => `SEGV@${o.page ?? '?'}`,
  'mmap-failed': (o) => o.errno,
  'open-failed': (o) => `open:${o.errno}`.slice(0, 9),
  'write-lost': () => 'lost',
  'write-leaked': () => 'leaked',
  'write-allowed': () => 'RO-WRITABLE',
  'mprotect-denied': (o) => `mp:${o.errno}`,
  killed: (o) => o.signal.replace(/^SIG/, '').slice(0, 9),
  crash: () => 'CRASH',
  lost: () => 'LOST',
  hang: () => 'HANG',
  flood: () => 'FLOOD',
  'not-run': () => '-',
  skipped: () => 'skip',
};

export function outcomeCode(o: Outcome): string {
  return (CODES[o.kind] as (x: Outcome) => string)(o);
}
