/**
 * The class summary page: one HTML file that opens offline (inline CSS, no
 * script, nothing fetched): the score distribution, each check's pass rate,
 * the findings most students share, each linking to the students it hit, the
 * identical submissions, and the class table linking to each feedback file.
 * Every number sits in a data- attribute too, so a browser test reads them
 * back. Names and reasons are the students' text: all of it is escaped.
 */
import type { GradeReport, SubmissionResult } from '../model/grade.js';
import { findingLine, shortName } from './grade-text.js';
import { escapeHtml, htmlPage } from './html.js';

function markOf(v: string): string {
  return v === 'pass' ? '✓' : v === 'fail' ? '✗' : v === 'skip' ? '–' : '·';
}

function distribution(g: GradeReport): string {
  const max = Math.max(1, ...g.summary.distribution.map((d) => d.count));
  const rows = g.summary.distribution.map((d, i) => {
    const last = i === g.summary.distribution.length - 1;
    return `<tr data-bucket="${i}" data-count="${d.count}"><td class="num">${d.from} to ${last ? '' : 'under '}${d.to}</td><td><span class="bar" style="width:${Math.round((d.count / max) * 20)}em"></span></td><td class="num">${d.count}</td></tr>`;
  });
  return `<h2>Scores</h2><p>mean <span id="mean">${g.summary.meanScore}</span>, median <span id="median">${g.summary.medianScore}</span> of ${g.rubric.maxScore}</p><table id="distribution">${rows.join('')}</table>`;
}

function checkRates(g: GradeReport): string {
  const rows = g.summary.checks.map((c) => {
    const pct = c.of ? Math.round((c.passed / c.of) * 100) : 0;
    const pts = g.rubric.points.find((p) => p.id === c.id)?.points ?? 0;
    return `<tr data-check="${escapeHtml(c.id)}" data-passed="${c.passed}" data-of="${c.of}"><td>${escapeHtml(c.title)}</td><td class="dim">${escapeHtml(c.id)}</td><td class="num">${pts} pt</td><td class="num">${c.passed} of ${c.of}</td><td class="num">${pct}%</td></tr>`;
  });
  return `<h2>Checks</h2><table id="checks"><tr><th>check</th><th>id</th><th>points</th><th>passed</th><th></th></tr>${rows.join('')}</table>`;
}

function findings(g: GradeReport, byslug: ReadonlyMap<string, SubmissionResult>): string {
  const of = g.summary.pass + g.summary.fail;
  if (g.summary.findings.length === 0) return '<h2>Why submissions fail</h2><p>No check failed.</p>';
  const items = g.summary.findings.map((f) => {
    const who = f.slugs.map((s) => `<a href="#s-${escapeHtml(s)}">${escapeHtml(byslug.get(s)?.name ?? s)}</a>`).join(', ');
    return `<li data-finding="${escapeHtml(f.key)}" data-count="${f.slugs.length}"><b>${escapeHtml(findingLine(f, of))}</b><br><span class="dim">${who}</span></li>`;
  });
  return `<h2>Why submissions fail</h2><ul id="findings">${items.join('')}</ul>`;
}

function identical(g: GradeReport): string {
  if (g.summary.identical.length === 0) return '';
  const items = g.summary.identical.map((grp) => `<li data-identical="${grp.length}">${grp.map((s) => `<a href="#s-${escapeHtml(s)}">${escapeHtml(s)}</a>`).join(', ')}</li>`);
  return `<h2>Identical code</h2><p class="dim">The same sources once comments, whitespace and the skeleton are removed: a hint to look, nothing more.</p><ul id="identical">${items.join('')}</ul>`;
}

function classTable(g: GradeReport, feedbackHref: (slug: string) => string | undefined): string {
  const head = `<tr><th>student</th><th>id</th><th class="num">score</th><th>status</th>${g.rubric.points.map((p) => `<th title="${escapeHtml(p.title)}">${escapeHtml(shortName(p.id))}</th>`).join('')}<th></th></tr>`;
  const rows = g.submissions.map((r) => {
    const href = feedbackHref(r.slug);
    const marks = r.checks.map((c) => `<td class="mark ${c.verdict}" title="${escapeHtml(`${c.title}: ${c.reason}`)}">${markOf(c.verdict)}</td>`).join('');
    return `<tr id="s-${escapeHtml(r.slug)}" data-slug="${escapeHtml(r.slug)}" data-score="${r.score}" data-status="${r.status}"><td>${escapeHtml(r.name)}</td><td>${escapeHtml(r.id)}</td><td class="num">${r.score}/${r.maxScore}</td><td class="${r.status}">${r.status}</td>${marks}<td>${href ? `<a href="${escapeHtml(href)}">feedback</a>` : ''}</td></tr>`;
  });
  return `<h2>Students</h2><table id="students">${head}${rows.join('')}</table>`;
}

export function renderGradeHtml(g: GradeReport, feedbackHref: (slug: string) => string | undefined = (s) => `feedback/${s}.txt`): string {
  const byslug = new Map(g.submissions.map((s) => [s.slug, s]));
  const s = g.summary;
  const title = `mmaplab grade: ${s.submissions} submissions`;
  return htmlPage(
    title,
    `<p id="counts" data-submissions="${s.submissions}" data-pass="${s.pass}" data-fail="${s.fail}" data-error="${s.error}"><span class="pass">${s.pass} passed</span>, <span class="fail">${s.fail} failed</span>${s.error ? `, <span class="error">${s.error} not graded</span>` : ''}.
<span class="dim">Kernel ${escapeHtml(g.kernel.release)} (${escapeHtml(g.kernel.packageVersion)}); rubric “${escapeHtml(g.rubric.name)}” ${escapeHtml(g.rubric.hash)}, ${g.rubric.maxScore} points, pass at ${g.rubric.passScore}; mmaplab ${escapeHtml(g.tool.version)}.</span></p>
${distribution(g)}
${findings(g, byslug)}
${checkRates(g)}
${identical(g)}
${classTable(g, feedbackHref)}`,
  );
}
