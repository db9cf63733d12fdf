/**
 * `mmaplab run`: set up the lab (a guest on a Debian kernel, or an SSH
 * target) -> one job per strategy (every check) -> assess -> a RunReport. A
 * strategy that crashes or hangs its guest is charged with it; the strategies
 * after it run in a fresh boot (on a target that went down: not at all).
 * Returns data; never prints (progress goes to the caller's callback).
 */
import { copyFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { assembleReport } from '../diagnose/assemble.js';
import { assessJob } from '../diagnose/assess.js';
import { CUSTOM_DRIVER, STRATEGIES } from '../diagnose/expectations.js';
import { labJob, type LabJob } from '../guest/job.js';
import { kernelPgReservedBit } from '../kernel/page-flags.js';
import { jobTiming } from '../machines/machine.js';
import type { JobTiming } from '../model/timing.js';
import { fileIn, symbolizeFindings, symbolizer } from '../kbuild/symbolize.js';
import { resolveDriverSource } from '../kbuild/driver-source.js';
import { setUpLab, type BuiltLab, type SetupOptions } from '../machines/setup.js';
import type { CheckName } from '../model/checks.js';
import type { RunReport } from '../model/report.js';
import { RunDir } from '../rundir/run-dir.js';
import { mapConcurrent } from '../util/limiter.js';
import { cacheRoot, projectPaths } from '../util/paths.js';

export interface RunOptions extends SetupOptions {
  moduleDir: string;
  /**
   * Strategies to run, in order, each loaded as strategy=NAME. Default: every
   * strategy of the bundled driver; for a driver of the user's own, one run
   * without a strategy parameter, judged as 'custom'.
   */
  strategies: readonly string[] | undefined;
  checks: readonly CheckName[];
  pages: number;
}

/** The module (with debug info, for oops frames later) and the test program, kept in the run directory. */
async function keepArtifacts(runDir: RunDir, ko: string, name: string, testProgram: string): Promise<{ moduleCopy: string; testCopy: string }> {
  const moduleCopy = runDir.file(`${name}.ko`);
  const testCopy = runDir.file('mmap-test');
  if (ko !== moduleCopy) await copyFile(ko, moduleCopy);
  if (testProgram !== testCopy) await copyFile(testProgram, testCopy);
  return { moduleCopy, testCopy };
}

export async function runLab(opts: RunOptions): Promise<RunReport> {
  const t0 = performance.now();
  const cacheDir = opts.cacheDir ?? cacheRoot();
  const notes: string[] = [];
  const runDir = await RunDir.create(opts);

  const lab = await setUpLab(opts, opts.moduleDir, runDir, cacheDir, notes);
  // `run` has nothing to report without a driver: the build failure is the error.
  if (lab.kind === 'build-failed') throw lab.error;
  // What a target kept is reported as machine.leftBehind: the machine is closed before the report is made.
  return runBuilt(opts, lab, { runDir, notes, t0, firstJob: 1 }, () => lab.machine.close());
}

/** The built driver's strategies through the checks on the lab's machine; afterJobs runs once the jobs are done (close the machine, or keep it for the next run). */
export async function runBuilt(opts: RunOptions, lab: BuiltLab, at: { runDir: RunDir; notes: string[]; t0: number; firstJob: number }, afterJobs: () => Promise<unknown>): Promise<RunReport> {
  const { runDir, notes, t0 } = at;
  const progress = opts.onProgress ?? (() => {});
  const { module, machine } = lab;

  // One job per strategy; a boot serves jobs until one of them leaves the guest unusable.
  const takesStrategy = module.parameters.includes('strategy');
  const bundled = resolve(opts.moduleDir) === projectPaths.kernelModule;
  const strategies = opts.strategies ?? (bundled ? STRATEGIES : [CUSTOM_DRIVER]);
  // Jobs go to the machine as fast as it takes them: one at a time to a booted guest or a target,
  // side by side to restored snapshots (each in its own guest). Each is assessed, and its records kept, as it ends.
  // PG_reserved's bit, so a guest serving several jobs can tell one that freed reserved pages.
  const pgReserved = lab.guestKernel ? await kernelPgReservedBit(lab.guestKernel) : undefined;
  const tJobs = performance.now();
  const jobTimings: JobTiming[] = [];
  let assessments;
  try {
    assessments = await mapConcurrent(strategies, machine.parallel, async (strategy, i) => {
      progress('job', opts.checks.join(', '), { lane: strategy });
      const job: LabJob = {
        ...labJob({ id: at.firstJob + i, strategy, modulePath: module.jobKo, moduleName: module.name, moduleParams: takesStrategy && strategy !== CUSTOM_DRIVER ? [`strategy=${strategy}`] : [], testProgram: lab.testProgram, checks: opts.checks, pages: opts.pages }),
        ...(pgReserved === undefined ? {} : { pgReservedBit: pgReserved }),
      };
      const r = await machine.runJob(job);
      progress('job', r.end === 'done' ? 'done' : `ended: ${r.end}`, { lane: strategy, finished: true });
      if (r.timing) jobTimings.push(jobTiming(job.id, strategy, r.timing));
      const flood = r.flood ? { flood: r.flood } : {};
      await runDir.appendRecords(job, r.records, { end: r.end, boot: r.boot, command: 'run', console: r.console !== '', ...flood });
      return assessJob({ strategy, checks: opts.checks, jobId: job.id, end: r.end, records: r.records, console: r.console, boot: r.boot, ...flood });
    });
  } finally {
    await afterJobs();
  }
  const tJob = performance.now();

  progress('report', 'assessing');
  // Oops frames inside the driver, resolved to its own source lines.
  const symbols = await symbolizer(module.ko, module.name);
  // Only the driver's own files are quoted (its debug info may name any file).
  const src = await resolveDriverSource(opts.moduleDir);
  const quotable = fileIn(src.files.map((f) => join(src.root, f)));
  if (symbols) for (const a of assessments) await symbolizeFindings(a.strategy.problems, a.results.flatMap((r) => r.traced), symbols, quotable);
  const { moduleCopy, testCopy } = await keepArtifacts(runDir, module.ko, module.name, lab.testProgram);

  const boot = machine.firstReady();
  const report = assembleReport({
    kernel: lab.kernel,
    machine: machine.describe(),
    module: { name: module.name, compiler: module.compiler, buildCached: module.cached, buildWarnings: module.warnings, isolation: module.isolation },
    checks: opts.checks,
    assessments,
    notes,
    artifacts: {
      dir: runDir.path,
      consoleLog: machine.consoleLogs()[0] ?? runDir.consoleLog,
      resultsJson: runDir.resultsJson,
      module: moduleCopy,
      testProgram: testCopy,
    },
    timings: {
      totalMs: Math.round(performance.now() - t0),
      kernelMs: Math.round(lab.kernelMs),
      buildMs: Math.round(lab.buildMs),
      bootMs: Math.round(boot.bootMs),
      guestReadyMs: Math.round(boot.guestReadyMs),
      jobMs: Math.round(tJob - tJobs - boot.bootMs),
      jobs: jobTimings.sort((a, b) => a.job - b.job),
    },
  });
  await runDir.writeResults(report);
  return report;
}
