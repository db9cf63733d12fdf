/**
 * Several kernels in one command: every kernel is fetched and its driver built
 * at once, while guests take turns through `jobs` slots, so one kernel's boot
 * overlaps another's build. A kernel that cannot be tried is an entry of its
 * own, never the end of the matrix, and leaves no directory of its own unless
 * it kept something there (a console, a build log).
 */
import { readdir, rmdir } from 'node:fs/promises';
import { kernelSlug } from '../kernel/spec.js';
import type { CheckReport, KernelEntry, MatrixReport, RunReport } from '../model/report.js';
import type { RunDir } from '../rundir/run-dir.js';
import { Limiter } from '../util/limiter.js';
import { assembleMatrix, kernelError } from './model.js';

export interface MatrixOptions {
  command: 'run' | 'check';
  specs: readonly string[];
  /** Guests at once. */
  jobs: number;
  /** The matrix's own directory; each kernel gets <dir>/<kernel slug>. */
  dir: RunDir;
}

export type OneKernel = (spec: string, ctx: { outputDir: string; guestSlots: Limiter }) => Promise<RunReport | CheckReport>;

/** A kernel's directory that its failure left empty (it failed before writing anything) goes. */
async function dropIfEmpty(path: string): Promise<void> {
  const names = await readdir(path).catch(() => undefined);
  if (names?.length === 0) await rmdir(path).catch(() => undefined);
}

export async function runMatrix(opts: MatrixOptions, runOne: OneKernel): Promise<MatrixReport> {
  const t0 = performance.now();
  const guestSlots = new Limiter(opts.jobs);
  const kernels = await Promise.all(
    opts.specs.map(async (spec): Promise<KernelEntry> => {
      const outputDir = opts.dir.file(kernelSlug(spec));
      try {
        const report = await runOne(spec, { outputDir, guestSlots });
        return report.command === 'run' ? { spec, kind: 'run', report } : { spec, kind: 'check', report };
      } catch (e) {
        await dropIfEmpty(outputDir);
        return { spec, kind: 'error', error: kernelError(e) };
      }
    }),
  );
  const report = assembleMatrix({ command: opts.command, kernels, dir: opts.dir.path, resultsJson: opts.dir.resultsJson, totalMs: Math.round(performance.now() - t0) });
  await opts.dir.writeResults(report);
  return report;
}
