/**
 * What every command that boots a guest shares: its options, the run
 * directory, the kernel and the archive it came from, the KVM probe, booting
 * (with the early-panic retry) and the guest slots a matrix hands out.
 */
import { mkdir, rename } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { debianArchives } from '../kernel/debian.js';
import { acquireKernel, parseKernelSpec, type Kernel } from '../kernel/index.js';
import { forgetPvhImage, pvhImage } from '../kernel/vmlinux.js';
import { reachedInit } from '../parse/kmsg.js';
import { MmaplabError } from '../util/errors.js';
import { stateRoot } from '../util/paths.js';
import type { Slots } from '../util/limiter.js';
import type { AccelRequest } from '../vm/accel.js';
import { GuestVm, type BootResult } from '../vm/guest-vm.js';
import { BASE_APPEND, type Accel } from '../vm/qemu-args.js';
import type { QemuInfo } from '../vm/qemu.js';
import type { BootSpec } from '../vm/snapshot.js';
import type { Initramfs } from '../guest/initramfs.js';

export type Phase = 'fetch' | 'connect' | 'build' | 'accel' | 'boot' | 'snapshot' | 'restore' | 'job' | 'report';

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
  /** Guests that may run at once across a matrix; none: no limit. */
  guestSlots?: Slots;
  /** Serve jobs from a snapshot of the booted guest (made on first use); false: boot for every run. */
  snapshot?: boolean;
}

/** The kernel a command's options name, fetched (or found in the cache). */
export async function acquireFor(opts: GuestOptions, cacheDir: string, progress: (phase: Phase, message: string) => void): Promise<Kernel> {
  progress('fetch', `kernel ${opts.kernel} (${opts.flavour})`);
  const kernel = await acquireKernel(parseKernelSpec(opts.kernel, opts.flavour), {
    cacheDir,
    archiveUri: opts.archiveUri,
    securityUri: opts.securityUri,
    refresh: opts.refreshKernel,
    onProgress: (m) => progress('fetch', m),
  });
  return { ...kernel, vmlinux: await pvhImage(kernel, cacheDir) };
}

/** The Debian archive build roots are made from: the user's, else the host's. */
export function buildArchive(opts: Pick<GuestOptions, 'archiveUri' | 'securityUri'>): { uri: string | undefined; keyring: string | undefined } {
  const a = debianArchives(opts);
  return { uri: a.archive, keyring: a.signedBy };
}

export async function makeRunDir(opts: Pick<GuestOptions, 'outputDir' | 'stateDir'>): Promise<string> {
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

/** The QEMU spec of a lab guest booting `kernelImage` (the snapshot key is made from the same spec). */
export function guestSpec(qemu: QemuInfo, accel: Accel, kernelImage: string, initrd: string, memoryMb: number): BootSpec {
  return { accel, memoryMb, kernelImage, initrd, append: [...BASE_APPEND], firmware: qemu.firmware };
}

export interface Booted {
  vm: GuestVm;
  bootMs: number;
  guestUptimeS: number;
  attempts: number;
  /** pvh: the uncompressed vmlinux; bzimage: the packaged image. */
  image: 'pvh' | 'bzimage';
  spec: BootSpec;
}

/** Boot, retrying once when the kernel panics before init ran (a known TCG/QEMU flake, not the driver). */
export async function bootGuest(
  qemu: QemuInfo,
  accel: Accel,
  kernel: Kernel,
  initramfs: Pick<Initramfs, 'path' | 'preloaded'>,
  opts: Pick<GuestOptions, 'memoryMb' | 'timeoutS'>,
  notes: string[],
  consoleLog: string,
  /** Boot with the RAM in this file and QMP on, so the guest can be saved as a snapshot. */
  snapshotRam?: string,
): Promise<Booted> {
  let last: Exclude<BootResult, { kind: 'ready' }> | undefined;
  // The uncompressed vmlinux boots faster (PVH); the bzImage is the fallback, and the retry after a flake.
  const images = kernel.vmlinux ? [kernel.vmlinux, kernel.image] : [kernel.image, kernel.image];
  let pvhSuspect: string | undefined;
  for (let attempt = 1; attempt <= 2; attempt++) {
    const image = images[attempt - 1]!;
    const r = await GuestVm.start(
      { ...guestSpec(qemu, accel, image, initramfs.path, opts.memoryMb), ...(snapshotRam ? { ram: { path: snapshotRam, share: true } } : {}) },
      { qemu: qemu.binary, consoleLog, bootTimeoutMs: Math.min(90_000, opts.timeoutS * 1000), preloaded: initramfs.preloaded },
      snapshotRam !== undefined,
    );
    if (r.kind === 'ready') {
      // The bzImage booted where the vmlinux did not: the PVH boot is at fault; boot this kernel's bzImage from now on.
      if (pvhSuspect) await forgetPvhImage(pvhSuspect);
      const spec = guestSpec(qemu, accel, image, initramfs.path, opts.memoryMb);
      return { vm: r.vm, bootMs: r.bootMs, guestUptimeS: r.guestUptimeS, attempts: attempt, image: image === kernel.vmlinux ? 'pvh' : 'bzimage', spec };
    }
    last = r;
    const earlyPanic = r.kind === 'exited' && /Kernel panic/.test(r.console) && !reachedInit(r.console);
    // QEMU refusing the vmlinux, or the kernel dying without a word, makes the PVH boot a suspect,
    // convicted if the bzImage then boots. QEMU killed by a signal (Ctrl-C, our own reaping) says
    // nothing; a hang is not retried: it may be the deadline's (a short --timeout) and would cost another.
    const pvhFailed = image === kernel.vmlinux && r.kind === 'exited' && r.signal === undefined && !reachedInit(r.console);
    if (!(earlyPanic || pvhFailed) || attempt === 2) break;
    if (pvhFailed && !earlyPanic) pvhSuspect = image;
    const kept = consoleLog.replace(/\.log$/, `-attempt${attempt}.log`);
    await rename(consoleLog, kept);
    notes.push(
      pvhFailed && !earlyPanic
        ? `the uncompressed kernel (PVH boot) did not reach init on boot attempt ${attempt}; booted the bzImage instead (${kept})`
        : `the kernel panicked before init on boot attempt ${attempt} (an infrastructure flake, not the driver); retried (${kept})`,
    );
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
    /** Where the first boot's console goes (a run that fell back from a snapshot keeps console.log for all of it). */
    private readonly firstLog = 'console.log',
  ) {}

  async boot(): Promise<GuestVm> {
    this.boots++;
    const consoleLog = join(this.runDir, this.boots === 1 ? this.firstLog : `console-boot${this.boots}.log`);
    this.consoleLogs.push(consoleLog);
    this.progress(this.boots > 1 ? ` (boot ${this.boots}, after a crash)` : '');
    const booted = await this.start(consoleLog);
    this.first ??= booted;
    this.attempts += booted.attempts;
    return booted.vm;
  }
}

