/**
 * A graded class in the terminal: one row per student with a column per
 * rubric check and the score, then the summary (pass rate, the findings most
 * students share, identical submissions); and one student's feedback file:
 * the score by check, then the text `check` prints for the driver.
 */
import type { ChalkInstance } from 'chalk';
import type { GradeReport, ScoredCheck, SubmissionResult } from '../model/grade.js';
import type { CheckReport } from '../model/report.js';
import { terminalSafe } from '../util/safe-text.js';
import { renderCheckText } from './check-text.js';

/** Column headings short enough for fourteen checks on one screen. */
const SHORT: Record<string, string> = {
  builds: 'bld', loads: 'load', device: 'dev', shared: 'shr', 'distinct-pages': 'dist', private: 'priv', write: 'wr', read: 'rd',
  oversize: 'over', readonly: 'ro', unloads: 'unl', kernel: 'kern', reserved: 'resv', leaks: 'leak', taint: 'tnt',
};

export function shortName(id: string): string {
  return SHORT[id] ?? id.slice(0, 4);
}

function mark(c: ScoredCheck, s: ChalkInstance): string {
  switch (c.verdict) {
    case 'pass':
      return s.green('✓');
    case 'fail':
      return s.red('✗');
    case 'skip':
      return s.yellow('–');
    default:
      return s.dim('·');
  }
}

const pad = (text: string, width: number, visible = text.length) => text + ' '.repeat(Math.max(0, width - visible));

function statusWord(r: SubmissionResult, s: ChalkInstance): string {
  return r.status === 'pass' ? s.green('pass') : r.status === 'fail' ? s.red('fail') : s.magenta('error');
}

/** Words in lines of at most width characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = `  ${w}`;
    } else line = line ? `${line} ${w}` : w;
  }
  return line ? [...lines, line] : lines;
}

/** "11 of 30 ignore remap_pfn_range()'s return value". */
export function findingLine(f: { gist: string; slugs: readonly string[] }, of: number): string {
  return `${f.slugs.length} of ${of} ${f.gist}`;
}

export function renderGradeText(g: GradeReport, s: ChalkInstance): string {
  const out: string[] = [];
  const subs = g.submissions;
  const names = subs.map((r) => terminalSafe(r.name).slice(0, 28));
  const nameW = Math.max(7, ...names.map((n) => n.length));
  const idW = Math.max(2, ...subs.map((r) => terminalSafe(r.id).length));
  const scoreW = String(g.rubric.maxScore).length * 2 + 1;
  const cols = g.rubric.points.map((p) => shortName(p.id));
  out.push(s.bold(`mmaplab grade: ${subs.length} submission${subs.length === 1 ? '' : 's'} on ${g.kernel.release} (${g.kernel.packageVersion}), rubric "${terminalSafe(g.rubric.name)}" ${g.rubric.hash}${g.shard ? `, shard ${g.shard.index}/${g.shard.count}` : ''}`));
  out.push('');
  out.push(s.dim(`${pad('student', nameW)}  ${pad('id', idW)}  ${pad('score', scoreW)}  ${pad('status', 6)}  ${cols.map((c) => pad(c, Math.max(c.length, 1))).join(' ')}`));
  subs.forEach((r, i) => {
    const score = `${r.score}/${r.maxScore}`;
    const marks = r.checks.map((c, j) => pad(mark(c, s), cols[j]!.length, 1)).join(' ');
    const extra = [r.check?.cached ? s.dim('(cached)') : '', r.trust.length ? s.yellow('(trust: see feedback)') : ''].filter(Boolean).join(' ');
    out.push(`${pad(names[i]!, nameW)}  ${pad(terminalSafe(r.id), idW)}  ${pad(score, scoreW)}  ${pad(statusWord(r, s), 6, r.status.length)}  ${marks}${extra ? `  ${extra}` : ''}`);
  });
  out.push('');
  const sm = g.summary;
  out.push(`${sm.pass} passed, ${sm.fail} failed${sm.error ? `, ${s.magenta(`${sm.error} not graded`)}` : ''}; mean ${sm.meanScore}, median ${sm.medianScore} of ${g.rubric.maxScore}`);
  const graded = sm.pass + sm.fail;
  for (const f of sm.findings.slice(0, 10)) out.push(`  ${findingLine(f, graded)}`);
  for (const group of sm.identical) out.push(s.yellow(`  identical code (comments and whitespace aside): ${group.join(', ')}`));
  for (const r of subs.filter((x) => x.status === 'error')) out.push(s.magenta(`  ${terminalSafe(r.name)}: not graded: ${terminalSafe(r.error?.message ?? '')}`));
  out.push(...wrap(`legend: ${g.rubric.points.map((p) => `${shortName(p.id)} ${p.title}`).join('; ')}; ✓ pass ✗ fail – skipped · not reached`, 100).map((l) => s.dim(l)));
  if (g.artifacts.page) out.push(s.dim(`summary page: ${g.artifacts.page}`));
  if (g.artifacts.feedbackDir) out.push(s.dim(`feedback files: ${g.artifacts.feedbackDir}`));
  out.push(s.dim(`results: ${g.artifacts.dir}`));
  return `${out.join('\n')}\n`;
}

/** One student's feedback: the score by check, what grading noticed, then the check's own report. Every text a student could shape is made safe to cat. */
export function renderFeedback(r: SubmissionResult, check: CheckReport | undefined, g: Pick<GradeReport, 'rubric'>, s: ChalkInstance): string {
  const t = terminalSafe;
  const out: string[] = [];
  out.push(s.bold(`${t(r.name)}${r.id ? ` (${t(r.id)})` : ''}: ${r.score}/${r.maxScore}, ${r.status}`));
  out.push(`rubric "${t(g.rubric.name)}" ${g.rubric.hash}; mmaplab ${r.graded.mmaplab}; kernel ${r.graded.kernel} (${r.graded.kernelPackage})`);
  out.push('');
  for (const c of r.checks) {
    out.push(`  ${c.verdict === 'pass' ? '✓' : c.verdict === 'fail' ? '✗' : c.verdict === 'skip' ? '–' : '·'} ${c.points}/${c.maxPoints}  ${c.title}: ${t(c.reason)}`);
    if (c.hint && c.verdict === 'fail') out.push(`      fix: ${t(c.hint)}`);
  }
  for (const n of r.notes) out.push(`  note: ${t(n)}`);
  if (r.error) out.push(`  not graded: ${t(r.error.message)} (mmaplab's failure, not the driver's; the teacher will grade it again)`);
  for (const x of r.trust) out.push(`  for the teacher: the module ${x.what} (it uses ${t(x.evidence)}); its results may not be what the guest saw`);
  if (check) {
    out.push('');
    out.push(renderCheckText(check, s).trimEnd());
  }
  return `${out.join('\n')}\n`;
}
