/**
 * JUnit XML for CI: one testsuite per kernel, one testcase per strategy x
 * check (run) or per check (check), plus the build. A failure carries the
 * verdict and the explanation; system-out the guest's kernel log for it.
 */
import { kernelSlug } from '../kernel/spec.js';
import type { KernelEntry, MatrixReport } from '../model/report.js';
import { describeApiChange } from '../model/diagnostic.js';
import { describeExpected } from '../diagnose/expectations.js';
import type { CheckResult } from '../model/outcome.js';
import { cellVerdict } from '../diagnose/words.js';

// XML 1.0 forbids most control characters even escaped; the console has them (ESC).
const xml = (s: string) =>
  s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

interface Case {
  classname: string;
  name: string;
  result: { kind: 'pass' } | { kind: 'failure' | 'error'; type: string; message: string; body: string } | { kind: 'skipped'; message: string };
  out?: string;
}

function explain(r: CheckResult): string {
  const lines = [`expected: ${describeExpected(r.expected)}`, `got: ${cellVerdict(r)} (${r.exitDescription})`];
  if (r.explanation) lines.push('', r.explanation.summary, ...r.explanation.why.map((w) => `- ${w}`), '', 'fixes:', ...r.explanation.fixes.map((f) => `- ${f}`));
  return lines.join('\n');
}

function casesOf(k: KernelEntry): Case[] {
  const cls = `mmaplab.${kernelSlug(k.spec)}`;
  switch (k.kind) {
    case 'error': {
      const e = k.error;
      const body = [...e.details, ...e.apiChanges.map(describeApiChange), ...(e.hint ? [`hint: ${e.hint}`] : [])].join('\n');
      return [{ classname: cls, name: 'build', result: { kind: e.kind === 'build' ? 'failure' : 'error', type: e.kind, message: e.message, body } }];
    }
    case 'run': {
      const r = k.report;
      const cases: Case[] = [{ classname: cls, name: 'build', result: { kind: 'pass' }, out: `${r.module.name}.ko built with ${r.module.compiler}` }];
      for (const x of r.results) {
        const strategy = r.strategies.find((s) => s.strategy === x.strategy);
        const out = [x.exitDescription, ...x.kernelLog.map((l) => l.text), ...(strategy && strategy.end !== 'done' ? r.consoleTail : [])].join('\n');
        cases.push({
          classname: `${cls}.${x.strategy}`,
          name: `${x.check} (MAP_${x.mode.toUpperCase()})`,
          result: x.matchesExpected ? { kind: 'pass' } : { kind: 'failure', type: x.outcome.kind, message: cellVerdict(x), body: explain(x) },
          out,
        });
      }
      for (const p of r.kernelLog.problems) {
        cases.push({ classname: `${cls}.kernel`, name: p.title, result: { kind: 'failure', type: 'kernel-problem', message: p.title, body: [p.location ?? '', p.locationSource ?? ''].filter(Boolean).join('\n') } });
      }
      return cases;
    }
    case 'check': {
      const r = k.report;
      return r.items.map((i) => ({
        classname: `${cls}.check`,
        name: i.title,
        result:
          i.verdict === 'pass'
            ? { kind: 'pass' as const }
            : i.verdict === 'skip'
              ? { kind: 'skipped' as const, message: i.reason }
              : { kind: 'failure' as const, type: i.id, message: i.reason, body: [...(i.details ?? []), ...(i.hint ? [`hint: ${i.hint}`] : [])].join('\n') },
        ...(i.id === 'kernel-log' || i.verdict === 'fail' ? { out: [...r.kernelLog.lines.map((l) => l.text), ...r.consoleTail].join('\n') } : {}),
      }));
    }
  }
}

export function renderJunit(m: MatrixReport): string {
  const suites = m.kernels.map((k) => ({ k, cases: casesOf(k) }));
  const count = (cs: Case[], kind: string) => cs.filter((c) => c.result.kind === kind).length;
  const all = suites.flatMap((s) => s.cases);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="mmaplab ${m.command}" tests="${all.length}" failures="${count(all, 'failure')}" errors="${count(all, 'error')}" skipped="${count(all, 'skipped')}" time="${(m.timings.totalMs / 1000).toFixed(3)}">`,
  ];
  for (const { k, cases } of suites) {
    const release = k.kind === 'error' ? '' : k.report.kernel.release;
    const arch = k.kind === 'error' ? undefined : k.report.kernel.arch;
    const time = k.kind === 'run' ? k.report.timings.totalMs / 1000 : 0;
    lines.push(
      `  <testsuite name="${xml(k.spec)}" tests="${cases.length}" failures="${count(cases, 'failure')}" errors="${count(cases, 'error')}" skipped="${count(cases, 'skipped')}" time="${time.toFixed(3)}">`,
      `    <properties><property name="kernel" value="${xml(k.spec)}"/><property name="release" value="${xml(release)}"/>${arch ? `<property name="arch" value="${xml(arch)}"/>` : ''}</properties>`,
    );
    for (const c of cases) {
      const open = `    <testcase classname="${xml(c.classname)}" name="${xml(c.name)}"`;
      const inner: string[] = [];
      if (c.result.kind === 'failure' || c.result.kind === 'error') inner.push(`      <${c.result.kind} type="${xml(c.result.type)}" message="${xml(c.result.message)}">${xml(c.result.body)}</${c.result.kind}>`);
      if (c.result.kind === 'skipped') inner.push(`      <skipped message="${xml(c.result.message)}"/>`);
      if (c.out) inner.push(`      <system-out>${xml(c.out)}</system-out>`);
      lines.push(inner.length ? `${open}>\n${inner.join('\n')}\n    </testcase>` : `${open}/>`);
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}
