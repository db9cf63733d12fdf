/**
 * A check's report scored by the rubric: points for each check that passed,
 * the reasons and hints for those that did not, and the findings behind the
 * failures, keyed so the class summary can count students per explanation.
 * Pure: the report in, the score out.
 */
import type { Finding, GradeStatus, RubricStamp, ScoredCheck } from '../model/grade.js';
import type { CheckItem, CheckReport } from '../model/report.js';

/** What a finding means, said after "N of M": for the explanations students hit most. */
const GISTS: Record<string, string> = {
  'explain:cow-remap-ignored': "ignore remap_pfn_range()'s return value (SIGBUS under MAP_PRIVATE)",
  'explain:sigbus-unmapped': 'leave mapped pages empty (SIGBUS on a read)',
  'explain:ignores-pgoff': 'ignore vm_pgoff (a mapping at an offset shows the wrong pages)',
  'explain:wrong-data': 'map pages that do not hold the pattern',
  'explain:write-lost': 'lose a write through MAP_SHARED',
  'explain:writable-ptes': 'let a read-only mapping write the buffer',
  'explain:write-leaked': 'let a MAP_PRIVATE write reach the driver',
  'explain:open-failed': 'make a device that does not open',
  'explain:crash': 'crash the kernel while the device is mapped',
  'explain:hang': 'hang the guest',
  'explain:flood': 'flood the console',
  'build:int-read-write': 'declare read()/write() returning int (32-bit lab code)',
  'check:builds': 'do not compile',
  'check:loads': 'do not load (insmod fails, crashes or never returns)',
  'check:device': 'make no device that opens',
  'check:shared': 'do not show the pattern on every MAP_SHARED page',
  'check:distinct-pages': 'map one physical page at several places',
  'check:private': 'fail MAP_PRIVATE other than cleanly at mmap()',
  'check:write': 'lose a write through MAP_SHARED',
  'check:read': 'have a read() that does not return the buffer at the file offset',
  'check:oversize': 'accept a mapping larger than the buffer',
  'check:readonly': 'let a read-only mapping write the buffer',
  'check:unloads': 'cannot be unloaded',
  'check:kernel': 'leave a warning, oops or bad page in the kernel log',
  'check:reserved': 'free pages still marked reserved',
  'check:leaks': 'leave a vmalloc area behind after rmmod',
  'check:taint': 'taint the kernel',
};

/** The mapping checks (the grid's cells) behind each of `check`'s items. */
const CELLS_OF: Record<string, readonly string[]> = {
  shared: ['shared'],
  private: ['private'],
  write: ['shared-write'],
  oversize: ['oversize'],
  readonly: ['readonly'],
};

function itemFindings(item: CheckItem, report: CheckReport): Finding[] {
  const keyed = (key: string, fallback: string): Finding => ({ key, gist: GISTS[key] ?? fallback });
  if (item.id === 'builds') {
    const mistakes = (item.buildMistakes ?? []).map((m) => keyed(`build:${m.id}`, `do not compile: ${m.summary.replace(/\.$/, '')}`));
    const changes = (item.apiChanges ?? []).map((a) => keyed(`api:${a.id}`, `use an API that changed in Linux ${a.since}: ${a.summary.replace(/\.$/, '')}`));
    return mistakes.length + changes.length ? [...mistakes, ...changes] : [keyed('check:builds', 'do not compile')];
  }
  if (item.id === 'shared' && item.reason.startsWith('byte order')) return [keyed('check:byte-order', 'store the pattern in the wrong byte order')];
  // A cell the guest accepted explains nothing about the failure (its note is about something else).
  const cells = report.results.filter((r) => (CELLS_OF[item.id] ?? []).includes(r.check) && r.explanation && r.outcome.kind !== 'ok');
  const explained = [...new Map(cells.map((r) => [r.explanation!.id, r.explanation!])).values()];
  if (explained.length) return explained.map((e) => keyed(`explain:${e.id}`, e.summary));
  return [keyed(`check:${item.id}`, `fail "${item.title}"`)];
}

export interface Scored {
  checks: ScoredCheck[];
  score: number;
  status: Exclude<GradeStatus, 'error'>;
  findings: Finding[];
}

/** Points per rubric check: a pass earns them; a failure, a skip or a check never reached earns none. */
export function scoreReport(report: CheckReport, rubric: RubricStamp): Scored {
  const checks = rubric.points.map((p): ScoredCheck => {
    const item = report.items.find((i) => i.id === p.id);
    if (!item) return { id: p.id, title: p.title, verdict: 'missing', points: 0, maxPoints: p.points, reason: 'not reached: an earlier step failed' };
    return { id: p.id, title: p.title, verdict: item.verdict, points: item.verdict === 'pass' ? p.points : 0, maxPoints: p.points, reason: item.reason, ...(item.hint ? { hint: item.hint } : {}) };
  });
  const score = checks.reduce((s, c) => s + c.points, 0);
  const findings = new Map<string, Finding>();
  for (const item of report.items.filter((i) => i.verdict === 'fail')) for (const f of itemFindings(item, report)) findings.set(f.key, f);
  return { checks, score, status: score >= rubric.passScore ? 'pass' : 'fail', findings: [...findings.values()] };
}

/** A submission with nothing to check (no driver, an archive refused): every check scores nothing. */
export function scoreNothing(rubric: RubricStamp, why: string): Scored {
  const checks = rubric.points.map((p): ScoredCheck => ({ id: p.id, title: p.title, verdict: 'missing', points: 0, maxPoints: p.points, reason: why }));
  return { checks, score: 0, status: 'fail', findings: [{ key: 'submission:no-driver', gist: 'handed in no driver that could be read' }] };
}
