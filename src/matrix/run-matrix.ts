/**
 * Several kernels in one command: every kernel is fetched and its driver built
 * at once, while guests take turns through `jobs` slots, so one kernel's boot
 * overlaps another's build. A kernel that cannot be tried is an entry of its
 * own, never the end of the matrix.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kernelSlug } from '../kernel/spec.js';
import type { CheckReport, RunReport } from '../model/report.js';
import { Limiter } from '../util/limiter.js';
import { assembleMatrix, kernelError } from './model.js';
import { type KernelEntry, type MatrixReport } from '../model/report.js';

export interface MatrixOptions {
  command: 'run' | 'check';
  specs: readonly string[];
  /** Guests at once. */
  jobs: number;
  /** The matrix's own directory; each kernel gets <dir>/<kernel slug>. */
  dir: string;
}

export type OneKernel = (spec: string, ctx: { outputDir: string; guestSlots: Limiter }) => Promise<RunReport | CheckReport>;

export async function runMatrix(opts: MatrixOptions, runOne: OneKernel): Promise<MatrixReport> {
  const t0 = performance.now();
  const guestSlots = new Limiter(opts.jobs);
  const kernels = await Promise.all(
    opts.specs.map(async (spec): Promise<KernelEntry> => {
      try {
        const report = await runOne(spec, { outputDir: join(opts.dir, kernelSlug(spec)), guestSlots });
        return report.command === 'run' ? { spec, kind: 'run', report } : { spec, kind: 'check', report };
      } catch (e) {
        return { spec, kind: 'error', error: kernelError(e) };
      }
    }),
  );
  const resultsJson = join(opts.dir, 'results.json');
  const report = assembleMatrix({ command: opts.command, kernels, dir: opts.dir, resultsJson, totalMs: Math.round(performance.now() - t0) });
  await writeFile(resultsJson, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}
