/**
 * The terminal report of a matrix: each kernel's status, the rows (strategy /
 * check, or check item) by kernel with the rows that differ marked, and for
 * each kernel what failed and why, API changes named.
 */
import type { ChalkInstance } from 'chalk';
import { describeApiChange } from '../model/diagnostic.js';
import { kernelSlug } from '../kernel/spec.js';
import { matrixRows } from '../matrix/model.js';
import { type KernelEntry, type MatrixReport } from '../model/report.js';
import type { CheckResult } from '../model/outcome.js';
import { cellVerdict } from '../diagnose/words.js';

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function kernelSummary(k: KernelEntry): { release: string; status: string; ok: boolean } {
  switch (k.kind) {
    case 'error':
      return { release: '-', status: k.error.kind === 'build' ? 'does not build' : `${k.error.kind} error`, ok: false };
    case 'run': {
      const r = k.report;
      const bad = r.results.filter((x) => !x.matchesExpected).length;
      const problems = r.kernelLog.problems.length;
      const status = r.status === 'pass' ? `PASS ${r.results.length}/${r.results.length}` : `FAIL ${bad} of ${r.results.length} unexpected${problems ? `, ${problems} kernel problem${problems === 1 ? '' : 's'}` : ''}`;
      return { release: r.kernel.release, status, ok: r.status === 'pass' };
    }
    case 'check': {
      const r = k.report;
      const failed = r.items.filter((i) => i.verdict === 'fail').length;
      return { release: r.kernel.release, status: r.status === 'pass' ? `PASS ${r.items.length} checks` : `FAIL ${failed} of ${r.items.length} checks`, ok: r.status === 'pass' };
    }
  }
}

/** What failed on one kernel, in a few lines. */
export function kernelFailures(k: KernelEntry): string[] {
  switch (k.kind) {
    case 'error': {
      const e = k.error;
      return [e.message, ...e.details.slice(0, 6).map((d) => `  ${d}`), ...e.apiChanges.map(describeApiChange), ...(e.hint && !e.apiChanges.length ? [`hint: ${e.hint}`] : [])];
    }
    case 'run': {
      const out: string[] = [];
      const seen = new Set<string>();
      for (const r of k.report.results.filter((x: CheckResult) => !x.matchesExpected)) {
        out.push(`${r.strategy} / ${r.check}: ${cellVerdict(r)}`);
        if (r.explanation && !seen.has(r.explanation.id)) {
          seen.add(r.explanation.id);
          out.push(`  why: ${r.explanation.summary}`);
        }
      }
      for (const p of k.report.kernelLog.problems) out.push(`kernel: ${p.title}${p.locationSource ? ` at ${p.locationSource}` : ''}`);
      return out;
    }
    case 'check':
      return k.report.items.filter((i) => i.verdict === 'fail').flatMap((i) => [`${i.title}: ${i.reason}`, ...(i.details ?? []).slice(0, 4).map((d) => `  ${d}`), ...(i.hint && !i.apiChanges ? [`  hint: ${i.hint}`] : [])]);
  }
}

export function renderMatrixText(m: MatrixReport, c: ChalkInstance): string {
  const out: string[] = [];
  const slugs = m.kernels.map((k) => kernelSlug(k.spec));
  const specW = Math.max(8, ...m.kernels.map((k) => k.spec.length)) + 2;
  const relW = Math.max(8, ...m.kernels.map((k) => kernelSummary(k).release.length)) + 2;
  out.push(c.bold(`mmaplab ${m.command} on ${m.kernels.length} kernel${m.kernels.length === 1 ? '' : 's'}`), '');
  out.push(c.bold(`${'kernel'.padEnd(specW)}${'release'.padEnd(relW)}result`));
  for (const k of m.kernels) {
    const s = kernelSummary(k);
    out.push(`${k.spec.padEnd(specW)}${s.release.padEnd(relW)}${s.ok ? c.green(s.status) : c.red(s.status)}`);
  }

  const rows = matrixRows(m.kernels, m.command);
  const differing = new Set(m.differences.map((d) => d.key));
  const keyW = Math.max(8, ...rows.map((r) => r.key.length)) + 3;
  const colW = slugs.map((s, i) => Math.max(s.length, ...rows.map((r) => (r.cells[i]?.value ?? '-').length)) + 2);
  out.push('', c.bold(`${''.padEnd(keyW)}${slugs.map((s, i) => s.padEnd(colW[i]!)).join('')}`.trimEnd()));
  for (const r of rows) {
    const mark = differing.has(r.key) ? c.yellow('≠ ') : '  ';
    const cells = r.cells.map((x, i) => {
      const text = x.value ?? '-';
      const pad = ' '.repeat(colW[i]! - text.length);
      if (x.value === undefined) return c.dim(text) + pad;
      return (x.ok ? (differing.has(r.key) ? c.yellow(text) : c.green(text)) : c.red.bold(text)) + pad;
    });
    out.push(`${mark}${r.key.padEnd(keyW - 2)}${cells.join('')}`.trimEnd());
  }
  out.push(
    '',
    m.differences.length
      ? c.yellow(`≠ ${m.differences.length} row${m.differences.length === 1 ? ' differs' : 's differ'} between kernels`)
      : `the same on every kernel`,
  );

  for (const k of m.kernels) {
    const f = kernelFailures(k);
    // Notes say what the tool did on the kernel's behalf (a flaky boot retried, the bzImage booted instead).
    const notes = k.kind === 'error' ? [] : k.report.notes;
    if (!f.length && !notes.length) continue;
    out.push('', c.bold(`${k.spec}:`), ...f.map((l) => `  ${l}`), ...notes.map((n) => c.dim(`  note: ${n}`)));
  }
  out.push('');
  const pass = m.kernels.filter((k) => kernelSummary(k).ok).length;
  const verdict = m.status === 'pass' ? c.green.bold('PASS') : m.status === 'fail' ? c.red.bold('FAIL') : c.red.bold('ERROR');
  out.push(`${verdict}: ${pass} of ${m.kernels.length} kernels as expected`);
  out.push(`artefacts  ${m.artifacts.dir} (results.json; one directory per kernel, each readable with mmaplab parse)`);
  if (m.timings.totalMs) out.push(`time       ${seconds(m.timings.totalMs)}`);
  return `${out.join('\n')}\n`;
}
