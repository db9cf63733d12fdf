/**
 * `run` and `check` on one kernel or several, and what CI reads of either: the
 * one place that decides between a single report and a matrix, and writes
 * --json, --junit, GitHub's step summary and annotations from the same model.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import { kernelSlug, matrixEntries } from '../kernel/spec.js';
import type { Arch } from '../kernel/arch.js';
import { assembleMatrix, kernelError } from '../matrix/model.js';
import { type MatrixReport } from '../model/report.js';
import { runMatrix } from '../matrix/run-matrix.js';
import { matrixAnnotations } from '../report/annotations.js';
import { renderJunit } from '../report/junit.js';
import { renderMarkdown } from '../report/markdown.js';
import { renderMatrixText } from '../report/matrix-text.js';
import { renderJobTimings } from '../report/timings.js';
import type { CheckReport, RunReport } from '../model/report.js';
import { makeStyle } from '../report/style.js';
import { errorExitCode } from '../model/exit.js';
import { RunDir } from '../rundir/run-dir.js';
import { isMmaplabError } from '../util/errors.js';
import { reportError } from './report-error.js';
import { progressOutput } from './progress.js';
import type { Progress } from '../model/progress.js';
import { executedCommands } from '../util/exec.js';
import { Limiter } from '../util/limiter.js';

/** What onKernels needs of the CLI's options. */
export interface KernelCliOptions {
  kernel: string[];
  /** Several: a matrix of kernels x arches, its entries named <spec>/<arch>. */
  arch?: Arch[];
  /** An SSH target: the one "kernel" of the run, named by its URL. */
  target?: string;
  jobs: number;
  junit?: string;
  html?: string;
  json?: boolean;
  outputDir?: string;
  color?: boolean;
  verbose?: boolean;
}

export type OneKernel = (
  kernel: string,
  ctx: { progress: Progress | undefined; label: string; guest: { outputDir?: string | undefined; guestSlots?: Limiter } },
) => Promise<RunReport | CheckReport>;

/**
 * `run` and `check` on one kernel or several: one kernel prints its own
 * report; several run as a matrix (guests in --jobs slots) and print the
 * matrix. Either way --junit, --json, GitHub's step summary and annotations
 * come from the same matrix model.
 */
export async function onKernels(
  command: 'run' | 'check',
  o: KernelCliOptions,
  one: OneKernel,
  renderOne: (report: RunReport | CheckReport, style: ReturnType<typeof makeStyle>) => string,
): Promise<void> {
  const specs = o.target ? [o.target] : matrixEntries(o.kernel, o.arch);
  const style = makeStyle({ color: o.color === false ? false : undefined });
  const progress = progressOutput(o);
  // Each kernel's progress, its end shown on the live area.
  // (One that throws before it returns a promise, a bad option say, goes the same way.)
  const tracked: OneKernel = (spec, ctx) =>
    Promise.resolve()
      .then(() => one(spec, ctx))
      .then(
        (r) => (progress?.finish(spec, r.status === 'pass' ? 'done' : 'failed', r.status === 'pass' ? 'passed' : 'failed'), r),
        (e: unknown) => {
          progress?.finish(spec, 'failed', firstLine(isMmaplabError(e) ? e.message : String(e)));
          throw e;
        },
      );
  const printed = (m: MatrixReport) => {
    if (o.json) process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
    return m;
  };
  let matrix: MatrixReport;
  try {
    if (specs.length === 1) {
      const spec = specs[0]!;
      const run = () => tracked(spec, { progress: progress?.sink(spec, ''), label: '', guest: { guestSlots: new Limiter(o.jobs) } }).finally(() => progress?.stop());
      matrix = await oneKernelReport(command, o, spec, run, (report) => renderOne(report, style), printed);
    } else {
      const dir = await RunDir.create({ outputDir: o.outputDir });
      matrix = await runMatrix({ command, specs, jobs: o.jobs, dir }, (spec, ctx) => tracked(spec, { progress: progress?.sink(spec, `${kernelSlug(spec)} `), label: `${kernelSlug(spec)} `, guest: ctx })).finally(() => progress?.stop());
      if (!o.json) process.stdout.write(renderMatrixText(matrix, style));
      printed(matrix);
      process.exitCode = matrix.exitCode;
    }
  } finally {
    // Whatever failed on the way, the terminal gets its cursor back.
    progress?.stop();
  }
  await writeCiOutputs(matrix, o.junit, o.html);
  if (o.verbose) {
    const err = makeStyle({ color: o.color === false ? false : undefined, stream: process.stderr });
    for (const k of matrix.kernels) {
      if (k.kind !== 'error') process.stderr.write(renderJobTimings(k.report.timings?.jobs ?? [], err, matrix.kernels.length > 1 ? `${k.spec}: ` : ''));
    }
    for (const c of executedCommands()) process.stderr.write(err.dim(`$ ${c}\n`));
  }
}

/** One kernel: its own report printed; a kernel that could not be tried is still a matrix for --json, --junit and --html. */
async function oneKernelReport(
  command: 'run' | 'check',
  o: KernelCliOptions,
  spec: string,
  run: () => Promise<RunReport | CheckReport>,
  render: (report: RunReport | CheckReport) => string,
  printed: (m: MatrixReport) => MatrixReport,
): Promise<MatrixReport> {
  try {
    const report = await run();
    process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : render(report));
    process.exitCode = report.exitCode;
    return assembleMatrix({ command, kernels: [report.command === 'run' ? { spec, kind: 'run', report } : { spec, kind: 'check', report }], dir: report.artifacts.dir, resultsJson: report.artifacts.resultsJson, totalMs: report.timings?.totalMs ?? 0 });
  } catch (e) {
    // Machine-readable output is promised even when the kernel could not be tried.
    if (!isMmaplabError(e) || e.kind === 'usage' || !(o.json || o.junit || o.html)) throw e;
    const matrix = printed(assembleMatrix({ command, kernels: [{ spec, kind: 'error', error: kernelError(e) }], dir: '', resultsJson: '', totalMs: 0 }));
    reportError(e, false);
    process.exitCode = errorExitCode(e.kind);
    return matrix;
  }
}

const firstLine = (s: string) => s.split('\n')[0] ?? '';

/** --junit, --html, and under GitHub Actions the step summary and annotations at the driver's lines. */
export async function writeCiOutputs(matrix: MatrixReport, junit: string | undefined, html?: string): Promise<void> {
  if (junit) {
    await writeFile(junit, renderJunit(matrix));
  }
  if (html) {
    const { renderResultsHtml } = await import('../report/results-html.js');
    await writeFile(html, renderResultsHtml(matrix));
  }
  if (process.env.GITHUB_ACTIONS !== 'true') return;
  if (process.env.GITHUB_STEP_SUMMARY) {
    await appendFile(process.env.GITHUB_STEP_SUMMARY, renderMarkdown(matrix));
  }
  for (const line of matrixAnnotations(matrix)) process.stdout.write(`${line}\n`);
}


