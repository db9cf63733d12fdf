/**
 * `mmaplab run`: acquire the kernel -> build driver, test program and
 * initramfs -> boot the guest -> run the job -> assess -> a RunReport.
 * Returns data; never prints (progress goes to the caller's callback).
 */
import { copyFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, relative, resolve } from 'node:path';
import { buildModule } from '../build/kbuild.js';
import { buildTestProgram } from '../build/userspace.js';
import { assessJob } from '../diagnose/assess.js';
import { CUSTOM_DRIVER } from '../diagnose/expectations.js';
import { buildInitramfs } from '../guest/initramfs.js';
import { jobPayload, labJob } from '../guest/job.js';
import type { MapMode } from '../guest/protocol.js';
import { acquireKernel, parseKernelSpec, type Kernel } from '../kernel/index.js';
import { reachedInit } from '../parse/kmsg.js';
import { runStatus, SCHEMA_VERSION, type RunReport } from '../report/model.js';
import { MmaplabError } from '../util/errors.js';
import { cacheRoot, projectPaths, stateRoot } from '../util/paths.js';
import { requireTool } from '../util/tools.js';
import { VERSION } from '../util/version.js';
import { chooseAccel, type AccelRequest } from '../vm/accel.js';
import { GuestVm, type BootResult } from '../vm/guest-vm.js';
import { BASE_APPEND, type Accel } from '../vm/qemu-args.js';
import { qemuInfo, type QemuInfo } from '../vm/qemu.js';

export type Phase = 'kernel' | 'build' | 'accel' | 'boot' | 'job' | 'report';

export interface RunOptions {
  kernel: string;
  flavour: string;
  moduleDir: string;
  strategy: string;
  modes: readonly MapMode[];
  pages: number;
  accel: AccelRequest;
  /** Hard deadline for the guest, boot included. */
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

export const DEFAULT_RUN_OPTIONS = {
  kernel: 'debian:bookworm',
  flavour: 'cloud-amd64',
  moduleDir: projectPaths.kernelModule,
  strategy: 'seed',
  modes: ['private', 'shared'] as MapMode[],
  pages: 16,
  accel: 'auto' as AccelRequest,
  timeoutS: 120,
  memoryMb: 256,
};


async function makeRunDir(opts: RunOptions): Promise<string> {
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
function kvmProbe(qemu: QemuInfo, kernel: Kernel, initrd: string, runDir: string, memoryMb: number) {
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

interface Booted {
  vm: GuestVm;
  bootMs: number;
  guestUptimeS: number;
  attempts: number;
}

/** Boot, retrying once when the kernel panics before init ran (a known TCG/QEMU flake, not the driver). */
async function bootGuest(
  qemu: QemuInfo,
  accel: Accel,
  kernel: Kernel,
  initrd: string,
  runDir: string,
  opts: RunOptions,
  notes: string[],
): Promise<Booted> {
  const consoleLog = join(runDir, 'console.log');
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
    await rename(consoleLog, join(runDir, `console-attempt${attempt}.log`));
    notes.push(`the kernel panicked before init on boot attempt ${attempt} (an infrastructure flake, not the driver); retried (console-attempt${attempt}.log)`);
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
  const displayDir = relative(process.cwd(), opts.moduleDir) || '.';
  const [module, program, initramfs] = await Promise.all([
    buildModule({ sourceDir: opts.moduleDir, kernel, cacheDir, displayDir, logDir: runDir }),
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

  progress('boot', `booting ${kernel.release} under ${accel.accel.toUpperCase()}`);
  const tBoot0 = performance.now();
  const booted = await bootGuest(qemu, accel.accel, kernel, initramfs.path, runDir, opts, notes);
  const tBoot = performance.now();

  // The bundled driver takes strategy=; a driver of the user's own is judged as 'custom'.
  const takesStrategy = module.parameters.includes('strategy');
  const strategy = takesStrategy ? opts.strategy : CUSTOM_DRIVER;
  progress('job', `loading the driver and mapping ${opts.pages} pages: ${opts.modes.map((m) => `MAP_${m.toUpperCase()}`).join(', ')}`);
  const job = labJob({
    id: 1,
    modulePath: module.ko,
    moduleParams: takesStrategy ? [`strategy=${opts.strategy}`] : [],
    testProgram: program.path,
    modes: opts.modes,
    pages: opts.pages,
  });
  const remainingMs = Math.max(5_000, opts.timeoutS * 1000 - (tBoot - tBoot0));
  let jobEnd;
  try {
    jobEnd = await booted.vm.runJob(job.id, await jobPayload(job), remainingMs);
  } finally {
    // A guest that finished powers off politely; a stuck one is killed at once.
    if (jobEnd?.kind === 'done') await booted.vm.powerOff(10_000);
    else await booted.vm.kill();
  }
  const tJob = performance.now();

  progress('report', 'assessing');
  const assessment = assessJob({
    strategy,
    modes: opts.modes,
    pages: opts.pages,
    jobId: job.id,
    end: jobEnd.kind,
    records: jobEnd.records,
    console: booted.vm.console,
  });
  const moduleCopy = join(runDir, `${module.name}.ko`);
  const testCopy = join(runDir, 'mmap-test');
  await copyFile(module.ko, moduleCopy);
  await copyFile(program.path, testCopy);
  await writeFile(join(runDir, 'records.jsonl'), jobEnd.records.map((r) => JSON.stringify(r)).join('\n') + '\n');

  const { status, exitCode } = runStatus(assessment.results, assessment.kernelLog.problems);
  const report: RunReport = {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'mmaplab', version: VERSION },
    command: 'run',
    status,
    exitCode,
    kernel: { spec: kernel.spec, release: kernel.release, packageVersion: kernel.packageVersion, flavour: kernel.flavour },
    machine: { accel: accel.accel, accelReason: accel.reason, qemu: qemu.version, bootAttempts: booted.attempts },
    module: {
      name: module.name,
      strategy,
      compiler: module.compiler,
      buildCached: module.cached,
      buildWarnings: module.warnings,
      insmod: assessment.insmod,
      rmmod: assessment.rmmod,
    },
    results: assessment.results,
    kernelLog: assessment.kernelLog,
    notes: [...notes, ...assessment.notes],
    consoleTail: assessment.consoleTail,
    artifacts: {
      dir: runDir,
      consoleLog: join(runDir, 'console.log'),
      resultsJson: join(runDir, 'results.json'),
      module: moduleCopy,
      testProgram: testCopy,
    },
    timings: {
      totalMs: Math.round(performance.now() - t0),
      kernelMs: Math.round(tKernel - t0),
      buildMs: Math.round(tBuild - tKernel),
      bootMs: Math.round(booted.bootMs),
      guestReadyMs: Math.round(booted.guestUptimeS * 1000),
      jobMs: Math.round(tJob - tBoot),
    },
  };
  await writeFile(report.artifacts.resultsJson, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}
