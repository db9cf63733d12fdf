/**
 * `mmaplab check`'s verdicts: from a student driver's build and the guest's
 * findings to named checks, each pass, fail or skip with a one-line reason and
 * a hint. Pure, like the assessment it reads.
 */
import { formatDiagnostic, type Diagnostic } from '../model/diagnostic.js';
import { FATAL_KINDS, LOCKUP_KINDS, problemPlace, type KernelProblem } from '../model/kernel-log.js';
import type { CheckResult, StepResult } from '../model/outcome.js';
import { cellVerdict } from './words.js';
import { apiChangesFor } from './api-changes.js';
import { buildMistakesFor } from './build-mistakes.js';
import { causeOf } from './kernel-causes.js';
import { readWords } from '../parse/read-probe.js';
import { describeCalls } from '../parse/trace.js';
import { leakedAreas } from '../parse/job-records.js';
import type { CheckName } from '../model/checks.js';
import type { CheckItem } from '../model/report.js';
import { bytesOf, isSwapped, LAB_WORD, wordText, type PatternChoice } from '../model/pattern.js';

/** The mapping checks `check` runs, in order. */
export const STUDENT_CHECKS: readonly CheckName[] = ['shared', 'private', 'shared-write', 'oversize', 'readonly'];

export interface CheckFindings {
  /** The build: its warnings, or the diagnostics it failed with. */
  /** hint: what the build's own failure says to do, when it is not a compile error (a build stopped at its limit, a submission refused). */
  build: { ok: true; warnings: Diagnostic[] } | { ok: false; message: string; diagnostics: Diagnostic[]; hint?: string };
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
  pattern: PatternChoice;
}

const TAINT = 'PFSRMBUDAWCIOELKXTN';
const TAINT_MEANING: Record<string, string> = {
  P: 'proprietary module', O: 'out-of-tree module', E: 'unsigned module', W: 'a kernel warning', D: 'a kernel oops (died)',
  G: 'GPL modules only', L: 'a soft lockup', B: 'bad page referenced', U: 'userspace-defined', C: 'staging driver',
};

export function taintLetters(mask: number): string[] {
  return [...TAINT].filter((_, bit) => mask & (1 << bit));
}


/** "0–15", "0, 3, 7": a list of page numbers, runs folded. */
function pageList(pages: readonly number[]): string {
  const sorted = [...pages].sort((a, b) => a - b);
  const consecutive = sorted.every((p, i) => i === 0 || p === sorted[i - 1]! + 1);
  if (consecutive && sorted.length > 2) return `${sorted[0]}–${sorted[sorted.length - 1]}`;
  return sorted.length === 2 ? `${sorted[0]} and ${sorted[1]}` : sorted.join(', ');
}

/** Pages that showed one physical page, as groups of two or more (by frame, or by whose marker they showed). */
function samePageGroups(keys: ReadonlyMap<number, string>): number[][] {
  const groups = new Map<string, number[]>();
  for (const [page, key] of keys) groups.set(key, [...(groups.get(key) ?? []), page]);
  return [...groups.values()].filter((g) => g.length > 1);
}

function aliasFailure(groups: number[][], total: number, how: string): CheckItem {
  const all = groups.length === 1 && groups[0]!.length === total;
  const reason = all
    ? `all ${total} pages map one physical page (the one page 0 maps; ${how})`
    : `${groups.map((g) => `pages ${pageList(g)} map one physical page`).join('; ')} (${how})`;
  return named('distinct-pages').fail(reason, {
    details: groups.map((g) => `mapped pages ${pageList(g)} show the same memory`),
    hint: all
      ? 'advance to the next page of the buffer on every step: remap page i with the pfn of buf + i * PAGE_SIZE (vmalloc_to_pfn), at vm_start + i * PAGE_SIZE'
      : 'map page i of the buffer at vm_start + i * PAGE_SIZE: check the offset each iteration adds, to the buffer and to the user address alike',
  });
}

function distinctPages(r: CheckResult | undefined): CheckItem {
  const c = named('distinct-pages');
  if (!r || r.outcome.kind !== 'ok') return c.skip('needs every page readable through MAP_SHARED');
  const pfns = r.pageReports.map((p) => p.pfn).filter((p): p is string => typeof p === 'string');
  if (pfns.length === r.pageReports.length && pfns.length > 0) {
    const groups = samePageGroups(new Map(r.pageReports.map((p) => [p.page, p.pfn!])));
    if (groups.length) return aliasFailure(groups, r.pageReports.length, 'by their page frames');
    return c.pass(`${pfns.length} distinct page frames`);
  }
  // A PFN mapping hides its frames from pagemap: the test program wrote a marker into each page instead.
  const a = r.aliases;
  if (!a?.tested) return c.skip(a?.why ? `page frames unknown and no writable mapping to test with (${a.why})` : 'page frames unknown');
  if (a.pairs.length) {
    // [page, the page whose marker it showed]: the pages showing one marker, with that page, are one page.
    const keys = new Map<number, string>();
    for (const [page, shows] of a.pairs) {
      const key = shows < 0 ? `?${page}` : String(shows);
      keys.set(page, key);
      if (shows >= 0 && !keys.has(shows)) keys.set(shows, key);
    }
    const groups = samePageGroups(keys);
    if (groups.length) return aliasFailure(groups, r.pageReports.length, 'a marker written into each showed in the others');
    return c.fail(`pages ${pageList(a.pairs.map((p) => p[0]))} lost the marker written into them`, { hint: 'map each page of the buffer once, at its own address' });
  }
  return c.pass(`${r.pageReports.length} pages kept ${r.pageReports.length} different markers`);
}

/** Every item's title, once: the report, JSON and grading show these. */
/** The checks of `check`, by id, in the order its report lists them (the rubric names them by id). */
export const ITEM_TITLES = {
  builds: 'builds',
  loads: 'loads',
  device: 'the device opens',
  shared: 'MAP_SHARED reads the pattern on every page',
  'distinct-pages': 'every page is a different page',
  private: 'MAP_PRIVATE works or fails cleanly at mmap()',
  write: 'a write through MAP_SHARED reaches the driver',
  read: 'read() returns the buffer at the file offset',
  oversize: 'a mapping larger than the buffer is refused',
  readonly: 'a read-only mapping cannot write the buffer',
  unloads: 'rmmod succeeds',
  kernel: 'no kernel warning, oops or "Bad page state"',
  reserved: 'no page freed while still marked reserved',
  leaks: 'no vmalloc area left after rmmod',
  taint: 'taint flags',
} as const;
export type ItemId = keyof typeof ITEM_TITLES;

/** A named check: its id and title, and the three ways it can end. */
function named(id: ItemId) {
  const title = ITEM_TITLES[id];
  return {
    pass: (reason: string, more: Partial<CheckItem> = {}): CheckItem => ({ id, title, verdict: 'pass', reason, ...more }),
    fail: (reason: string, more: Partial<CheckItem> = {}): CheckItem => ({ id, title, verdict: 'fail', reason, ...more }),
    skip: (reason: string): CheckItem => ({ id, title, verdict: 'skip', reason }),
  };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The traced calls at the driver's own lines: "vmmap.c:57: remap_pfn_range(...); returned -EINVAL 16×". */
function tracedAtSource(r: CheckResult): string[] {
  return r.traced.filter((t) => t.callerSource).map((t) => `${t.callerSource}: ${t.callerCode ?? `${t.fn}(...)`} → ${describeCalls(t)}`);
}

/** A failed mapping check's hint and reasons, from the cell's explanation. */
function explained(r: CheckResult, withDetails = true): Partial<CheckItem> {
  if (!r.explanation) return {};
  return { hint: r.explanation.fixes[0] ?? r.explanation.summary, ...(withDetails ? { details: [r.explanation.summary, ...tracedAtSource(r), ...r.explanation.why] } : {}) };
}

function builds(build: CheckFindings['build']): CheckItem {
  const c = named('builds');
  if (build.ok) {
    const w = build.warnings;
    const mistakes = buildMistakesFor(w);
    return c.pass(w.length ? plural(w.length, 'warning') : 'no warnings', w.length ? { details: [...w.map(formatDiagnostic), ...mistakes.map((m) => `${m.summary}. Fix: ${m.fix}`)], hint: 'warnings in kernel code are often bugs: read them' } : {});
  }
  // A known kernel API change behind the error says more than "fix the first error"; so does a known C mistake.
  const changes = apiChangesFor(build.diagnostics);
  // A line an API change explains (implicit vm_flags_set() on 6.1) is not also a missing #include.
  const mistakes = buildMistakesFor(build.diagnostics.filter((d) => apiChangesFor([d]).length === 0));
  const userspace = mistakes.find((m) => m.id === 'userspace-program');
  const suites = [...new Set(changes.map((x) => x.buildsOn).filter((x): x is string => !!x))];
  return c.fail(userspace ? userspace.summary : build.message, {
    details: [
      ...build.diagnostics.filter((d) => d.severity !== 'note').map(formatDiagnostic),
      ...changes.map((x) => `${x.summary} Fix: ${x.fix}${x.buildsOn ? ` As written, it builds on ${x.buildsOn}.` : ''}`),
      ...mistakes.filter((m) => m !== userspace).map((m) => `${m.summary}. Fix: ${m.fix}`),
    ],
    hint: userspace?.fix ?? (changes.length || mistakes.length ? [...changes.map((x) => x.fix), ...mistakes.map((m) => m.fix)].join('; ') : build.diagnostics.length === 0 && build.hint ? build.hint : 'fix the first error; the full build log is kept') + (suites.length ? ` (or check it as written on ${suites.map((x) => `--kernel ${x}`).join(' / ')})` : ''),
    ...(changes.length ? { apiChanges: changes } : {}),
    ...(mistakes.length ? { buildMistakes: mistakes } : {}),
  });
}


/** The first oops, BUG or panic the kernel reported while the guest was in `step`. */
function crashDuring(problems: readonly KernelProblem[], step: string): KernelProblem | undefined {
  return problems.find((p) => p.during === step && FATAL_KINDS.has(p.kind));
}

/** "kernel BUG at drv.c:100!" in the driver's own code: its BUG_ON() fired. */
function isBugOn(p: KernelProblem): boolean {
  return /^kernel BUG at /.test(p.title) && p.culprit?.how === 'rip';
}

/** The kernel's report that a CPU or task was stuck while the guest was in `step`. */
function stuckDuring(problems: readonly KernelProblem[], step: string): KernelProblem | undefined {
  return problems.find((p) => p.during === step && LOCKUP_KINDS.has(p.kind));
}

/** "never returns: the kernel reported a soft lockup in my_init+0x2a (pfnmap.c:63)". */
function stuckWords(p: KernelProblem): string {
  const place = problemPlace(p);
  if (p.kind === 'hung-task') return `never returns: it sleeps and is never woken (the kernel reported a hung task${place ? ` in ${place}` : ''})`;
  return `never returns: the kernel reported ${p.kind === 'soft-lockup' ? 'a soft lockup' : 'an RCU stall'}${place ? ` in ${place}` : ''}`;
}

/** The fix for a step that never returned, by how it was stuck: spinning or asleep. */
function stuckHint(p: KernelProblem, where: string): string {
  if (p.kind === 'hung-task') return `${where} waits for something that never happens: wake the wait queue where the condition becomes true, or wait with a timeout (wait_event_timeout) and fail`;
  return `a loop in ${where} that never ends: check that its counter advances and its condition can become false`;
}

/** "crashed: BUG: kernel NULL pointer dereference ... in my_init+0x44 (vmmap.c:57)". */
/** The OOM killer's first report during a step: the driver's allocation that used up the guest's memory, if it was the driver's. */
function oomDuring(problems: readonly KernelProblem[], step: string): KernelProblem | undefined {
  return problems.find((p) => p.during === step && p.kind === 'oom');
}

function oomWords(oom: KernelProblem, problems: readonly KernelProblem[], step: string): string {
  const place = problemPlace(oom);
  const panic = problems.find((p) => p.during === step && p.kind === 'panic');
  const end = panic ? `; the kernel then panicked: ${panic.title.replace(/^Kernel panic - not syncing: /, '')}` : '; the OOM killer killed tasks to go on';
  return `used up the guest's memory${place ? ` in ${place}` : ''} (${oom.title.replace(/:.*$/, '')})${end}`;
}

const OOM_HINT = "bound every allocation by what the device needs (its buffer's size, the VMA's length) and stop at the first failure: a loop that allocates until the kernel says no takes the whole machine's memory first";

function crashWords(p: KernelProblem): string {
  const place = problemPlace(p);
  if (p.kind === 'panic') return `called panic(): ${p.title.replace(/^Kernel panic - not syncing: /, '')}${place ? ` in ${place}` : ''}`;
  return `crashed: ${p.title}${place ? ` in ${place}` : ''}`;
}

function crashDetails(p: KernelProblem): string[] {
  return p.culprit?.code && p.culprit.source ? [`${p.culprit.source}: ${p.culprit.code}`] : [];
}

/** The check items a mapping check feeds, by check. */
const MAPPING_ITEMS: Partial<Record<CheckName, ItemId>> = { shared: 'shared', private: 'private', 'shared-write': 'write', oversize: 'oversize', readonly: 'readonly' };

/** A mapping check the kernel crashed in: the crash, at the driver's line, is all it says. */
function crashedIn(r: CheckResult | undefined, problems: readonly KernelProblem[]): CheckItem | undefined {
  const id = r && MAPPING_ITEMS[r.check];
  if (!id) return undefined;
  const step = `the ${r.check} check`;
  const oom = r.outcome.kind !== 'ok' ? oomDuring(problems, step) : undefined;
  if (oom) return named(id).fail(`the driver ${oomWords(oom, problems, step)}`, { details: crashDetails(oom), hint: OOM_HINT });
  if (r.outcome.kind === 'flood') {
    return named(id).fail(`the driver printed ${r.outcome.lines} lines in ${r.outcome.seconds} s during the ${r.check} check and was stopped: the console could not keep up`, {
      hint: 'print once per call, not in a loop: pr_info_once(), printk_ratelimited(), or pr_debug()/dev_dbg(), which are off unless dynamic debug turns them on',
    });
  }
  const stuck = r?.outcome.kind === 'hang' ? stuckDuring(problems, `the ${r.check} check`) : undefined;
  if (stuck) return named(id).fail(`the driver ${stuckWords(stuck)}`, { details: crashDetails(stuck), hint: stuckHint(stuck, 'the mapping code') });
  if (r?.outcome.kind !== 'crash') return undefined;
  const p = crashDuring(problems, `the ${r.check} check`);
  const cause = p && causeOf(p);
  return named(id).fail(p ? `the driver ${crashWords(p)}` : `the kernel crashed: ${r.outcome.title}`, {
    details: p ? crashDetails(p) : [],
    ...(cause ? { hint: cause.fix } : {}),
  });
}

function loads(f: CheckFindings): CheckItem {
  const c = named('loads');
  const ins = f.insmod;
  const oom = ins?.ok ? undefined : oomDuring(f.problems, 'insmod');
  if (oom) return c.fail(`module init ${oomWords(oom, f.problems, 'insmod')}`, { details: crashDetails(oom), hint: OOM_HINT });
  const crash = crashDuring(f.problems, 'insmod');
  if (crash) {
    return c.fail(`module init ${crashWords(crash)}`, {
      details: crashDetails(crash),
      hint:
        crash.kind === 'panic'
          ? 'never call panic() in a driver: report the error and return it (-ENOMEM, -EINVAL) from init'
          : isBugOn(crash)
            ? "a BUG_ON() (or BUG()) in the driver fired: its condition was true; for a condition the driver can meet, return an error (-EINVAL, -ENOMEM) from init instead"
            : 'the init function used memory it does not have: check that every pointer it writes through was allocated (and the allocation checked) before use',
    });
  }
  const stuck = stuckDuring(f.problems, 'insmod');
  if (!ins && stuck) return c.fail(`insmod never finished: module init ${stuckWords(stuck)}`, { details: crashDetails(stuck), hint: stuckHint(stuck, 'init') });
  if (!ins) return c.fail('insmod never finished', { hint: 'look at the console: the module init hung or crashed' });
  if (ins.ok) return c.pass(`insmod ${f.moduleName}.ko`);
  return c.fail(`insmod failed (status ${ins.status}): ${ins.output}`, { hint: 'the module init returned an error: check every allocation and registration in it' });
}

function deviceOpens(f: CheckFindings): CheckItem {
  const c = named('device');
  if (f.device && !f.device.ok) {
    return c.fail(f.device.output || 'no device found', { hint: 'register a character device (alloc_chrdev_region/register_chrdev_region + cdev_add, or misc_register), or name it with --device' });
  }
  const open = f.results.map((r) => r.outcome).find((o) => o.kind === 'open-failed');
  if (open?.kind === 'open-failed') return c.fail(`open() failed: ${open.errno} (${open.message})`, { hint: 'the file_operations need an .open that succeeds (or none)' });
  return c.pass(f.device?.output.trim() || 'opened');
}

/** Where the expected bytes came from, for a reason line. */
function patternSource(p: PatternChoice): string {
  switch (p.from) {
    case 'option':
      return '--expect-pattern';
    case 'lab-test':
      return `the lab's test, ${p.where ?? 'test/'}`;
    case 'driver':
      return `the driver writes them, ${p.where ?? ''}`;
    case 'default':
      return "the lab's bytes";
  }
}

function sharedReads(r: CheckResult | undefined, pattern: PatternChoice): CheckItem {
  const c = named('shared');
  if (!r || r.outcome.kind === 'not-run' || r.outcome.kind === 'open-failed') return c.skip('the check did not run');
  if (r.outcome.kind === 'ok') {
    const seen = r.outcome.pattern ?? pattern.word;
    const pages = `${r.outcome.pagesOk}/${r.outcome.pages} pages`;
    if (!isSwapped(pattern, seen)) {
      // The driver's own bytes, not the lab's: right by the driver, but the lab's test program would say otherwise.
      const notLab = pattern.from === 'driver' && pattern.word !== wordText(LAB_WORD) ? `; not the lab's ${bytesOf(LAB_WORD)}: with the lab's test program, --expect-pattern ${wordText(LAB_WORD)} holds it to those` : '';
      return c.pass(`${pages} start with ${pattern.bytes} (${patternSource(pattern)}${notLab})`);
    }
    const bytes = bytesOf(Number.parseInt(seen, 16));
    if (!pattern.strict) return c.pass(`${pages} start with ${bytes}, the other byte order of ${pattern.bytes} (${patternSource(pattern)}): the driver's own, consistently`);
    return c.fail(`byte order: ${pages} start with ${bytes}, but ${patternSource(pattern)} expects ${pattern.bytes}`, {
      hint: `store the four bytes one at a time (p[0] = 0x${pattern.bytes.split(' ')[0]}; p[1] = 0x${pattern.bytes.split(' ')[1]}; ...): a u32 store of ${seen} puts its low byte first on this little-endian CPU`,
    });
  }
  // Every page starts with one same word the sources never named: perhaps the driver's own pattern.
  const words = new Set(r.pageReports.map((p) => p.word));
  if (r.outcome.kind === 'wrong-data' && pattern.from === 'default' && words.size === 1 && r.pageReports.length > 1 && ![...words][0]!.match(/^0x0+$/)) {
    const w = [...words][0]!;
    return c.fail(`every page starts with ${bytesOf(Number.parseInt(w, 16))} (${w}), not the lab's ${pattern.bytes}, and the sources do not say which bytes the driver writes`, {
      hint: `if those are the bytes your driver writes, say so: --expect-pattern ${w}`,
    });
  }
  return c.fail(cellVerdict(r), explained(r));
}

/** A mapping check that could not open the device says nothing of the mapping: the device check fails for it. */
const NO_DEVICE = 'the device did not open';

function privateWorks(r: CheckResult | undefined): CheckItem {
  const c = named('private');
  if (!r) return c.skip('the check did not run');
  if (r.outcome.kind === 'open-failed') return c.skip(NO_DEVICE);
  if (r.outcome.kind === 'not-run') return c.skip(r.outcome.reason);
  if (r.outcome.kind === 'ok') return c.pass(`${r.outcome.pagesOk}/${r.outcome.pages} pages read as through MAP_SHARED`);
  if (r.outcome.kind === 'mmap-failed') return c.pass(cellVerdict(r));
  return c.fail(cellVerdict(r), explained(r));
}

function writeReaches(r: CheckResult | undefined): CheckItem {
  const c = named('write');
  if (!r || r.outcome.kind === 'not-run') return c.skip('the check did not run');
  if (r.outcome.kind === 'open-failed') return c.skip(NO_DEVICE);
  if (r.outcome.kind === 'skipped') return c.skip(r.outcome.reason);
  const f = r.readFinding;
  if (r.outcome.kind === 'ok') {
    if (!f || f.read.kind === 'sees-write') return c.pass('read() sees it');
    return c.pass(f.secondMapping ? 'a second mapping of the device sees it' : 'read() from offset 0 shows it at its place');
  }
  return c.fail(cellVerdict(r), explained(r, false));
}

/** What read() does at an offset, judged apart from the mapping (a stub read() is not a lost write). */
function readWorks(r: CheckResult | undefined): CheckItem {
  const c = named('read');
  const f = r?.readFinding;
  if (!f) return c.skip(r?.outcome.kind === 'open-failed' ? NO_DEVICE : 'the write check did not run');
  const words = readWords(f);
  switch (f.read.kind) {
    case 'failed':
      return f.read.err === 'EINVAL' ? c.skip(words) : c.fail(words, { hint: 'read() returns the bytes it copied, or a negative errno only when it cannot' });
    case 'not-seekable':
      return c.skip(words);
    case 'eof':
      return c.skip(`${words}: nothing to compare with`);
    case 'copies-nothing':
      return c.fail(words, { hint: 'copy the bytes before returning their count: copy_to_user(buf, buffer + *off, count), then *off += count' });
    case 'ignores-offset':
      return c.fail(words, { hint: 'copy from the buffer at the offset and move it: copy_to_user(buf, buffer + *off, count); *off += count' });
    case 'sees-write':
      return c.pass(words);
    case 'misses-write':
      if (f.secondMapping) return c.fail(`${words}, while a second mapping shows it: read() and mmap() use different memory`, { hint: 'read() and mmap() must both use the one buffer' });
      // The write never reached the buffer (or nothing could say): read() has nothing true to show.
      return c.skip(`${words}; the write did not reach the buffer, so read() cannot be judged by it`);
  }
}

function oversizeRefused(r: CheckResult | undefined): CheckItem {
  const c = named('oversize');
  if (!r) return c.skip('the check did not run');
  if (r.outcome.kind === 'not-run') return c.skip(r.outcome.reason);
  if (r.outcome.kind === 'open-failed') return c.skip(NO_DEVICE);
  if (r.outcome.kind === 'mmap-failed') return c.pass(`mmap() one page past the buffer refused with ${r.outcome.errno}`);
  return c.fail(`a mapping one page larger than the buffer was accepted: ${cellVerdict(r)}`, { hint: 'refuse what the buffer cannot back: if (vma_pages(vma) + vma->vm_pgoff > NPAGES) return -EINVAL;' });
}

function readOnlyHolds(r: CheckResult | undefined): CheckItem {
  const c = named('readonly');
  if (!r) return c.skip('the check did not run');
  if (r.outcome.kind === 'not-run') return c.skip(r.outcome.reason);
  if (r.outcome.kind === 'open-failed') return c.skip(NO_DEVICE);
  if (r.outcome.kind === 'ok') return c.pass('a write into a PROT_READ mapping of the device opened O_RDONLY faults');
  // Refusing the mapping keeps the promise too, but says nothing of the page tables.
  if (r.outcome.kind === 'mmap-failed') return c.skip(`the read-only mapping was refused: ${cellVerdict(r)}`);
  if (r.outcome.kind === 'write-allowed') {
    return c.fail(`writable PTEs in a read-only mapping: a PROT_READ mapping of the device opened O_RDONLY wrote ${r.outcome.reached ? 'into the buffer' : 'without a fault'}`, {
      ...(tracedAtSource(r).length ? { details: tracedAtSource(r) } : {}),
      hint: 'use vma->vm_page_prot, not PAGE_SHARED, as remap_pfn_range()\'s protection',
    });
  }
  return c.fail(cellVerdict(r), explained(r));
}

/**
 * The CPU executing freed module memory: the RIP has no symbol (no module owns
 * the address any more) and lies in x86-64's modules area (MODULES_VADDR
 * 0xffffffffa0000000 up to the fixmap).
 */
function ranFreedModuleCode(p: KernelProblem): boolean {
  if (p.culprit || !/^0x[0-9a-f]{16}$/i.test(p.location ?? '')) return false;
  const ip = BigInt(p.location!);
  return ip >= 0xffffffffa0000000n && ip < 0xffffffffff000000n;
}

function unloads(f: CheckFindings): CheckItem {
  const c = named('unloads');
  const rm = f.rmmod;
  const crash = crashDuring(f.problems, 'rmmod');
  if (crash && ranFreedModuleCode(crash)) {
    return c.fail(`the module's code ran after rmmod had freed it: ${crash.title} at ${crash.location}, an address in the modules' area that no module holds any more`, {
      hint: 'something the driver started still ran when its exit function returned (a kernel thread, a timer, a work item, a callback): stop each in the exit function (kthread_stop(), timer_delete_sync(), cancel_work_sync()) before it returns',
    });
  }
  if (crash) {
    return c.fail(`the exit function ${crashWords(crash)}`, {
      details: crashDetails(crash),
      hint: isBugOn(crash) ? 'a BUG_ON() (or BUG()) in the exit function fired: its condition was true; undo init in reverse order, each thing once' : 'the exit function used a pointer that was freed, cleared or never set: undo init in reverse order, each thing once',
    });
  }
  const stuck = stuckDuring(f.problems, 'rmmod');
  if (!rm && stuck) return c.fail(`rmmod never finished: the exit function ${stuckWords(stuck)}`, { details: crashDetails(stuck), hint: stuckHint(stuck, 'exit') });
  const flooded = f.results.some((r) => r.outcome.kind === 'flood');
  if (!rm) return c.fail('rmmod was not reached or never finished', { hint: flooded ? "the driver's flood of the console stopped the machine; see above" : 'an earlier crash or hang stopped the machine; see above' });
  if (rm.ok) return c.pass(`rmmod ${f.moduleName}`);
  const noFork = outOfProcesses(rm.output);
  if (noFork) {
    return c.fail(`the guest had no process left to run rmmod with (${noFork}): something started while the driver was loaded used them all up`, {
      hint: 'a kthread_run() (or kernel_thread()) in a loop does that: start a bounded number, keep each task_struct, and kthread_stop() every one in the exit function',
    });
  }
  return c.fail(`rmmod failed (status ${rm.status}): ${rm.output}`, { hint: 'the module is still in use, or its exit hung: release every reference (mappings, cdev) in the exit function' });
}

/** A step that could not start its command: the guest is out of processes (busybox's and glibc's words for EAGAIN from fork). */
function outOfProcesses(output: string): string | undefined {
  return /(?:^|\s)((?:can't )?fork(?:: | failed: )(?:Resource temporarily unavailable|Cannot allocate memory))/i.exec(output)?.[1];
}

/** "insmod", "the shared and private checks", "rmmod and the oversize check". */
function stepsWords(steps: readonly string[]): string {
  const checks = steps.map((s) => /^the (.+) check$/.exec(s)?.[1]).filter((c): c is string => !!c);
  const others = steps.filter((s) => !/^the .+ check$/.test(s));
  const and = (xs: readonly string[]) => (xs.length > 1 ? `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}` : (xs[0] ?? ''));
  const checkWords = checks.length ? `the ${and(checks)} check${checks.length > 1 ? 's' : ''}` : '';
  return and([...others, ...(checkWords ? [checkWords] : [])]);
}

/**
 * The problems as the kernel check lists them: title and the driver's place
 * once, with the steps it happened in (a crash in each pass repeats).
 */
function problemLines(problems: readonly KernelProblem[]): string[] {
  const groups = new Map<string, string[]>();
  for (const p of problems) {
    const place = problemPlace(p);
    const key = `${p.title}${place ? ` at ${place}` : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), ...(p.during && p.during !== 'boot' ? [p.during] : [])]);
  }
  return [...groups].map(([key, steps]) => {
    const during = [...new Set(steps)];
    const count = steps.length > 1 ? `${steps.length}×, ` : '';
    return during.length ? `${key} (${count}during ${stepsWords(during)})` : key;
  });
}

function kernelClean(problems: CheckFindings['problems']): CheckItem {
  const c = named('kernel');
  if (problems.length === 0) return c.pass('the kernel log is clean');
  const first = problems[0]!;
  const cause = causeOf(first);
  return c.fail(`${plural(problems.length, 'problem')}: ${first.message ? `${first.message} — ` : ''}${first.title}`, {
    details: [...problemLines(problems), ...(cause ? [`usual cause: ${cause.cause}`] : [])],
    hint: cause ? `${cause.fix}${first.culprit?.source ? ` (${first.culprit.source})` : ''}` : 'the first problem is usually the cause; its source line is shown where the module could be resolved',
  });
}

function noReservedFreed(f: CheckFindings): CheckItem {
  const c = named('reserved');
  if (!f.rmmod?.ok) return c.skip('the module was not unloaded');
  if (f.reservedFreed === undefined) return c.skip("needs kprobe events and PG_reserved's bit from the headers");
  if (f.reservedFreed <= 0) return c.pass('rmmod freed no reserved page');
  return c.fail(`rmmod freed ${plural(f.reservedFreed, 'page')} still marked PG_reserved (a kernel with DEBUG_VM reports this as "Bad page state")`, {
    hint: 'ClearPageReserved() every page that init SetPageReserved(), before vfree()/__free_pages()',
  });
}

function noLeaks(f: CheckFindings): CheckItem {
  const c = named('leaks');
  if (!f.rmmod?.ok) return c.skip('the module was not unloaded');
  const leaks = leakedAreas(f.vmallocLeft, f.moduleName);
  if (!leaks.length) return c.pass('none left');
  return c.fail(`${plural(leaks.length, 'vmalloc area')} still allocated`, { details: leaks, hint: 'vfree() in the exit function everything vmalloc()ed in init' });
}

function taint(mask: number): CheckItem {
  const letters = taintLetters(mask);
  return named('taint').pass(letters.length ? letters.map((l) => `${l} (${TAINT_MEANING[l] ?? 'see the kernel docs'})`).join(', ') : 'not tainted');
}

/** Every named check, in the order the report shows them; what an earlier failure makes impossible is skipped. */
export function checkItems(f: CheckFindings): CheckItem[] {
  const built = builds(f.build);
  if (!f.build.ok) return [built, named('loads').skip('the driver did not build'), named('device').skip('the driver did not build')];
  const loaded = loads(f);
  if (!f.insmod?.ok) {
    // What the kernel said while loading still counts: an oops in init is also a dirty log and a taint.
    return [built, loaded, named('device').skip('the driver did not load'), kernelClean(f.problems), ...(f.tainted === undefined ? [] : [taint(f.tainted)])];
  }
  const cell = (check: string) => f.results.find((r) => r.check === check);
  return [
    built,
    loaded,
    deviceOpens(f),
    crashedIn(cell('shared'), f.problems) ?? sharedReads(cell('shared'), f.pattern),
    distinctPages(cell('shared')),
    crashedIn(cell('private'), f.problems) ?? privateWorks(cell('private')),
    crashedIn(cell('shared-write'), f.problems) ?? writeReaches(cell('shared-write')),
    readWorks(cell('shared-write')),
    crashedIn(cell('oversize'), f.problems) ?? oversizeRefused(cell('oversize')),
    crashedIn(cell('readonly'), f.problems) ?? readOnlyHolds(cell('readonly')),
    unloads(f),
    kernelClean(f.problems),
    noReservedFreed(f),
    noLeaks(f),
    ...(f.tainted === undefined ? [] : [taint(f.tainted)]),
  ];
}
