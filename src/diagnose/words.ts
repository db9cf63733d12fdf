/**
 * Outcomes in words: the long verdict of a cell and the short one the grid
 * shows (the short one is the outcome's code, model/outcome). Shared by the
 * renderers and by `check`'s verdicts.
 */
import type { CheckResult, Outcome, OutcomeKind } from '../model/outcome.js';

type Formatters = { [K in OutcomeKind]: (o: Extract<Outcome, { kind: K }>) => string };

/** The long verdict. Every outcome kind must have one here, or this fails to compile. */
const VERDICT: Formatters = {
  ok: (o) => `${o.pagesOk}/${o.pages} page${o.pages === 1 ? '' : 's'} ${o.pattern ?? 'as written'}`,
  'wrong-data': (o) =>
    o.firstBad.expectIndex === null
      ? `wrong data: ${o.pagesOk}/${o.pages} pages ok; page ${o.firstBad.page} holds ${o.firstBad.word}`
      : `wrong data: ${o.pagesOk}/${o.pages} pages ok; page ${o.firstBad.page} shows page ${o.firstBad.index} (${o.firstBad.word}), expected page ${o.firstBad.expectIndex}`,
  sigbus: (o) => `SIGBUS at page ${o.page ?? '?'} (${o.code}, addr ${o.addr})`,
  sigsegv: (o) => `SIGSEGV at page ${o.page ?? '?'} (${o.code}, addr ${o.addr})`,
  'mmap-failed': (o) => `mmap() failed: ${o.errno} (${o.message})`,
  'open-failed': (o) => `open() failed: ${o.errno} (${o.message})`,
  'write-lost': (o) => `the write did not reach the driver (${o.seen} there instead)`,
  'write-allowed': (o) => `a write into a read-only mapping went through${o.reached ? ' and changed the buffer' : ''}: the page-table entries are writable`,
  'write-leaked': (o) => `the private write leaked into ${o.via === 'read' ? 'the driver' : 'a shared mapping'}`,
  'mprotect-denied': (o) => `mprotect(PROT_WRITE) refused: ${o.errno}`,
  killed: (o) => `killed by ${o.signal} (exit status ${o.status})`,
  crash: (o) => `kernel crash: ${o.title}`,
  lost: (o) => `connection to the target lost: ${o.reason}`,
  hang: (o) => `hang in ${o.step}${o.evidence ? ` (${o.evidence})` : ''}`,
  flood: (o) => `the driver printed ${o.lines} lines in ${o.seconds} s during ${o.step} and was stopped: the console could not keep up`,
  'not-run': (o) => `not run: ${o.reason}`,
  skipped: (o) => `skipped: ${o.reason}`,
};

export function verdict(o: Outcome): string {
  return (VERDICT[o.kind] as (x: Outcome) => string)(o);
}

/** The long verdict of a cell: a passing write, isolation or mprotect check says what passed. */
export function cellVerdict(r: CheckResult): string {
  if (r.outcome.kind === 'ok') {
    const page = r.outcome.pattern ? `page 0 still reads ${r.outcome.pattern}` : 'page 0 still reads as written';
    if (r.check === 'shared-write') return 'the write reached the driver (read() sees it)';
    if (r.check === 'private-isolation') return `the write stayed private (neither read() nor MAP_SHARED sees it); ${page}`;
    if (r.check === 'mprotect') return `mprotect(PROT_WRITE) allowed; ${page}`;
  }
  return verdict(r.outcome);
}
