/** The terminal report: what happened, whether the lab expected it, and why. */
import type { ChalkInstance } from 'chalk';
import { formatDiagnostic } from '../build/diagnostics.js';
import { describeExpected } from '../diagnose/expectations.js';
import type { KernelProblem } from '../parse/kmsg.js';
import { isRoutineNoise } from '../parse/kmsg.js';
import type { ModeResult, Outcome, OutcomeKind, RunReport } from './model.js';

type Formatters = { [K in OutcomeKind]: (o: Extract<Outcome, { kind: K }>) => string };

/** Every outcome kind must have a verdict here, or this fails to compile. */
const VERDICT: Formatters = {
  ok: (o) => `${o.pagesOk}/${o.pages} pages 0xaabbccdd`,
  'wrong-data': (o) => `wrong data: ${o.pagesOk}/${o.pages} pages ok, page ${o.firstBad.page} holds ${o.firstBad.word} (index ${o.firstBad.index})`,
  sigbus: (o) => `SIGBUS at page ${o.page ?? '?'} (${o.code}, addr ${o.addr})`,
  sigsegv: (o) => `SIGSEGV at page ${o.page ?? '?'} (${o.code}, addr ${o.addr})`,
  'mmap-failed': (o) => `mmap() failed: ${o.errno} (${o.message})`,
  'open-failed': (o) => `open() failed: ${o.errno} (${o.message})`,
  killed: (o) => `killed by ${o.signal} (exit status ${o.status})`,
  crash: (o) => `kernel crash: ${o.title}`,
  hang: (o) => `hang in ${o.step}${o.evidence ? ` (${o.evidence})` : ''}`,
  'not-run': (o) => `not run: ${o.reason}`,
};

export function verdict(o: Outcome): string {
  return (VERDICT[o.kind] as (x: Outcome) => string)(o);
}

const MODE_LABEL = { private: 'MAP_PRIVATE', shared: 'MAP_SHARED' } as const;

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function renderProblem(p: KernelProblem, c: ChalkInstance): string[] {
  const lines = [c.red(`  ${p.title}`)];
  if (p.location) lines.push(`    at ${p.location}${p.source ? ` (${p.source})` : ''}`);
  const frames = p.callTrace.filter((f) => f.reliable).slice(0, 8);
  for (const f of frames) lines.push(c.dim(`    ${f.fn}${f.offset ? `+${f.offset}` : ''}${f.module ? ` [${f.module}]` : ''}`));
  return lines;
}

function renderMode(r: ModeResult, c: ChalkInstance): string[] {
  const good = r.outcome.kind === 'ok';
  const head = good ? c.green(verdict(r.outcome)) : c.yellow(verdict(r.outcome));
  const mark = r.matchesExpected ? c.green('as expected') : c.red.bold(`UNEXPECTED (expected ${describeExpected(r.expected)})`);
  const out = [`${c.bold(MODE_LABEL[r.mode].padEnd(12))} ${head}  ${mark}`];
  const pad = ' '.repeat(13);
  out.push(`${pad}${c.dim('exit:')} ${r.exitDescription}`);
  if (r.kernelLog.length) {
    out.push(`${pad}${c.dim('kernel log:')}`);
    for (const l of r.kernelLog.slice(0, 12)) out.push(`${pad}  ${l.text}`);
  }
  if (r.explanation) {
    out.push(`${pad}${c.bold('why:')} ${r.explanation.summary}`);
    r.explanation.why.forEach((w, i) => out.push(`${pad}  ${i + 1}. ${w}`));
    if (r.explanation.fixes.length) {
      out.push(`${pad}${c.bold('fix:')}`);
      for (const f of r.explanation.fixes) out.push(`${pad}  - ${f}`);
    }
  }
  return out;
}

export function renderRunText(report: RunReport, c: ChalkInstance): string {
  const out: string[] = [];
  const k = report.kernel;
  const driver = report.module.strategy === 'custom' ? `driver ${report.module.name}` : `${report.module.strategy} driver`;
  out.push(c.bold(`mmaplab run: the ${driver} on ${k.spec}`));
  out.push(`  kernel   ${k.release} (Debian ${k.packageVersion})`);
  out.push(`  machine  ${report.machine.accel.toUpperCase()}, QEMU ${report.machine.qemu}${report.machine.accel === 'tcg' ? c.dim(` (${report.machine.accelReason})`) : ''}`);
  out.push(`  driver   ${report.module.name}.ko${report.module.strategy === 'custom' ? '' : `, strategy ${report.module.strategy}`}, built with ${report.module.compiler}${report.module.buildCached ? c.dim(' (cached build)') : ''}`);
  for (const w of report.module.buildWarnings) out.push(c.yellow(`           ${formatDiagnostic(w)}`));
  const ins = report.module.insmod;
  out.push(`  insmod   ${ins === undefined ? c.red('never reported') : ins.ok ? c.green('ok') : c.red(`failed (status ${ins.status}) ${ins.output}`)}`);
  out.push('');
  for (const r of report.results) {
    out.push(...renderMode(r, c));
    out.push('');
  }
  const rm = report.module.rmmod;
  out.push(`rmmod      ${rm === undefined ? c.dim('not reached') : rm.ok ? c.green('ok') : c.red(`failed (status ${rm.status}) ${rm.output}`)}`);
  const problems = report.kernelLog.problems;
  const noise = report.kernelLog.lines.filter((l) => isRoutineNoise(l.text)).length;
  if (problems.length === 0) {
    out.push(`kernel     ${c.green('no oops, BUG, WARNING or panic')}${noise ? c.dim(` (${noise} routine out-of-tree/unsigned module lines)`) : ''}`);
  } else {
    out.push(c.red.bold(`kernel     ${problems.length} problem${problems.length === 1 ? '' : 's'} in the kernel log:`));
    for (const p of problems) out.push(...renderProblem(p, c));
  }
  for (const n of report.notes) out.push(c.dim(`note       ${n}`));
  if (report.consoleTail.length) {
    out.push(c.bold('console, last lines:'));
    for (const l of report.consoleTail) out.push(c.dim(`  ${l.replace(/\r$/, '')}`));
  }
  out.push('');
  const t = report.timings;
  out.push(
    report.status === 'pass'
      ? c.green.bold(`PASS: every outcome is what the lab expects of the ${driver}`)
      : c.red.bold(`FAIL: ${report.results.filter((r) => !r.matchesExpected).length} outcome(s) differ from what the lab expects${problems.length ? `, ${problems.length} kernel problem(s)` : ''}`),
  );
  out.push(c.dim(`artefacts  ${report.artifacts.dir} (console.log, results.json, ${report.module.name}.ko)`));
  out.push(c.dim(`time       ${seconds(t.totalMs)} (kernel ${seconds(t.kernelMs)}, build ${seconds(t.buildMs)}, boot ${seconds(t.bootMs)}, job ${seconds(t.jobMs)})`));
  return `${out.join('\n')}\n`;
}
