/**
 * `run` and `check` as one HTML page (--html), for one kernel or several: the
 * grid coloured as on the terminal, each explanation with its fixes, a picture
 * of each mapping (which buffer page each mapped page showed), the kernel log
 * with its oopses highlighted, and the driver's own source lines where the
 * kernel or a traced call named them. Values sit in data- attributes too, so
 * a browser test reads the page back.
 */
import { describeExpected } from '../diagnose/expectations.js';
import { cellVerdict } from '../diagnose/words.js';
import { formatDiagnostic } from '../model/diagnostic.js';
import { problemPlace, type KernelLine, type KernelProblem } from '../model/kernel-log.js';
import { outcomeCode, type CheckResult } from '../model/outcome.js';
import type { CheckReport, KernelEntry, MatrixReport, RunReport } from '../model/report.js';
import { describeCalls } from '../parse/trace.js';
import { escapeHtml as e, htmlPage } from './html.js';
import { explanationGroups } from './explanation-groups.js';
import { CHECK_SHORT, machineLines } from './text.js';
import { Chalk } from 'chalk';

const plain = new Chalk({ level: 0 });

function cellClass(r: CheckResult): string {
  return !r.matchesExpected ? 'unexpected' : r.outcome.kind === 'ok' ? 'ok' : 'expected';
}

function grid(results: readonly CheckResult[], strategies: readonly string[], checks: readonly string[]): string {
  const head = `<tr><th>strategy</th>${checks.map((k) => `<th>${e(CHECK_SHORT[k as keyof typeof CHECK_SHORT] ?? k)}</th>`).join('')}</tr>`;
  const rows = strategies.map((s) => {
    const cells = checks.map((k) => {
      const r = results.find((x) => x.strategy === s && x.check === k);
      if (!r) return '<td></td>';
      const code = outcomeCode(r.outcome);
      const title = `${cellVerdict(r)}${r.matchesExpected ? '' : ` (expected ${describeExpected(r.expected)})`}`;
      return `<td class="mark ${e(cellClass(r))}" data-strategy="${e(s)}" data-check="${e(k)}" data-outcome="${e(code)}" data-expected="${e(r.matchesExpected)}" title="${e(title)}">${e(code)}${r.matchesExpected ? '' : '!'}</td>`;
    });
    return `<tr><th>${e(s)}</th>${cells.join('')}</tr>`;
  });
  return `<table class="grid">${head}${rows.join('')}</table><p class="dim">! = not what the lab expects; amber = an expected failure</p>`;
}

function explanations(results: readonly CheckResult[]): string {
  const groups = explanationGroups(results);
  if (groups.length === 0) return '';
  const items = groups.map(({ explanation: x, cells }) => {
    const where = cells.map((c) => `${c.check} in ${c.strategy}`).join(', ');
    const unexpected = cells.some((c) => !c.matchesExpected);
    return `<li data-explanation="${e(x.id)}"><b class="${unexpected ? 'fail' : ''}">${e(x.summary)}</b> <span class="dim">(${e(where)})</span><ol>${x.why.map((w) => `<li>${e(w)}</li>`).join('')}</ol>${x.fixes.map((f) => `<div class="fix">fix: ${e(f)}</div>`).join('')}</li>`;
  });
  return `<h3>Why</h3><ul class="explanations">${items.join('')}</ul>`;
}

/** Each check's mapping: the buffer page each mapped page showed. */
function pictures(results: readonly CheckResult[]): string {
  const rows = results.flatMap((r) => {
    const pic = r.picture;
    if (!pic) return [];
    const cells = pic.pages.map((p) => {
      const cls = p.shows === 'fault' ? 'gone' : p.ok ? 'good' : 'bad';
      const text = p.shows === 'fault' ? '·' : p.shows === 'unknown' ? '?' : String(p.shows);
      return `<span class="${cls}" data-page="${e(p.page)}" data-shows="${e(p.shows)}" title="page ${e(p.page)}${p.expect === null ? '' : `, expected ${e(p.expect)}`}">${e(text)}</span>`;
    });
    const stop = pic.stoppedAt ? `<span class="fail"> ${e(pic.stoppedAt.signal)} at page ${e(pic.stoppedAt.page)}; the pages after it were never reached</span>` : '';
    const by = !r.pageReports.length ? '' : pic.by === 'frame' ? ' (page frames, numbered as first seen: a repeated number is an alias)' : pic.by === 'marker' ? ' (physical pages told apart by a marker written into each, numbered as first seen: a repeated number is an alias)' : '';
    return [`<div class="picture" data-strategy="${e(r.strategy)}" data-check="${e(r.check)}" data-by="${e(pic.by)}"><span class="dim">${e(r.strategy)} / ${e(r.check)} (${e(r.mode)})${e(by)}</span>${stop}<div class="pages">${cells.join('')}</div></div>`];
  });
  return rows.length ? `<h3>The mappings, page by page</h3><p class="dim">Each box is a mapped page and the page of the driver's buffer it showed; · a page that faulted or was never reached.</p>${rows.join('')}` : '';
}

function traced(results: readonly CheckResult[]): string {
  const lines = results.flatMap((r) =>
    r.traced.map((t) => `<li><code>${e(describeCalls(t))}</code> in ${e(r.check)} (${e(r.strategy)})${t.callerSource ? `, from <b>${e(t.callerSource)}</b>${t.callerCode ? `: <code class="src">${e(t.callerCode)}</code>` : ''}` : ` <span class="dim">from ${e(t.caller)}</span>`}</li>`),
  );
  return lines.length ? `<h3>Traced kernel calls</h3><ul class="traced">${lines.join('')}</ul>` : '';
}

function problemBlock(p: KernelProblem, at: string | undefined): string {
  const place = problemPlace(p);
  const code = p.culprit?.code ? ` <code class="src">${e(p.culprit.code)}</code>` : '';
  const frames = p.callTrace.filter((f) => f.reliable).slice(0, 8).map((f) => `<li><code>${e(`${f.fn}${f.offset ? `+${f.offset}` : ''}${f.module ? ` [${f.module}]` : ''}`)}</code>${f.source ? ` <b>${e(f.source)}</b>` : ''}</li>`);
  return `<li class="fail" data-problem="${e(p.kind)}"><b>${e(p.title)}</b>${p.during ? ` <span class="dim">during ${e(p.during)}</span>` : ''}${place ? `<br>at <b>${e(place)}</b>${code}` : ''}${frames.length ? `<ul>${frames.join('')}</ul>` : ''}${at === undefined ? '' : ` <a href="#${at}">in the log</a>`}</li>`;
}

/**
 * A problem's lines in the report's log. Its own indices count in the log of the job that saw it,
 * and a report joins several jobs' logs, so it is found by its first line's time and text.
 */
function problemSpan(lines: readonly KernelLine[], p: KernelProblem): [number, number] | undefined {
  const head = p.title.slice(0, 40);
  const at = lines.findIndex((l) => l.time === p.time && l.text.includes(head));
  const start = at >= 0 ? at : lines.findIndex((l) => l.text.includes(head));
  return start < 0 ? undefined : [start, Math.min(lines.length, start + Math.max(1, p.endLine - p.line))];
}

/** One problem per report (jobs that shared a guest each saw the same one). */
function distinctProblems(problems: readonly KernelProblem[]): KernelProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.time}|${p.title}|${p.location ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** id: the section's prefix of the log's anchors, so a page of several kernels links each oops to its own log. */
function kernelLog(log: { lines: readonly KernelLine[]; problems: readonly KernelProblem[] }, id: string): string {
  const problems = distinctProblems(log.problems);
  const spans = problems.map((p) => ({ p, span: problemSpan(log.lines, p) }));
  const starts = new Map(spans.filter((x) => x.span).map((x) => [x.span![0], x.p]));
  const inProblem = (i: number) => spans.some(({ span }) => span && i >= span[0] && i < span[1]);
  const lines = log.lines.map((l, i) => {
    const text = `${l.time === undefined ? '' : `[${l.time.toFixed(6).padStart(12)}] `}${l.text}`;
    return inProblem(i) ? `<span class="problem"${starts.has(i) ? ` id="${id}log-${i}"` : ''}>${e(text)}</span>` : `${e(text)}\n`;
  });
  const block = (p: KernelProblem) => {
    const at = spans.find((x) => x.p === p)?.span?.[0];
    return problemBlock(p, at === undefined ? undefined : `${id}log-${at}`);
  };
  const head = problems.length
    ? `<p class="fail problems" data-count="${problems.length}">${problems.length} problem${problems.length === 1 ? '' : 's'} in the kernel log:</p><ul>${problems.map(block).join('')}</ul>`
    : '<p class="pass problems" data-count="0">no oops, BUG, WARNING or panic</p>';
  return `<h3>Kernel log</h3>${head}${lines.length ? `<pre class="kernel-log">${lines.join('')}</pre>` : ''}`;
}

function runSection(r: RunReport, id: string): string {
  const facts = [`kernel ${r.kernel.release} (${r.kernel.packageVersion})`, ...machineLines(r.machine, plain).map((l) => l.trim()), `driver ${r.module.name}.ko, built with ${r.module.compiler}`];
  const differ = r.results.filter((x) => !x.matchesExpected).length;
  const verdict = r.status === 'pass' ? `PASS: all ${r.results.length} outcomes are what the lab expects` : `FAIL: ${differ} of ${r.results.length} outcomes differ from what the lab expects`;
  return [
    `<p class="dim">${facts.map(e).join('<br>')}</p>`,
    `<p class="${e(r.status)}" data-status="${e(r.status)}"><b>${e(verdict)}</b></p>`,
    grid(r.results, r.strategies.map((s) => s.strategy), r.checks),
    findings(r, id),
  ].join('\n');
}

function checkSection(r: CheckReport, id: string): string {
  const mark = { pass: '✓', fail: '✗', skip: '–' } as const;
  const items = r.items.map(
    (i) =>
      `<tr data-item="${e(i.id)}" data-verdict="${e(i.verdict)}"><td class="mark ${e(i.verdict)}">${e(mark[i.verdict])}</td><td>${e(i.title)}</td><td class="${i.verdict === 'fail' ? 'fail' : 'dim'}">${e(i.reason)}${i.verdict === 'fail' && i.hint ? `<div class="hint">hint: ${e(i.hint)}</div>` : ''}${i.verdict !== 'pass' && i.details?.length ? `<pre>${i.details.map(e).join('\n')}</pre>` : ''}</td></tr>`,
  );
  const failed = r.items.filter((i) => i.verdict === 'fail').length;
  const verdict = r.status === 'pass' ? `PASS: ${r.items.filter((i) => i.verdict === 'pass').length} checks passed` : `FAIL: ${failed} of ${r.items.length} checks failed`;
  const warnings = r.driver.buildWarnings.map((w) => `<li><code>${e(formatDiagnostic(w))}</code></li>`);
  return [
    `<p class="dim">${e(`kernel ${r.kernel.release}`)}${r.machine ? `<br>${machineLines(r.machine, plain).map((l) => e(l.trim())).join('<br>')}` : ''}</p>`,
    `<p class="${e(r.status)}" data-status="${e(r.status)}"><b>${e(verdict)}</b></p>`,
    `<table class="items">${items.join('')}</table>`,
    warnings.length ? `<h3>Build warnings</h3><ul>${warnings.join('')}</ul>` : '',
    r.results.length ? grid(r.results, ['custom'], [...new Set(r.results.map((x) => x.check))]) : '',
    findings(r, id),
  ].join('\n');
}

/** What run and check share below their verdicts: why, the mappings, the traced calls, the kernel log, notes. */
function findings(r: RunReport | CheckReport, id: string): string {
  return [explanations(r.results), pictures(r.results), traced(r.results), kernelLog(r.kernelLog, id), notes(r.notes)].join('\n');
}

function notes(ns: readonly string[]): string {
  return ns.length ? `<h3>Notes</h3><ul class="dim">${ns.map((n) => `<li>${e(n)}</li>`).join('')}</ul>` : '';
}

function section(k: KernelEntry, n: number, several: boolean): string {
  const id = several ? `k${n}-` : '';
  const body = k.kind === 'run' ? runSection(k.report, id) : k.kind === 'check' ? checkSection(k.report, id) : `<p class="error"><b>${e(k.error.message)}</b>${k.error.hint ? `<br>${e(k.error.hint)}` : ''}</p>${k.error.details.length ? `<pre>${k.error.details.map(e).join('\n')}</pre>` : ''}`;
  const status = k.kind === 'error' ? 'error' : k.report.status;
  return `<section class="kernel" data-spec="${e(k.spec)}" data-status="${e(status)}">${several ? `<h2>${e(k.spec)} <span class="${e(status)}">${e(status)}</span></h2>` : ''}${body}</section>`;
}

export function renderResultsHtml(m: MatrixReport): string {
  const first = m.kernels[0];
  const checked = m.kernels.find((k) => k.kind === 'check');
  const what = m.command === 'check' ? `mmaplab check${checked?.kind === 'check' ? `: ${checked.report.driver.source}` : ''}` : 'mmaplab run';
  const several = m.kernels.length > 1;
  const title = several ? `${what} on ${m.kernels.length} kernels` : `${what} on ${first?.spec ?? ''}`;
  const summary = several
    ? `<table id="kernels">${m.kernels.map((k) => `<tr data-spec="${e(k.spec)}"><td><a href="#k-${e(k.spec)}">${e(k.spec)}</a></td><td class="${e(k.kind === 'error' ? 'error' : k.report.status)}">${e(k.kind === 'error' ? 'error' : k.report.status)}</td></tr>`).join('')}</table>`
    : '';
  const sections = m.kernels.map((k, n) => `<div id="k-${e(k.spec)}">${section(k, n, several)}</div>`).join('\n');
  return htmlPage(title, `<p id="overall" data-status="${e(m.status)}" class="dim">mmaplab ${e(m.tool.version)}; artefacts in ${e(m.artifacts.dir)}</p>${summary}${sections}`);
}
