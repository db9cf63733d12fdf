/**
 * Booting a lab guest: the ways to boot a kernel (boot recipes, fastest
 * first), the QEMU spec of each, the boot itself with the early-panic retry and
 * the fallback to a plainer recipe, and the KVM probe.
 */
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kernel } from '../kernel/types.js';
import { forgetPvhImage, microvmRuledOut, ruleOutMicrovm } from '../kernel/vmlinux.js';
import { reachedInit } from '../parse/kmsg.js';
import { MmaplabError } from '../util/errors.js';
import { GuestVm, type BootResult } from './guest-vm.js';
import { baseAppend, DEBUG_APPEND, type Accel, type MachineType } from './qemu-args.js';
import { freeLoopbackPort } from '../util/net.js';
import type { QemuInfo } from './qemu.js';
import type { BootSpec } from './snapshot.js';
import type { Initramfs } from '../guest/initramfs.js';

/** What a boot needs of the command's options. */
export interface BootOptions {
  memoryMb: number;
  /** The job deadline: a boot never waits longer than this for its guest. */
  timeoutS: number;
  /** Booted for debugging (mmaplab debug): no KASLR, and QEMU's gdb stub on a free port of 127.0.0.1. */
  debug?: boolean;
}

/** QEMU's words when another process took the gdb stub's port between its choice and QEMU's bind. */
export function gdbPortTaken(stderr: string): boolean {
  return /-gdb tcp:[^:]+:\d+: (Failed to find an available port|.*Address already in use)/.test(stderr);
}

/** Times a boot picks another port for the gdb stub when the one chosen was taken meanwhile. */
const GDB_PORT_TRIES = 5;

/** Probe KVM with a real guest: it must reach the agent within the deadline. */
export function kvmProbe(qemu: QemuInfo, kernel: Kernel, initrd: string, runDir: string, memoryMb: number) {
  return async (): Promise<string | undefined> => {
    const r = await GuestVm.start(
      { accel: 'kvm', ...(qemu.arch === 'amd64' ? {} : { arch: qemu.arch }), memoryMb, kernelImage: kernel.image, initrd, append: [...baseAppend(qemu.arch), 'mmaplab.probe'], firmware: qemu.firmware },
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

/** One way to boot a kernel: the machine and the image. */
export interface BootRecipe {
  machine: MachineType;
  image: string;
}

/**
 * The ways to boot this kernel, fastest first: microvm with the unpacked
 * vmlinux (PVH), pc with it, pc with the packaged bzImage. A trick that failed
 * for this kernel (and, for microvm, this QEMU) is left out from then on.
 */
export async function bootRecipes(kernel: Kernel, qemu: QemuInfo, env: NodeJS.ProcessEnv = process.env): Promise<BootRecipe[]> {
  // arm64: QEMU's virt machine loads the packaged Image itself; there is no PVH or microvm there.
  if (qemu.arch === 'arm64') return [{ machine: 'virt', image: kernel.image }];
  const recipes: BootRecipe[] = [];
  const microvm = env.MMAPLAB_MICROVM === 'try' || (await microvmCanWork(kernel));
  if (kernel.vmlinux && microvm && !(await microvmRuledOut(kernel.vmlinux, qemu.version))) recipes.push({ machine: 'microvm', image: kernel.vmlinux });
  if (kernel.vmlinux) recipes.push({ machine: 'pc', image: kernel.vmlinux });
  recipes.push({ machine: 'pc', image: kernel.image });
  return recipes;
}

/**
 * microvm without ACPI (the fast way; with ACPI its boot hangs or is slower
 * than pc here) tells the kernel of its virtio-mmio devices on the command
 * line, which only a kernel built with VIRTIO_MMIO_CMDLINE_DEVICES reads.
 * Debian's kernels are not, so they boot pc. MMAPLAB_MICROVM=try tries it
 * anyway (the fallback's test).
 */
export async function microvmCanWork(kernel: Pick<Kernel, 'config'>): Promise<boolean> {
  const config = await readFile(kernel.config, 'utf8').catch(() => '');
  return /^CONFIG_VIRTIO_MMIO=[ym]$/m.test(config) && /^CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y$/m.test(config);
}

/** The QEMU spec of a lab guest (the snapshot key is made from the same spec). */
export function guestSpec(qemu: QemuInfo, accel: Accel, recipe: BootRecipe, initrd: string, memoryMb: number, debug = false, env: NodeJS.ProcessEnv = process.env): BootSpec {
  // microvm under TCG cannot calibrate the TSC quickly: tell it the rate, when this machine's is known.
  const tsc = recipe.machine === 'microvm' && accel === 'tcg' && qemu.tscKhz ? [`tsc_early_khz=${qemu.tscKhz}`] : [];
  const cpu = qemu.arch === 'arm64' && env.MMAPLAB_ARM64_CPU ? { cpu: env.MMAPLAB_ARM64_CPU } : {};
  return { accel, ...(qemu.arch === 'amd64' ? {} : { arch: qemu.arch }), ...cpu, machine: recipe.machine, memoryMb, kernelImage: recipe.image, initrd, append: [...baseAppend(qemu.arch), ...tsc, ...(debug ? DEBUG_APPEND : [])], firmware: qemu.firmware };
}

export interface Booted {
  vm: GuestVm;
  bootMs: number;
  guestUptimeS: number;
  attempts: number;
  /** pvh: the uncompressed vmlinux; bzimage: the packaged image. */
  image: 'pvh' | 'bzimage';
  machine: MachineType;
  spec: BootSpec;
  /** debug: the port of QEMU's gdb stub on 127.0.0.1. */
  gdbPort?: number;
}

/** A microvm boot that has not said ready by then is taken for a machine that does not suit this kernel. */
const MICROVM_DEADLINE_MS = 30_000;

/**
 * Boot by the first recipe that works, retrying once when the kernel panics
 * before init ran (a known TCG/QEMU flake, not the driver). A recipe that
 * fails is a suspect, convicted (and not tried again for this kernel) when a
 * plainer one then boots: microvm when pc boots the same vmlinux, the vmlinux
 * when the bzImage boots.
 */
export async function bootGuest(
  qemu: QemuInfo,
  accel: Accel,
  kernel: Kernel,
  initramfs: Pick<Initramfs, 'path' | 'preloaded'>,
  opts: BootOptions,
  notes: string[],
  consoleLog: string,
  /** Boot with the RAM in this file and QMP on, so the guest can be saved as a snapshot. */
  snapshotRam?: string,
): Promise<Booted> {
  let last: Exclude<BootResult, { kind: 'ready' }> | undefined;
  const recipes = await bootRecipes(kernel, qemu);
  const failed: BootRecipe[] = [];
  let flakeRetried = false;
  let portTries = 0;
  let i = 0;
  for (let attempt = 1; i < recipes.length; attempt++) {
    const recipe = recipes[i]!;
    const spec = guestSpec(qemu, accel, recipe, initramfs.path, opts.memoryMb, opts.debug);
    const deadline = Math.min(recipe.machine === 'microvm' ? MICROVM_DEADLINE_MS : 90_000, opts.timeoutS * 1000);
    const gdbPort = opts.debug ? await freeLoopbackPort() : undefined;
    const r = await GuestVm.start(
      { ...spec, ...(snapshotRam ? { ram: { path: snapshotRam, share: true } } : {}), ...(gdbPort === undefined ? {} : { gdbPort }) },
      { qemu: qemu.binary, consoleLog, bootTimeoutMs: deadline, preloaded: initramfs.preloaded },
      snapshotRam !== undefined,
    );
    if (r.kind === 'ready') {
      await convict(failed, recipe, qemu.version);
      const booted = { vm: r.vm, bootMs: r.bootMs, guestUptimeS: r.guestUptimeS, attempts: attempt, image: recipe.image === kernel.vmlinux ? ('pvh' as const) : ('bzimage' as const), machine: recipe.machine, spec };
      return gdbPort === undefined ? booted : { ...booted, gdbPort };
    }
    last = r;
    // The gdb stub's port was taken between its choice and QEMU's bind (several debug guests at once): another port.
    if (gdbPort !== undefined && r.kind === 'exited' && gdbPortTaken(r.stderr) && ++portTries < GDB_PORT_TRIES) continue;
    const earlyPanic = r.kind === 'exited' && /Kernel panic/.test(r.console) && !reachedInit(r.console);
    // QEMU refusing the recipe, or the kernel dying without a word, makes the recipe a suspect. QEMU
    // killed by a signal (Ctrl-C, our own reaping) says nothing. A hang on pc is not retried: it may be
    // the deadline's (a short --timeout) and would cost another; microvm's own deadline is short.
    // On microvm, a kernel that reached init but found no virtio device for the job channel also rules it out.
    const noChannel = recipe.machine === 'microvm' && r.kind === 'exited' && /mmaplab-agent: no mmaplab\.0 virtio port/.test(r.console);
    const trickFailed =
      recipe !== recipes[recipes.length - 1] &&
      ((r.kind === 'exited' && r.signal === undefined && (!reachedInit(r.console) || noChannel)) ||
        (r.kind === 'timeout' && recipe.machine === 'microvm' && deadline === MICROVM_DEADLINE_MS));
    const kept = consoleLog.replace(/\.log$/, `-attempt${attempt}.log`);
    if (earlyPanic && !flakeRetried) {
      flakeRetried = true;
      await rename(consoleLog, kept);
      notes.push(`the kernel panicked before init on boot attempt ${attempt} (an infrastructure flake, not the driver); retried (${kept})`);
      continue;
    }
    if (!trickFailed) break;
    failed.push(recipe);
    await rename(consoleLog, kept);
    const next = recipes[i + 1]!;
    notes.push(
      recipe.machine === 'microvm'
        ? `the microvm machine did not boot ${kernel.release} (boot attempt ${attempt}: ${r.kind === 'timeout' ? 'no ready within 30 s' : noChannel ? 'no virtio device for the job channel' : 'exited before init'}); booted the pc machine instead, as from now on for this kernel and QEMU (${kept})`
        : `the uncompressed kernel (PVH boot) did not reach init on boot attempt ${attempt}; booted the ${next.image === kernel.image ? 'bzImage' : 'next way'} instead (${kept})`,
    );
    i++;
  }
  throw bootFailure(last, opts, consoleLog);
}

/** The error of a boot that never became ready: a hang, or QEMU's own last words. */
function bootFailure(last: Exclude<BootResult, { kind: 'ready' }> | undefined, opts: BootOptions, consoleLog: string): MmaplabError {
  const tail = (last?.console ?? '').trimEnd().split('\n').slice(-15);
  const at = { hint: `full console: ${consoleLog}`, artifacts: { consoleLog } };
  if (last?.kind === 'timeout') {
    return new MmaplabError('boot', `the guest did not become ready within ${Math.min(90, opts.timeoutS)} s (hang during boot); QEMU was killed`, { details: tail, ...at });
  }
  const stderr = last?.kind === 'exited' ? last.stderr.trim() : '';
  return new MmaplabError('boot', `QEMU exited before the guest was ready${stderr ? `: ${stderr.split('\n')[0]}` : ''}`, { details: stderr ? stderr.split('\n').slice(0, 10) : tail, ...at });
}

/** What booted shows which failed trick was at fault: microvm if pc booted the same vmlinux, the vmlinux if only the bzImage booted. */
async function convict(failed: BootRecipe[], booted: BootRecipe, qemuVersion: string): Promise<void> {
  for (const f of failed) {
    if (f.machine === 'microvm' && booted.image === f.image) await ruleOutMicrovm(f.image, qemuVersion);
    if (f.image !== booted.image) await forgetPvhImage(f.image);
  }
}
