/**
 * The terminal report: the grid of strategies x checks (or, for one strategy,
 * each check in detail), whether the lab expected each outcome, and why.
 */
import type { ChalkInstance } from 'chalk';
import { describeIsolation } from './isolation.js';
import { kprobeArgsFor } from '../guest/job.js';
import { formatDiagnostic } from '../model/diagnostic.js';
import { describeExpected } from '../diagnose/expectations.js';
import type { CheckName } from '../model/checks.js';
import type { KernelProblem } from '../model/kernel-log.js';
import { isRoutineNoise } from '../parse/kmsg.js';
import { describeCalls } from '../parse/trace.js';
import type { GuestMachine, RunReport, SnapshotUse, TargetMachine } from '../model/report.js';
import type { CheckResult, StrategyRun } from '../model/outcome.js';
import { cellVerdict } from '../diagnose/words.js';
import { outcomeCode } from '../model/outcome.js';
import { explanationGroups } from './explanation-groups.js';
import { pictureLegend, renderPicture } from './picture-text.js';


/** The grid's column heads. */
export const CHECK_SHORT: Record<CheckName, string> = {
  private: 'private',
  shared: 'shared',
  'private-per-page': 'per-page',
  'shared-write': 'sh-write',
  'private-isolation': 'isolation',
  mprotect: 'mprotect',
  offset: 'offset',
  oversize: 'oversize',
  readonly: 'read-only',
};

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function renderProblem(p: KernelProblem, c: ChalkInstance): string[] {
  const lines = [c.red(`  ${p.title}`)];
  const where = p.locationSource ?? p.source;
  if (p.location) lines.push(`    at ${p.location}${p.locationModule ? ` [${p.locationModule}]` : ''}${where ? ` ${c.bold(where)}` : ''}`);
  for (const f of p.callTrace.filter((x) => x.reliable).slice(0, 8)) {
    lines.push(c.dim(`    ${f.fn}${f.offset ? `+${f.offset}` : ''}${f.module ? ` [${f.module}]` : ''}`) + (f.source ? ` ${c.bold(f.source)}` : ''));
  }
  return lines;
}

function stepLine(label: string, s: StrategyRun['insmod'], c: ChalkInstance): string {
  return `${label} ${s === undefined ? c.dim('not reached') : s.ok ? c.green('ok') : c.red(`failed (status ${s.status}) ${s.output}`)}`;
}

function colourCell(r: CheckResult, text: string, c: ChalkInstance): string {
  if (!r.matchesExpected) return c.red.bold(text);
  return r.outcome.kind === 'ok' ? c.green(text) : c.yellow(text);
}

function renderGrid(report: RunReport, c: ChalkInstance): string[] {
  const W = 11;
  const first = Math.max(10, ...report.strategies.map((s) => s.strategy.length)) + 2;
  const out = [c.bold(('strategy'.padEnd(first) + report.checks.map((k) => CHECK_SHORT[k].padEnd(W)).join('')).trimEnd())];
  for (const s of report.strategies) {
    const cells = report.checks.map((k) => {
      const r = report.results.find((x) => x.strategy === s.strategy && x.check === k);
      if (!r) return ''.padEnd(W);
      const text = `${outcomeCode(r.outcome)}${r.matchesExpected ? '' : '!'}`;
      return colourCell(r, text, c) + ' '.repeat(Math.max(1, W - text.length));
    });
    out.push(s.strategy.padEnd(first) + cells.join('').trimEnd());
  }
  out.push(c.dim(`${' '.repeat(first)}! = not what the lab expects; yellow = an expected failure`));
  return out;
}

function renderDetail(r: CheckResult, c: ChalkInstance): string[] {
  const mark =
    r.outcome.kind === 'skipped' ? c.dim('(no verdict)') : r.matchesExpected ? c.green('as expected') : c.red.bold(`UNEXPECTED (expected ${describeExpected(r.expected)})`);
  const out = [`${c.bold(r.check.padEnd(18))} ${colourCell(r, cellVerdict(r), c)}  ${mark}`];
  const pad = ' '.repeat(19);
  out.push(`${pad}${c.dim('exit:')} ${r.exitDescription}`);
  if (r.picture) out.push(...renderPicture(`${c.dim('map:')}  `, r.picture, c, pad), ...(r.picture.by === 'index' ? [] : [c.dim(`${pad}      (${pictureLegend(r.picture)})`)]));
  for (const t of r.traced) out.push(`${pad}${c.dim('traced:')} ${describeCalls(t)} ${c.dim(`(from ${t.callerSource ? `${t.callerSource}: ${t.callerCode ?? t.caller}` : t.caller})`)}`);
  for (const l of r.kernelLog.slice(0, 8)) out.push(`${pad}${c.dim('kernel:')} ${l.text}`);
  return out;
}

/** One explanation per distinct failure, with the cells it explains. */
function renderExplanations(results: readonly CheckResult[], c: ChalkInstance): string[] {
  const out: string[] = [];
  for (const { explanation: e, cells } of explanationGroups(results)) {
    // Group strategies that share the same checks: "private, mprotect in seed, checked".
    const bySet = new Map<string, string[]>();
    for (const s of new Set(cells.map((x) => x.strategy))) {
      const checks = cells.filter((x) => x.strategy === s).map((x) => x.check).join(', ');
      bySet.set(checks, [...(bySet.get(checks) ?? []), s]);
    }
    const where = [...bySet].map(([checks, ss]) => `${checks} in ${ss.join(', ')}`).join('; ');
    const unexpected = cells.some((x) => !x.matchesExpected);
    out.push(`${unexpected ? c.red.bold('✗') : c.yellow('•')} ${c.bold(e.summary)}`);
    out.push(c.dim(`  (${where})`));
    e.why.forEach((w, i) => out.push(`  ${i + 1}. ${w}`));
    for (const f of e.fixes) out.push(`  ${c.green('fix:')} ${f}`);
    out.push('');
  }
  return out;
}

/** Where the lab ran: the guest (accelerator, QEMU, boots) or the SSH target (and anything left on it). */
export function machineLines(m: GuestMachine | TargetMachine, c: ChalkInstance): string[] {
  if (m.kind === 'ssh') {
    return [
      `  machine  ${m.target}${m.address || m.via ? c.dim(` = ${m.address ?? m.target}${m.via ? ` via ${m.via.join(', ')}` : ''}`) : ''} (${m.os}, ${m.arch}), host key ${m.hostKey}`,
      ...m.leftBehind.map((l) => c.red(`  left on the target: ${l}`)),
    ];
  }
  const lines = [`  machine  ${m.accel.toUpperCase()}, QEMU ${m.qemu}${m.machineType ? `, ${m.machineType}` : ''}${m.bootImage === 'pvh' ? ', PVH boot' : ''}${m.accel === 'tcg' ? c.dim(` (${m.accelReason})`) : ''}${m.boots > 1 ? `, ${m.boots} boots` : ''}`];
  const line = m.snapshot ? snapshotLine(m.snapshot) : undefined;
  if (line) lines.push(m.snapshot?.use === 'failed' ? c.yellow(line) : line);
  return lines;
}

export function snapshotLine(s: SnapshotUse): string | undefined {
  const jobs = s.use === 'off' ? undefined : s.jobs;
  const each = (n: number, ms: number) => {
    // Guests that served several jobs (a job that left its guest as it was hands it on).
    if (jobs !== undefined && jobs !== n) return `${jobs} job${jobs === 1 ? '' : 's'} in ${n} guest${n === 1 ? '' : 's'} restored from it (${seconds(ms)} per restore, median); a guest served the next job while each left it as it was`;
    return n === 1 ? `1 job, in a guest restored afresh (restore ${seconds(ms)})` : `${n} jobs, each in a guest restored afresh (${seconds(ms)} per restore, median)`;
  };
  switch (s.use) {
    case 'off':
      return `  snapshot none: every guest booted (${s.reason})`;
    case 'restored':
      return `  snapshot ${s.key}: ${each(s.restores, s.restoreMs)}`;
    case 'made': {
      const why = s.why === 'missing' ? 'none was cached' : s.why === 'stale' ? 'the cached one no longer matched' : 'the cached one was damaged';
      return `  snapshot ${s.key}, made by this run (${why}; boot ${seconds(s.bootMs)}): ${each(s.restores, s.restoreMs)}`;
    }
    case 'failed':
      return `  snapshot not used: ${s.reason}; ${s.restores ? `${s.restores} restored, the rest` : 'the jobs'} ran in a booted guest`;
  }
}

export function renderRunText(report: RunReport, c: ChalkInstance): string {
  const out: string[] = [];
  const k = report.kernel;
  const custom = report.strategies.length === 1 && report.strategies[0]!.strategy === 'custom';
  const what = custom
    ? `driver ${report.module.name}`
    : report.strategies.length === 1
      ? `the ${report.strategies[0]!.strategy} driver`
      : `${report.strategies.length} strategies x ${report.checks.length} checks`;
  out.push(c.bold(`mmaplab run: ${what} on ${k.spec}`));
  out.push(`  kernel   ${k.release} (${report.machine.kind === 'ssh' ? k.packageVersion : `Debian ${k.packageVersion}`}${k.arch ? `, ${k.arch}` : ''})`);
  out.push(...machineLines(report.machine, c));
  const how = report.module.isolation && report.module.isolation.kind !== 'own' ? `, ${describeIsolation(report.module.isolation)}` : '';
  out.push(`  driver   ${report.module.name}.ko, built with ${report.module.compiler}${how}${report.module.buildCached ? c.dim(' (cached build)') : ''}`);
  for (const w of report.module.buildWarnings) out.push(c.yellow(`           ${formatDiagnostic(w)}`));
  for (const s of report.strategies) {
    if (s.insmod?.ok && s.rmmod?.ok && s.end === 'done') continue;
    out.push(`  ${s.strategy}: ${stepLine('insmod', s.insmod, c)}, ${stepLine('rmmod', s.rmmod, c)}${s.end === 'done' ? '' : c.red(`, job ${s.end}`)}`);
  }
  if (report.strategies.length > 0 && report.strategies.every((s) => !s.tracing)) {
    const m = report.machine;
    out.push(c.dim(m.kind === 'ssh' && !kprobeArgsFor(m.arch) ? `  tracing  off: mmaplab cannot trace ${m.arch} yet (see the note): no traced calls` : '  tracing  unavailable in this kernel (no kprobe events): no traced calls'));
  }
  out.push('');

  if (report.strategies.length === 1) {
    for (const r of report.results) out.push(...renderDetail(r, c));
  } else {
    out.push(...renderGrid(report, c));
    const odd = report.results.filter((r) => !r.matchesExpected);
    if (odd.length) {
      out.push('', c.bold('cells that differ from what the lab expects:'));
      for (const r of odd) out.push(...renderDetail({ ...r, check: r.check }, c).map((l, i) => (i === 0 ? `${r.strategy} / ${l}` : l)));
    }
  }
  out.push('');
  out.push(...renderExplanations(report.results, c));

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
  const differ = report.results.filter((r) => !r.matchesExpected).length;
  const t = report.timings;
  const lost = report.strategies.find((s) => s.end === 'connection-lost');
  if (lost && report.machine.kind === 'ssh') {
    out.push(c.red.bold(`LOST: the connection to ${report.machine.target} broke during ${lost.strategy} (the machine crashed, rebooted or left the network); the strategies after it did not run; its kernel log until then: ${report.artifacts.consoleLog}`));
  }
  out.push(
    report.status === 'pass'
      ? c.green.bold(`PASS: all ${report.results.length} outcomes are what the lab expects`)
      : c.red.bold(`FAIL: ${differ} of ${report.results.length} outcomes differ from what the lab expects${problems.length ? `; ${problems.length} kernel problem(s)` : ''}`),
  );
  out.push(c.dim(`artefacts  ${report.artifacts.dir} (console.log, results.json, records.jsonl, ${report.module.name}.ko)`));
  const restored = report.machine.kind !== 'ssh' && report.machine.snapshot?.use === 'restored';
  out.push(c.dim(`time       ${seconds(t.totalMs)} (kernel ${seconds(t.kernelMs)}, build ${seconds(t.buildMs)}, ${restored ? 'first restore' : 'boot'} ${seconds(t.bootMs)}, jobs ${seconds(t.jobMs)})`));
  return `${out.join('\n')}\n`;
}

/** A console on its own (no job records): what the kernel reported. */
export function renderConsoleText(r: { path: string; problems: readonly KernelProblem[]; reachedInit: boolean; lines: readonly unknown[] }, c: ChalkInstance): string {
  const out = [c.bold(`mmaplab parse: ${r.path}`), `  ${r.lines.length} lines; the guest ${r.reachedInit ? 'reached its init' : c.red('never reached its init')}`];
  if (r.problems.length === 0) out.push(`kernel     ${c.green('no oops, BUG, WARNING or panic')}`);
  else {
    out.push(c.red.bold(`kernel     ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}:`));
    for (const p of r.problems) out.push(...renderProblem(p, c));
  }
  return `${out.join('\n')}\n`;
}
