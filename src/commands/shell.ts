/**
 * `mmaplab shell [driver]`: a shell in the lab guest with the driver built and
 * loaded, its device node made, the test program (mmap-test) and busybox at
 * hand. The guest powers off when the shell exits; nothing runs on the host's
 * kernel.
 */
import { join, resolve } from 'node:path';
import { buildModule } from '../build/kbuild.js';
import { buildTestProgram } from '../build/userspace.js';
import { CUSTOM_DRIVER } from '../diagnose/expectations.js';
import { buildInitramfs } from '../guest/initramfs.js';
import { jobPayload, labJob } from '../guest/job.js';
import { MmaplabError } from '../util/errors.js';
import { cacheRoot, projectPaths } from '../util/paths.js';
import { chooseAccel } from '../vm/accel.js';
import { qemuInfo } from '../vm/qemu.js';
import { acquireFor, bootGuest, buildArchive, kvmProbe, makeRunDir, type GuestOptions } from './session.js';

export interface ShellOptions extends GuestOptions {
  /** A driver of the user's own; the bundled one (with `strategy`) otherwise. */
  source: string | undefined;
  strategy: string;
  input: NodeJS.ReadableStream;
  output: (text: string) => void;
  /** Resolves when the user wants out without the shell's exit (the escape key). */
  detach?: Promise<void>;
}

export interface ShellResult {
  device: string;
  consoleLog: string;
}

export async function shellInGuest(opts: ShellOptions): Promise<ShellResult> {
  const progress = opts.onProgress ?? (() => {});
  const cacheDir = opts.cacheDir ?? cacheRoot();
  const runDir = await makeRunDir(opts);
  const qemu = await qemuInfo();
  const kernel = await acquireFor(opts, cacheDir, progress);
  const source = opts.source ? resolve(opts.source) : projectPaths.kernelModule;
  progress('build', `building the driver for ${kernel.release}`);
  const [module, program, initramfs] = await Promise.all([
    buildModule({ source, kernel, cacheDir, logDir: runDir, archive: buildArchive(opts), onProgress: (m) => progress('build', m) }),
    buildTestProgram(join(projectPaths.userspace, 'mmap-test.c'), cacheDir),
    buildInitramfs(kernel, cacheDir),
  ]);
  const accel = await chooseAccel({ requested: opts.accel, cacheDir, qemuVersion: qemu.version, probe: kvmProbe(qemu, kernel, initramfs.path, runDir, opts.memoryMb) });
  const consoleLog = join(runDir, 'console.log');
  progress('boot', `booting ${kernel.release} under ${accel.accel.toUpperCase()}`);
  const { vm } = await bootGuest(qemu, accel.accel, kernel, initramfs.path, opts, [], consoleLog);
  const own = opts.source !== undefined;
  const job = {
    ...labJob({
      id: 1,
      strategy: own ? CUSTOM_DRIVER : opts.strategy,
      modulePath: module.guestKo,
      moduleName: module.name,
      moduleParams: !own && module.parameters.includes('strategy') ? [`strategy=${opts.strategy}`] : [],
      testProgram: program.path,
      checks: [],
      pages: 16,
    }),
    keepLoaded: true,
    ...(own ? { deviceName: '', device: '', inspect: true } : {}),
  };
  progress('job', `loading ${module.name}`);
  const end = await vm.runJob(job.id, await jobPayload(job, { inGuest: vm.filesInGuest }), opts.timeoutS * 1000);
  const insmod = end.records.find((r) => r.t === 'step' && r.step === 'insmod');
  const device = end.records.find((r) => r.t === 'step' && r.step === 'device');
  if (end.kind !== 'done' || !insmod || insmod.t !== 'step' || insmod.status !== 0) {
    await vm.kill();
    const why = insmod && insmod.t === 'step' ? `insmod failed (status ${insmod.status}): ${insmod.output}` : `the guest stopped while loading it (${end.kind})`;
    throw new MmaplabError('guest', `could not load ${module.name} for the shell: ${why}`, { hint: `full console: ${consoleLog}`, artifacts: { consoleLog } });
  }
  const node = device && device.t === 'step' ? device.output.trim() : 'unknown';
  progress('job', `${module.name} is loaded; its device: ${node}; mmap-test is on the PATH`);
  await vm.interact(opts.input, opts.output, opts.detach);
  return { device: node, consoleLog };
}
