/** A Markdown summary of a matrix, for $GITHUB_STEP_SUMMARY or a pull request comment. */
import { kernelSlug } from '../kernel/spec.js';
import type { MatrixReport } from '../model/report.js';
import { kernelFailures, kernelSummary } from './matrix-text.js';

// Table cells must not break the table.
const md = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(m: MatrixReport): string {
  const icon = (ok: boolean) => (ok ? '✅' : '❌');
  const head = m.status === 'pass' ? '✅ PASS' : m.status === 'fail' ? '❌ FAIL' : '⚠️ ERROR';
  const out = [`## mmaplab ${m.command}: ${head}`, '', '| kernel | release | result |', '|---|---|---|'];
  for (const k of m.kernels) {
    const s = kernelSummary(k);
    out.push(`| \`${md(k.spec)}\` | ${md(s.release)} | ${icon(s.ok)} ${md(s.status)} |`);
  }
  if (m.differences.length) {
    out.push('', `### Differences between kernels (${m.differences.length})`, '', `| | ${m.kernels.map((k) => md(kernelSlug(k.spec))).join(' | ')} |`, `|---|${m.kernels.map(() => '---').join('|')}|`);
    for (const d of m.differences) out.push(`| ${md(d.key)} | ${d.cells.map((c) => (c.value === undefined ? '–' : `${c.ok ? '' : '❌ '}${md(c.value)}`)).join(' | ')} |`);
  }
  const failing = m.kernels.map((k) => ({ k, f: kernelFailures(k) })).filter((x) => x.f.length);
  if (failing.length) {
    out.push('', '### What failed');
    for (const { k, f } of failing) {
      out.push('', `<details><summary><code>${k.spec}</code>: ${md(f[0]!)}</summary>`, '', '```', ...f.slice(0, 30), '```', '</details>');
    }
  }
  const noted = m.kernels.flatMap((k) => (k.kind === 'error' ? [] : k.report.notes.map((n) => `- \`${k.spec}\`: ${md(n)}`)));
  if (noted.length) out.push('', '### Notes', '', ...noted);
  return `${out.join('\n')}\n`;
}
