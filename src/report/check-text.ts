/** The terminal report of `mmaplab check`: one line per check, a reason, and for a failure a hint. */
import type { ChalkInstance } from 'chalk';
import type { CheckReport, LabTestReport } from '../model/report.js';
import { formatDiagnostic } from '../model/diagnostic.js';
import { describeIsolation } from './isolation.js';
import { pictureLegend, renderPicture } from './picture-text.js';
import { machineLines } from './text.js';

const MARK = { pass: '✓', fail: '✗', skip: '-' } as const;

/** Each mapping, page by page: the buffer page each mapped page showed. */
function mappings(r: CheckReport, c: ChalkInstance): string[] {
  const drawn = r.results.filter((x) => x.picture);
  if (!drawn.length) return [];
  const legends = [...new Set(drawn.map((x) => pictureLegend(x.picture!)))];
  const out = ['', `${c.bold('mappings')}  ${c.dim(`the buffer page each mapped page showed${legends.length === 1 ? ` (${legends[0]})` : ''}; · faulted or never reached, ? none of the buffer's`)}`];
  for (const x of drawn) out.push(...renderPicture(`${x.check.padEnd(12)} `, x.picture!, c, '  '));
  return out;
}

/** The lab's own test program beside the checks: each ./mmap-test N as the lab runs it, with what a failed one printed. */
function labTestLines(t: LabTestReport | undefined, c: ChalkInstance): string[] {
  if (!t) return [];
  const head = `${c.bold("the lab's test program")}  ${t.program}`;
  if (t.kind === 'skipped') return ['', head, `${MARK.skip} ${c.dim(`not run: ${t.reason}`)}`];
  if (t.kind === 'build-failed') return ['', head, `${c.red.bold(MARK.fail)} ${c.red(t.message)}`, ...t.details.map((d) => `    ${d}`)];
  const out = ['', `${head}  ${c.dim(`(${t.command}; its device node ${t.node})`)}`];
  for (const x of t.runs) {
    const colour = x.verdict === 'pass' ? c.green : x.verdict === 'fail' ? c.red.bold : c.dim;
    out.push(`${colour(MARK[x.verdict])} ${`./mmap-test ${x.run}`.padEnd(46)} ${x.verdict === 'fail' ? c.red(x.reason) : c.dim(x.reason)}`);
    // What a failed run said, past test 1's "matched" lines (which the reason counts).
    if (x.verdict === 'fail') for (const l of x.output.filter((o) => o.trim() !== 'matched').slice(0, 12)) out.push(c.dim(`    | ${l}`));
  }
  return out;
}

export function renderCheckText(r: CheckReport, c: ChalkInstance): string {
  const out: string[] = [];
  out.push(c.bold(`mmaplab check: ${r.driver.source}${r.driver.module ? ` (${r.driver.module}.ko)` : ''} on ${r.kernel.spec}`));
  out.push(`  kernel   ${r.kernel.release}${r.kernel.arch ? ` (${r.kernel.arch})` : ''}`);
  if (r.machine) out.push(...machineLines(r.machine, c));
  if (r.driver.isolation) out.push(`  build    ${describeIsolation(r.driver.isolation)}`);
  out.push('');
  for (const i of r.items) {
    const colour = i.verdict === 'pass' ? c.green : i.verdict === 'fail' ? c.red.bold : c.dim;
    out.push(`${colour(MARK[i.verdict])} ${i.title.padEnd(46)} ${i.verdict === 'fail' ? c.red(i.reason) : c.dim(i.reason)}`);
    if (i.verdict !== 'pass' || i.id === 'builds') for (const d of i.details ?? []) out.push(`    ${d}`);
    if (i.verdict === 'fail' && i.hint) out.push(`    ${c.yellow('hint:')} ${i.hint}`);
  }
  out.push(...labTestLines(r.labTest, c));
  out.push(...mappings(r, c));
  for (const w of r.driver.buildWarnings) if (!r.items.some((i) => i.details?.includes(formatDiagnostic(w)))) out.push(c.yellow(`    ${formatDiagnostic(w)}`));
  for (const n of r.notes) out.push(c.dim(`note  ${n}`));
  if (r.consoleTail.length) {
    out.push(c.bold('console, last lines:'));
    for (const l of r.consoleTail) out.push(c.dim(`  ${l.replace(/\r$/, '')}`));
  }
  out.push('');
  const failed = r.items.filter((i) => i.verdict === 'fail').length;
  const skipped = r.items.filter((i) => i.verdict === 'skip').length;
  out.push(
    r.status === 'pass'
      ? c.green.bold(`PASS: ${r.items.length - skipped} checks passed${skipped ? `, ${skipped} skipped` : ''}`)
      : c.red.bold(`FAIL: ${failed} of ${r.items.length} checks failed`),
  );
  out.push(c.dim(`artefacts  ${r.artifacts.dir}`));
  return `${out.join('\n')}\n`;
}
