/**
 * `mmaplab run`: acquire the kernel -> build driver, test program and
 * initramfs -> boot a guest -> one job per strategy (every check) -> assess ->
 * a RunReport. A strategy that crashes or hangs its guest is charged with it;
 * the strategies after it run in a fresh boot. Returns data; never prints
 * (progress goes to the caller's callback).
 */
import { appendFile, copyFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { buildModule } from '../build/kbuild.js';
import { symbolizeProblems, symbolizer } from '../build/symbolize.js';
import { buildTestProgram } from '../build/userspace.js';
import { assessJob, type Assessment } from '../diagnose/assess.js';
import { CUSTOM_DRIVER, STRATEGIES } from '../diagnose/expectations.js';
import { buildInitramfs } from '../guest/initramfs.js';
import { jobPayload, labJob } from '../guest/job.js';
import type { CheckName } from '../guest/checks.js';
import { assembleReport } from '../report/assemble.js';
import type { RunReport } from '../report/model.js';
import { NO_LIMIT } from '../util/limiter.js';
import { cacheRoot, projectPaths } from '../util/paths.js';
import { requireTool } from '../util/tools.js';
import { chooseAccel } from '../vm/accel.js';
import type { GuestVm } from '../vm/guest-vm.js';
import { qemuInfo } from '../vm/qemu.js';
import { acquireFor, bootGuest, buildArchive, GuestBoots, kvmProbe, makeRunDir, type GuestOptions } from './session.js';

export type { GuestOptions, Phase } from './session.js';

export interface RunOptions extends GuestOptions {
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

export async function runLab(opts: RunOptions): Promise<RunReport> {
  const t0 = performance.now();
  const progress = opts.onProgress ?? (() => {});
  const cacheDir = opts.cacheDir ?? cacheRoot();
  const notes: string[] = [];
  const runDir = await makeRunDir(opts);

  // Fail fast on missing host tools, before any download.
  const qemu = await qemuInfo();
  for (const tool of ['gcc', 'make']) requireTool(tool);

  const kernel = await acquireFor(opts, cacheDir, progress);
  const tKernel = performance.now();

  progress('build', `building the driver for ${kernel.release}, the test program and the initramfs`);
  const [module, program, initramfs] = await Promise.all([
    buildModule({ source: opts.moduleDir, kernel, cacheDir, logDir: runDir, archive: buildArchive(opts), onProgress: (m) => progress('build', m) }),
    buildTestProgram(join(projectPaths.userspace, 'mmap-test.c'), cacheDir),
    buildInitramfs(kernel, cacheDir),
  ]);
  const tBuild = performance.now();

  const accel = await chooseAccel({
    requested: opts.accel,
    cacheDir,
    qemuVersion: qemu.version,
    probe: kvmProbe(qemu, kernel, initramfs.path, runDir, opts.memoryMb),
  });

  // One job per strategy; a boot serves jobs until one of them leaves the guest unusable.
  const takesStrategy = module.parameters.includes('strategy');
  const bundled = resolve(opts.moduleDir) === projectPaths.kernelModule;
  const strategies = opts.strategies ?? (bundled ? STRATEGIES : [CUSTOM_DRIVER]);
  const assessments: Assessment[] = [];
  let vm: GuestVm | undefined;
  const guests = new GuestBoots(
    (consoleLog) => bootGuest(qemu, accel.accel, kernel, initramfs.path, opts, notes, consoleLog),
    runDir,
    (after) => progress('boot', `booting ${kernel.release} under ${accel.accel.toUpperCase()}${after}`),
  );
  // In a matrix, guests wait for a slot; fetching and building above do not.
  const tJobs = await (opts.guestSlots ?? NO_LIMIT).run(async () => {
    const started = performance.now();
    try {
      for (const [i, strategy] of strategies.entries()) {
        vm ??= await guests.boot();
        progress('job', `${strategy}: ${opts.checks.join(', ')}`);
        const job = labJob({
          id: i + 1,
          strategy,
          modulePath: module.guestKo,
          moduleName: module.name,
          moduleParams: takesStrategy && strategy !== CUSTOM_DRIVER ? [`strategy=${strategy}`] : [],
          testProgram: program.path,
          checks: opts.checks,
          pages: opts.pages,
        });
        const end = await vm.runJob(job.id, await jobPayload(job, { inGuest: vm.filesInGuest }), opts.timeoutS * 1000);
        await appendFile(join(runDir, 'records.jsonl'), end.records.map((r) => `${JSON.stringify({ job: job.id, strategy, ...r })}\n`).join(''));
        assessments.push(assessJob({ strategy, checks: opts.checks, jobId: job.id, end: end.kind, records: end.records, console: vm.console, boot: guests.boots }));
        if (end.kind !== 'done') {
          // The guest is unusable: kill it now; the next strategy gets a fresh boot.
          await vm.kill();
          vm = undefined;
        }
      }
    } finally {
      // A guest that finished powers off politely; a stuck one is killed at once.
      if (vm) await vm.powerOff(10_000);
    }
    return started;
  });
  const tJob = performance.now();

  progress('report', 'assessing');
  // Oops frames inside the driver, resolved to its own source lines.
  const symbols = await symbolizer(module.ko, module.name);
  if (symbols) for (const a of assessments) await symbolizeProblems(a.strategy.problems, symbols);
  const moduleCopy = join(runDir, `${module.name}.ko`);
  const testCopy = join(runDir, 'mmap-test');
  await copyFile(module.ko, moduleCopy);
  await copyFile(program.path, testCopy);

  const report = assembleReport({
    kernel: { spec: kernel.spec, release: kernel.release, packageVersion: kernel.packageVersion, flavour: kernel.flavour },
    machine: { accel: accel.accel, accelReason: accel.reason, qemu: qemu.version, boots: guests.boots, bootAttempts: guests.attempts, bootImage: guests.first?.image ?? 'bzimage' },
    module: { name: module.name, compiler: module.compiler, buildCached: module.cached, buildWarnings: module.warnings },
    checks: opts.checks,
    assessments,
    notes,
    artifacts: {
      dir: runDir,
      consoleLog: guests.consoleLogs[0] ?? join(runDir, 'console.log'),
      resultsJson: join(runDir, 'results.json'),
      module: moduleCopy,
      testProgram: testCopy,
    },
    timings: {
      totalMs: Math.round(performance.now() - t0),
      kernelMs: Math.round(tKernel - t0),
      buildMs: Math.round(tBuild - tKernel),
      bootMs: Math.round(guests.first?.bootMs ?? 0),
      guestReadyMs: Math.round((guests.first?.guestUptimeS ?? 0) * 1000),
      jobMs: Math.round(tJob - tJobs - (guests.first?.bootMs ?? 0)),
    },
  });
  await writeFile(report.artifacts.resultsJson, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}
