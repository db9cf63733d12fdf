/**
 * `mmaplab run`: acquire the kernel -> build driver, test program and
 * initramfs -> boot a guest -> one job per strategy (every check) -> assess ->
 * a RunReport. A strategy that crashes or hangs its guest is charged with it;
 * the strategies after it run in a fresh boot. Returns data; never prints
 * (progress goes to the caller's callback).
 */
import { appendFile, copyFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { buildModule } from '../build/kbuild.js';
import { symbolizeProblems, symbolizer } from '../build/symbolize.js';
import { buildTestProgram } from '../build/userspace.js';
import { assessJob, type Assessment } from '../diagnose/assess.js';
import { CUSTOM_DRIVER, STRATEGIES } from '../diagnose/expectations.js';
import { buildInitramfs } from '../guest/initramfs.js';
import { jobPayload, labJob } from '../guest/job.js';
import type { CheckName } from '../guest/checks.js';
import { acquireKernel, parseKernelSpec, type Kernel } from '../kernel/index.js';
import { reachedInit } from '../parse/kmsg.js';
import { assembleReport } from '../report/assemble.js';
import type { RunReport } from '../report/model.js';
import { MmaplabError } from '../util/errors.js';
import { cacheRoot, projectPaths, stateRoot } from '../util/paths.js';
import { requireTool } from '../util/tools.js';
import { chooseAccel, type AccelRequest } from '../vm/accel.js';
import { GuestVm, type BootResult } from '../vm/guest-vm.js';
import { BASE_APPEND, type Accel } from '../vm/qemu-args.js';
import { qemuInfo, type QemuInfo } from '../vm/qemu.js';

export type Phase = 'kernel' | 'build' | 'accel' | 'boot' | 'job' | 'report';

/** What every command that boots a guest is told: the kernel, the machine, where things go. */
export interface GuestOptions {
  kernel: string;
  flavour: string;
  accel: AccelRequest;
  /** Hard deadline for each job, including the boot it may need. */
  timeoutS: number;
  memoryMb: number;
  outputDir: string | undefined;
  archiveUri: string | undefined;
  securityUri: string | undefined;
  refreshKernel: boolean;
  cacheDir?: string;
  stateDir?: string;
  onProgress?: (phase: Phase, message: string) => void;
}

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

export async function makeRunDir(opts: Pick<RunOptions, 'outputDir' | 'stateDir'>): Promise<string> {
  if (opts.outputDir) {
    const dir = resolve(opts.outputDir);
    await mkdir(dir, { recursive: true });
    return dir;
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const dir = join(opts.stateDir ?? stateRoot(), 'runs', `${stamp}-${randomBytes(3).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Probe KVM with a real guest: it must reach the agent within the deadline. */
export function kvmProbe(qemu: QemuInfo, kernel: Kernel, initrd: string, runDir: string, memoryMb: number) {
  return async (): Promise<string | undefined> => {
    const r = await GuestVm.start(
      { accel: 'kvm', memoryMb, kernelImage: kernel.image, initrd, append: [...BASE_APPEND, 'mmaplab.probe'], firmware: qemu.firmware },
      { qemu: qemu.binary, consoleLog: join(runDir, 'kvm-probe-console.log'), bootTimeoutMs: 10_000 },
    );
    if (r.kind === 'ready') {
      await r.vm.kill();
      return undefined;
    }
    if (r.kind === 'exited' && /mmaplab-agent: probe ok/.test(r.console)) return undefined;
    return r.kind === 'timeout' ? 'did not boot within 10 s' : `exited early (${r.stderr.trim().split('\n')[0] ?? 'no message'})`;
  };
}

export interface Booted {
  vm: GuestVm;
  bootMs: number;
  guestUptimeS: number;
  attempts: number;
}

/** Boot, retrying once when the kernel panics before init ran (a known TCG/QEMU flake, not the driver). */
export async function bootGuest(
  qemu: QemuInfo,
  accel: Accel,
  kernel: Kernel,
  initrd: string,
  opts: Pick<RunOptions, 'memoryMb' | 'timeoutS'>,
  notes: string[],
  consoleLog: string,
): Promise<Booted> {
  let last: Exclude<BootResult, { kind: 'ready' }> | undefined;
  for (let attempt = 1; attempt <= 2; attempt++) {
    const r = await GuestVm.start(
      { accel, memoryMb: opts.memoryMb, kernelImage: kernel.image, initrd, append: [...BASE_APPEND], firmware: qemu.firmware },
      { qemu: qemu.binary, consoleLog, bootTimeoutMs: Math.min(90_000, opts.timeoutS * 1000) },
    );
    if (r.kind === 'ready') return { vm: r.vm, bootMs: r.bootMs, guestUptimeS: r.guestUptimeS, attempts: attempt };
    last = r;
    const earlyPanic = r.kind === 'exited' && /Kernel panic/.test(r.console) && !reachedInit(r.console);
    if (!earlyPanic || attempt === 2) break;
    const kept = consoleLog.replace(/\.log$/, `-attempt${attempt}.log`);
    await rename(consoleLog, kept);
    notes.push(`the kernel panicked before init on boot attempt ${attempt} (an infrastructure flake, not the driver); retried (${kept})`);
  }
  const tail = (last?.console ?? '').trimEnd().split('\n').slice(-15);
  if (last?.kind === 'timeout') {
    throw new MmaplabError('boot', `the guest did not become ready within ${Math.min(90, opts.timeoutS)} s (hang during boot); QEMU was killed`, {
      details: tail,
      hint: `full console: ${consoleLog}`,
      artifacts: { consoleLog },
    });
  }
  const stderr = last?.kind === 'exited' ? last.stderr.trim() : '';
  throw new MmaplabError('boot', `QEMU exited before the guest was ready${stderr ? `: ${stderr.split('\n')[0]}` : ''}`, {
    details: stderr ? stderr.split('\n').slice(0, 10) : tail,
    hint: `full console: ${consoleLog}`,
    artifacts: { consoleLog },
  });
}

/**
 * The guests of one command, booted as needed: the first console is
 * console.log, each boot after a crash gets console-bootN.log.
 */
export class GuestBoots {
  boots = 0;
  attempts = 0;
  first: Booted | undefined;
  readonly consoleLogs: string[] = [];

  constructor(
    private readonly start: (consoleLog: string) => Promise<Booted>,
    private readonly runDir: string,
    private readonly progress: (message: string) => void,
  ) {}

  async boot(): Promise<GuestVm> {
    this.boots++;
    const consoleLog = join(this.runDir, this.boots === 1 ? 'console.log' : `console-boot${this.boots}.log`);
    this.consoleLogs.push(consoleLog);
    this.progress(this.boots > 1 ? ` (boot ${this.boots}, after a crash)` : '');
    const booted = await this.start(consoleLog);
    this.first ??= booted;
    this.attempts += booted.attempts;
    return booted.vm;
  }
}

export async function runLab(opts: RunOptions): Promise<RunReport> {
  const t0 = performance.now();
  const progress = opts.onProgress ?? (() => {});
  const cacheDir = opts.cacheDir ?? cacheRoot();
  const notes: string[] = [];
  const spec = parseKernelSpec(opts.kernel, opts.flavour);
  const runDir = await makeRunDir(opts);

  // Fail fast on missing host tools, before any download.
  const qemu = await qemuInfo();
  for (const tool of ['gcc', 'make']) requireTool(tool);

  progress('kernel', `kernel ${opts.kernel} (${opts.flavour})`);
  const kernel = await acquireKernel(spec, {
    cacheDir,
    archiveUri: opts.archiveUri,
    securityUri: opts.securityUri,
    refresh: opts.refreshKernel,
    onProgress: (m) => progress('kernel', m),
  });
  const tKernel = performance.now();

  progress('build', `building the driver for ${kernel.release}, the test program and the initramfs`);
  const [module, program, initramfs] = await Promise.all([
    buildModule({ source: opts.moduleDir, kernel, cacheDir, logDir: runDir }),
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
  const tJobs = performance.now();
  try {
    for (const [i, strategy] of strategies.entries()) {
      vm ??= await guests.boot();
      progress('job', `${strategy}: ${opts.checks.join(', ')}`);
      const job = labJob({
        id: i + 1,
        strategy,
        modulePath: module.ko,
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
    machine: { accel: accel.accel, accelReason: accel.reason, qemu: qemu.version, boots: guests.boots, bootAttempts: guests.attempts },
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
