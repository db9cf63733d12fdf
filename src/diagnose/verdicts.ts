/**
 * `mmaplab check`'s verdicts: from a student driver's build and the guest's
 * findings to named checks, each pass, fail or skip with a one-line reason and
 * a hint. Pure, like the assessment it reads.
 */
import { formatDiagnostic, type Diagnostic } from '../model/diagnostic.js';
import type { KernelProblem } from '../model/kernel-log.js';
import type { CheckResult, StepResult } from '../model/outcome.js';
import { cellVerdict } from './words.js';
import { apiChangesFor } from './api-changes.js';
import type { CheckName } from '../model/checks.js';
import type { CheckItem } from '../model/report.js';

/** The mapping checks `check` runs, in order. */
export const STUDENT_CHECKS: readonly CheckName[] = ['shared', 'private', 'shared-write', 'oversize'];

export interface CheckFindings {
  /** The build: its warnings, or the diagnostics it failed with. */
  build: { ok: true; warnings: Diagnostic[] } | { ok: false; message: string; diagnostics: Diagnostic[] };
  insmod?: StepResult | undefined;
  device?: StepResult | undefined;
  rmmod?: StepResult | undefined;
  /** The mapping checks, by name (shared, private, shared-write). */
  results: readonly CheckResult[];
  problems: readonly KernelProblem[];
  vmallocLeft: readonly string[];
  tainted: number | undefined;
  /** Pages rmmod freed while still PG_reserved; undefined when it could not be watched. */
  reservedFreed?: number | undefined;
  moduleName: string;
  pattern: string;
}

const TAINT = 'PFSRMBUDAWCIOELKXTN';
const TAINT_MEANING: Record<string, string> = {
  P: 'proprietary module', O: 'out-of-tree module', E: 'unsigned module', W: 'a kernel warning', D: 'a kernel oops (died)',
  G: 'GPL modules only', L: 'a soft lockup', B: 'bad page referenced', U: 'userspace-defined', C: 'staging driver',
};

export function taintLetters(mask: number): string[] {
  return [...TAINT].filter((_, bit) => mask & (1 << bit));
}

/** The same line several times (a crash in each pass) shown once, with a count. */
function countSame(lines: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
  return [...counts].map(([l, n]) => (n > 1 ? `${l} (${n}×)` : l));
}

const skipped = (id: string, title: string, why: string): CheckItem => ({ id, title, verdict: 'skip', reason: why });

/**
 * vmallocinfo lines that belong to the unloaded module: its name, or a caller
 * address in module space that no longer resolves to a symbol.
 */
export function leakedAreas(lines: readonly string[], module: string): string[] {
  return lines.filter((l) => l.includes(`[${module}]`) || /(^|\s)0xffffffffc[0-9a-f]{7,}(\s|$)/.test(l));
}

function distinctPages(r: CheckResult | undefined): CheckItem {
  const title = 'every page is a different page';
  const fail = (a: number, b: number, how: string): CheckItem => ({
    id: 'distinct-pages',
    title,
    verdict: 'fail',
    reason: `pages ${a} and ${b} are the same physical page (${how})`,
    hint: 'map page i of the buffer at vm_start + i * PAGE_SIZE: vmalloc_to_pfn(buf + i * PAGE_SIZE), not the first page again',
  });
  if (!r || r.outcome.kind !== 'ok') return skipped('distinct-pages', title, 'needs every page readable through MAP_SHARED');
  const pfns = r.pageReports.map((p) => p.pfn).filter((p): p is string => typeof p === 'string');
  if (pfns.length === r.pageReports.length && pfns.length > 0) {
    const first = new Map<string, number>();
    for (const p of r.pageReports) {
      const seen = first.get(p.pfn!);
      if (seen !== undefined) return fail(seen, p.page, `frame ${p.pfn}`);
      first.set(p.pfn!, p.page);
    }
    return { id: 'distinct-pages', title, verdict: 'pass', reason: `${pfns.length} distinct page frames` };
  }
  // A PFN mapping hides its frames from pagemap: the test program wrote a marker into each page instead.
  const a = r.aliases;
  if (!a?.tested) return skipped('distinct-pages', title, a?.why ? `page frames unknown and no writable mapping to test with (${a.why})` : 'page frames unknown');
  const pair = a.pairs[0];
  if (pair) {
    const other = pair[1] < 0 ? pair[0] : pair[1];
    return fail(Math.min(pair[0], other), Math.max(pair[0], other), 'a marker written into one showed in the other');
  }
  return { id: 'distinct-pages', title, verdict: 'pass', reason: `${r.pageReports.length} pages kept ${r.pageReports.length} different markers` };
}

/** A named check: its id and title, and the three ways it can end. */
function named(id: string, title: string) {
  return {
    pass: (reason: string, more: Partial<CheckItem> = {}): CheckItem => ({ id, title, verdict: 'pass', reason, ...more }),
    fail: (reason: string, more: Partial<CheckItem> = {}): CheckItem => ({ id, title, verdict: 'fail', reason, ...more }),
    skip: (reason: string): CheckItem => skipped(id, title, reason),
  };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A failed mapping check's hint and reasons, from the cell's explanation. */
function explained(r: CheckResult, withDetails = true): Partial<CheckItem> {
  if (!r.explanation) return {};
  return { hint: r.explanation.fixes[0] ?? r.explanation.summary, ...(withDetails ? { details: [r.explanation.summary, ...r.explanation.why] } : {}) };
}

function builds(build: CheckFindings['build']): CheckItem {
  const c = named('builds', 'builds');
  if (build.ok) {
    const w = build.warnings;
    return c.pass(w.length ? plural(w.length, 'warning') : 'no warnings', w.length ? { details: w.map(formatDiagnostic), hint: 'warnings in kernel code are often bugs: read them' } : {});
  }
  // A known kernel API change behind the error says more than "fix the first error".
  const changes = apiChangesFor(build.diagnostics);
  return c.fail(build.message, {
    details: [...build.diagnostics.filter((d) => d.severity !== 'note').map(formatDiagnostic), ...changes.map((x) => `${x.summary} Fix: ${x.fix}`)],
    hint: changes.length ? changes.map((x) => x.fix).join('; ') : 'fix the first error; the full build log is kept',
    ...(changes.length ? { apiChanges: changes } : {}),
  });
}

function loads(f: CheckFindings): CheckItem {
  const c = named('loads', 'loads');
  const ins = f.insmod;
  if (!ins) return c.fail('insmod never finished', { hint: 'look at the console: the module init hung or crashed' });
  if (ins.ok) return c.pass(`insmod ${f.moduleName}.ko`);
  return c.fail(`insmod failed (status ${ins.status}): ${ins.output}`, { hint: 'the module init returned an error: check every allocation and registration in it' });
}

function deviceOpens(f: CheckFindings): CheckItem {
  const c = named('device', 'the device opens');
  if (f.device && !f.device.ok) {
    return c.fail(f.device.output || 'no device found', { hint: 'register a character device (alloc_chrdev_region/register_chrdev_region + cdev_add, or misc_register), or name it with --device' });
  }
  const open = f.results.map((r) => r.outcome).find((o) => o.kind === 'open-failed');
  if (open?.kind === 'open-failed') return c.fail(`open() failed: ${open.errno} (${open.message})`, { hint: 'the file_operations need an .open that succeeds (or none)' });
  return c.pass(f.device?.output.trim() || 'opened');
}

function sharedReads(r: CheckResult | undefined, pattern: string): CheckItem {
  const c = named('shared', 'MAP_SHARED reads the pattern on every page');
  if (!r || r.outcome.kind === 'not-run' || r.outcome.kind === 'open-failed') return c.skip('the check did not run');
  if (r.outcome.kind === 'ok') return c.pass(`${r.outcome.pagesOk}/${r.outcome.pages} pages ${pattern}`);
  return c.fail(cellVerdict(r), explained(r));
}

/** A mapping check that could not open the device says nothing of the mapping: the device check fails for it. */
const NO_DEVICE = 'the device did not open';

function privateWorks(r: CheckResult | undefined): CheckItem {
  const c = named('private', 'MAP_PRIVATE works or fails cleanly at mmap()');
  if (!r) return c.skip('the check did not run');
  if (r.outcome.kind === 'open-failed') return c.skip(NO_DEVICE);
  if (r.outcome.kind === 'not-run') return c.skip(r.outcome.reason);
  if (r.outcome.kind === 'ok' || r.outcome.kind === 'mmap-failed') return c.pass(cellVerdict(r));
  return c.fail(cellVerdict(r), explained(r));
}

function writeReaches(r: CheckResult | undefined): CheckItem {
  const c = named('write', 'a write through MAP_SHARED reaches the driver');
  if (!r || r.outcome.kind === 'not-run') return c.skip('the check did not run');
  if (r.outcome.kind === 'open-failed') return c.skip(NO_DEVICE);
  if (r.outcome.kind === 'skipped') return c.skip(r.outcome.reason);
  if (r.outcome.kind === 'ok') return c.pass('read() sees it');
  return c.fail(cellVerdict(r), explained(r, false));
}

function oversizeRefused(r: CheckResult | undefined): CheckItem {
  const c = named('oversize', 'a mapping larger than the buffer is refused');
  if (!r) return c.skip('the check did not run');
  if (r.outcome.kind === 'not-run') return c.skip(r.outcome.reason);
  if (r.outcome.kind === 'open-failed') return c.skip(NO_DEVICE);
  if (r.outcome.kind === 'mmap-failed') return c.pass(`mmap() one page past the buffer refused with ${r.outcome.errno}`);
  return c.fail(`a mapping one page larger than the buffer was accepted: ${cellVerdict(r)}`, { hint: 'refuse what the buffer cannot back: if (vma_pages(vma) + vma->vm_pgoff > NPAGES) return -EINVAL;' });
}

function unloads(f: CheckFindings): CheckItem {
  const c = named('unloads', 'rmmod succeeds');
  const rm = f.rmmod;
  if (!rm) return c.fail('rmmod was not reached or never finished', { hint: 'an earlier crash or hang stopped the machine; see above' });
  if (rm.ok) return c.pass(`rmmod ${f.moduleName}`);
  return c.fail(`rmmod failed (status ${rm.status}): ${rm.output}`, { hint: 'the module is still in use, or its exit hung: release every reference (mappings, cdev) in the exit function' });
}

function kernelClean(problems: CheckFindings['problems']): CheckItem {
  const c = named('kernel', 'no kernel warning, oops or "Bad page state"');
  if (problems.length === 0) return c.pass('the kernel log is clean');
  return c.fail(`${plural(problems.length, 'problem')}: ${problems[0]!.title}`, {
    details: countSame(problems.map((p) => `${p.title}${p.location ? ` at ${p.location}` : ''}${p.locationSource ?? p.source ? ` (${p.locationSource ?? p.source})` : ''}`)),
    hint: 'the first problem is usually the cause; its source line is shown where the module could be resolved',
  });
}

function noReservedFreed(f: CheckFindings): CheckItem {
  const c = named('reserved', 'no page freed while still marked reserved');
  if (!f.rmmod?.ok) return c.skip('the module was not unloaded');
  if (f.reservedFreed === undefined) return c.skip("needs kprobe events and PG_reserved's bit from the headers");
  if (f.reservedFreed <= 0) return c.pass('rmmod freed no reserved page');
  return c.fail(`rmmod freed ${plural(f.reservedFreed, 'page')} still marked PG_reserved (a kernel with DEBUG_VM reports this as "Bad page state")`, {
    hint: 'ClearPageReserved() every page that init SetPageReserved(), before vfree()/__free_pages()',
  });
}

function noLeaks(f: CheckFindings): CheckItem {
  const c = named('leaks', 'no vmalloc area left after rmmod');
  if (!f.rmmod?.ok) return c.skip('the module was not unloaded');
  const leaks = leakedAreas(f.vmallocLeft, f.moduleName);
  if (!leaks.length) return c.pass('none left');
  return c.fail(`${plural(leaks.length, 'vmalloc area')} still allocated`, { details: leaks, hint: 'vfree() in the exit function everything vmalloc()ed in init' });
}

function taint(mask: number): CheckItem {
  const letters = taintLetters(mask);
  return named('taint', 'taint flags').pass(letters.length ? letters.map((l) => `${l} (${TAINT_MEANING[l] ?? 'see the kernel docs'})`).join(', ') : 'not tainted');
}

/** Every named check, in the order the report shows them; what an earlier failure makes impossible is skipped. */
export function checkItems(f: CheckFindings): CheckItem[] {
  const built = builds(f.build);
  if (!f.build.ok) return [built, skipped('loads', 'loads', 'the driver did not build'), skipped('device', 'the device opens', 'the driver did not build')];
  const loaded = loads(f);
  if (!f.insmod?.ok) return [built, loaded, skipped('device', 'the device opens', 'the driver did not load')];
  const cell = (check: string) => f.results.find((r) => r.check === check);
  return [
    built,
    loaded,
    deviceOpens(f),
    sharedReads(cell('shared'), f.pattern),
    distinctPages(cell('shared')),
    privateWorks(cell('private')),
    writeReaches(cell('shared-write')),
    oversizeRefused(cell('oversize')),
    unloads(f),
    kernelClean(f.problems),
    noReservedFreed(f),
    noLeaks(f),
    ...(f.tainted === undefined ? [] : [taint(f.tainted)]),
  ];
}
