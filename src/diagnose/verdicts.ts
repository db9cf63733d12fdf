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

export function checkItems(f: CheckFindings): CheckItem[] {
  const items: CheckItem[] = [];
  if (!f.build.ok) {
    // A known kernel API change behind the error says more than "fix the first error".
    const changes = apiChangesFor(f.build.diagnostics);
    items.push({
      id: 'builds',
      title: 'builds',
      verdict: 'fail',
      reason: f.build.message,
      details: [...f.build.diagnostics.filter((d) => d.severity !== 'note').map(formatDiagnostic), ...changes.map((c) => `${c.summary} Fix: ${c.fix}`)],
      hint: changes.length ? changes.map((c) => c.fix).join('; ') : 'fix the first error; the full build log is kept',
      ...(changes.length ? { apiChanges: changes } : {}),
    });
    for (const [id, title] of [['loads', 'loads'], ['device', 'the device opens']] as const) items.push(skipped(id, title, 'the driver did not build'));
    return items;
  }
  items.push({
    id: 'builds',
    title: 'builds',
    verdict: 'pass',
    reason: f.build.warnings.length ? `${f.build.warnings.length} warning${f.build.warnings.length === 1 ? '' : 's'}` : 'no warnings',
    ...(f.build.warnings.length ? { details: f.build.warnings.map(formatDiagnostic), hint: 'warnings in kernel code are often bugs: read them' } : {}),
  });
  const ins = f.insmod;
  items.push(
    !ins
      ? { id: 'loads', title: 'loads', verdict: 'fail', reason: 'insmod never finished', hint: 'look at the console: the module init hung or crashed' }
      : ins.ok
        ? { id: 'loads', title: 'loads', verdict: 'pass', reason: `insmod ${f.moduleName}.ko` }
        : { id: 'loads', title: 'loads', verdict: 'fail', reason: `insmod failed (status ${ins.status}): ${ins.output}`, hint: 'the module init returned an error: check every allocation and registration in it' },
  );
  if (!ins?.ok) return [...items, skipped('device', 'the device opens', 'the driver did not load')];

  const cell = (check: string) => f.results.find((r) => r.check === check);
  const shared = cell('shared');
  const openFailed = f.results.find((r) => r.outcome.kind === 'open-failed');
  items.push(
    f.device && !f.device.ok
      ? { id: 'device', title: 'the device opens', verdict: 'fail', reason: f.device.output || 'no device found', hint: 'register a character device (alloc_chrdev_region/register_chrdev_region + cdev_add, or misc_register), or name it with --device' }
      : openFailed && openFailed.outcome.kind === 'open-failed'
        ? { id: 'device', title: 'the device opens', verdict: 'fail', reason: `open() failed: ${openFailed.outcome.errno} (${openFailed.outcome.message})`, hint: 'the file_operations need an .open that succeeds (or none)' }
        : { id: 'device', title: 'the device opens', verdict: 'pass', reason: f.device?.output.trim() || 'opened' },
  );

  items.push(
    !shared || shared.outcome.kind === 'not-run' || shared.outcome.kind === 'open-failed'
      ? skipped('shared', 'MAP_SHARED reads the pattern on every page', 'the check did not run')
      : shared.outcome.kind === 'ok'
        ? { id: 'shared', title: 'MAP_SHARED reads the pattern on every page', verdict: 'pass', reason: `${shared.outcome.pagesOk}/${shared.outcome.pages} pages ${f.pattern}` }
        : { id: 'shared', title: 'MAP_SHARED reads the pattern on every page', verdict: 'fail', reason: cellVerdict(shared), ...(shared.explanation ? { hint: shared.explanation.fixes[0] ?? shared.explanation.summary, details: [shared.explanation.summary, ...shared.explanation.why] } : {}) },
  );
  items.push(distinctPages(shared));

  const priv = cell('private');
  const privOk = priv && (priv.outcome.kind === 'ok' || priv.outcome.kind === 'mmap-failed');
  items.push(
    !priv || priv.outcome.kind === 'not-run'
      ? skipped('private', 'MAP_PRIVATE works or fails cleanly at mmap()', priv?.outcome.kind === 'not-run' ? priv.outcome.reason : 'the check did not run')
      : privOk
        ? { id: 'private', title: 'MAP_PRIVATE works or fails cleanly at mmap()', verdict: 'pass', reason: cellVerdict(priv) }
        : { id: 'private', title: 'MAP_PRIVATE works or fails cleanly at mmap()', verdict: 'fail', reason: cellVerdict(priv), ...(priv.explanation ? { hint: priv.explanation.fixes[0] ?? priv.explanation.summary, details: [priv.explanation.summary, ...priv.explanation.why] } : {}) },
  );

  const write = cell('shared-write');
  items.push(
    !write || write.outcome.kind === 'not-run'
      ? skipped('write', 'a write through MAP_SHARED reaches the driver', 'the check did not run')
      : write.outcome.kind === 'skipped'
        ? skipped('write', 'a write through MAP_SHARED reaches the driver', write.outcome.reason)
        : write.outcome.kind === 'ok'
          ? { id: 'write', title: 'a write through MAP_SHARED reaches the driver', verdict: 'pass', reason: 'read() sees it' }
          : { id: 'write', title: 'a write through MAP_SHARED reaches the driver', verdict: 'fail', reason: cellVerdict(write), ...(write.explanation ? { hint: write.explanation.fixes[0] ?? write.explanation.summary } : {}) },
  );

  const over = cell('oversize');
  const overTitle = 'a mapping larger than the buffer is refused';
  items.push(
    !over || over.outcome.kind === 'not-run'
      ? skipped('oversize', overTitle, over?.outcome.kind === 'not-run' ? over.outcome.reason : 'the check did not run')
      : over.outcome.kind === 'mmap-failed'
        ? { id: 'oversize', title: overTitle, verdict: 'pass', reason: `mmap() one page past the buffer refused with ${over.outcome.errno}` }
        : {
            id: 'oversize',
            title: overTitle,
            verdict: 'fail',
            reason: `a mapping one page larger than the buffer was accepted: ${cellVerdict(over)}`,
            hint: 'refuse what the buffer cannot back: if (vma_pages(vma) + vma->vm_pgoff > NPAGES) return -EINVAL;',
          },
  );

  const rm = f.rmmod;
  items.push(
    !rm
      ? { id: 'unloads', title: 'rmmod succeeds', verdict: 'fail', reason: 'rmmod was not reached or never finished', hint: 'an earlier crash or hang stopped the machine; see above' }
      : rm.ok
        ? { id: 'unloads', title: 'rmmod succeeds', verdict: 'pass', reason: `rmmod ${f.moduleName}` }
        : { id: 'unloads', title: 'rmmod succeeds', verdict: 'fail', reason: `rmmod failed (status ${rm.status}): ${rm.output}`, hint: 'the module is still in use, or its exit hung: release every reference (mappings, cdev) in the exit function' },
  );

  items.push(
    f.problems.length === 0
      ? { id: 'kernel', title: 'no kernel warning, oops or "Bad page state"', verdict: 'pass', reason: 'the kernel log is clean' }
      : {
          id: 'kernel',
          title: 'no kernel warning, oops or "Bad page state"',
          verdict: 'fail',
          reason: `${f.problems.length} problem${f.problems.length === 1 ? '' : 's'}: ${f.problems[0]!.title}`,
          details: countSame(f.problems.map((p) => `${p.title}${p.location ? ` at ${p.location}` : ''}${p.locationSource ?? p.source ? ` (${p.locationSource ?? p.source})` : ''}`)),
          hint: 'the first problem is usually the cause; its source line is shown where the module could be resolved',
        },
  );

  const reservedTitle = 'no page freed while still marked reserved';
  items.push(
    !rm?.ok || f.reservedFreed === undefined
      ? skipped('reserved', reservedTitle, !rm?.ok ? 'the module was not unloaded' : 'needs kprobe events and PG_reserved\'s bit from the headers')
      : f.reservedFreed > 0
        ? {
            id: 'reserved',
            title: reservedTitle,
            verdict: 'fail',
            reason: `rmmod freed ${f.reservedFreed} page${f.reservedFreed === 1 ? '' : 's'} still marked PG_reserved (a kernel with DEBUG_VM reports this as "Bad page state")`,
            hint: 'ClearPageReserved() every page that init SetPageReserved(), before vfree()/__free_pages()',
          }
        : { id: 'reserved', title: reservedTitle, verdict: 'pass', reason: 'rmmod freed no reserved page' },
  );

  const leaks = leakedAreas(f.vmallocLeft, f.moduleName);
  items.push(
    !rm?.ok
      ? skipped('leaks', 'no vmalloc area left after rmmod', 'the module was not unloaded')
      : leaks.length
        ? { id: 'leaks', title: 'no vmalloc area left after rmmod', verdict: 'fail', reason: `${leaks.length} vmalloc area${leaks.length === 1 ? '' : 's'} still allocated`, details: leaks, hint: 'vfree() in the exit function everything vmalloc()ed in init' }
        : { id: 'leaks', title: 'no vmalloc area left after rmmod', verdict: 'pass', reason: 'none left' },
  );

  if (f.tainted !== undefined) {
    const letters = taintLetters(f.tainted);
    items.push({
      id: 'taint',
      title: 'taint flags',
      verdict: 'pass',
      reason: letters.length ? letters.map((l) => `${l} (${TAINT_MEANING[l] ?? 'see the kernel docs'})`).join(', ') : 'not tainted',
    });
  }
  return items;
}
