/**
 * QEMU's command line as a pure function of a spec, so it can be pinned by a
 * test and be part of a snapshot's key.
 */

import type { Arch } from '../kernel/arch.js';

export type Accel = 'kvm' | 'tcg';

/**
 * pc: the classic PC (with qboot when installed). microvm: QEMU's minimal
 * machine (no PCI, no ACPI here, virtio over MMIO): a faster boot, but it
 * needs the kernel's PVH entry and is given up per kernel and QEMU version
 * where it does not boot.
 */
export type MachineType = 'pc' | 'microvm';

export interface VmSpec {
  accel: Accel;
  /** The guest's architecture; default amd64. */
  arch?: Arch;
  /** Default pc. */
  machine?: MachineType;
  memoryMb: number;
  kernelImage: string;
  initrd: string;
  /** Kernel command line words. */
  append: readonly string[];
  /** qboot skips SeaBIOS and saves time; undefined means QEMU's default BIOS. */
  firmware: string | undefined;
  /** Unix socket the job channel connects to (the host listens). */
  channelSocket: string;
  /**
   * User-mode networking with the guest's SSH port forwarded from this port on
   * 127.0.0.1 only (an SSH target for the tests); none: no network at all.
   */
  sshForwardPort?: number;
  smp?: number;
  /**
   * Guest RAM in a file (snapshots): share=true while the snapshot is made (the
   * file becomes the RAM image); false on restore, so the file is only read and
   * every restore starts from the same pages.
   */
  ram?: { path: string; share: boolean };
  /** QMP on this Unix socket (snapshots are made and restored over it). */
  qmpSocket?: string;
  /** Wait for migrate-incoming (a restore) instead of booting. */
  incoming?: boolean;
  /** QEMU's gdb stub on this port of 127.0.0.1 only (mmaplab debug). */
  gdbPort?: number;
}

export const CHANNEL_NAME = 'mmaplab.0';

/**
 * Kernel command line: quiet boot, reboot (= exit, with -no-reboot) on panic,
 * no crypto self-tests, and a soft-lockup report after 8 s stuck (twice
 * watchdog_thresh) instead of 20 s, so a driver looping in the kernel is named
 * in seconds; 8 s, not less, so a busy host's scheduling never looks like one.
 */
export const BASE_APPEND = ['console=ttyS0', 'quiet', 'panic=-1', 'cryptomgr.notests', 'watchdog_thresh=4'] as const;

/**
 * A guest booted for debugging: the kernel at the addresses its symbols say
 * (no KASLR), so gdb needs no offset for the kernel's own symbols.
 */
export const DEBUG_APPEND = ['nokaslr'] as const;

export function qemuArgs(spec: VmSpec): string[] {
  const microvm = spec.machine === 'microvm';
  // A 32-bit kernel's virtio_pci finds a transitional device's modern interface without VIRTIO_F_VERSION_1: offer it the legacy one only.
  const pci = spec.arch === 'i386' ? ',disable-modern=on' : '';
  // microvm,acpi=off: with ACPI, its boot hangs at ACPI init under TCG here (QEMU 10); without, it is the fastest boot measured.
  const machine = [microvm ? 'microvm,acpi=off' : 'pc', ...(spec.ram ? ['memory-backend=mem'] : [])].join(',');
  const args = [
    '-accel', spec.accel,
    ...(spec.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(spec.memoryMb),
    ...(spec.ram ? ['-object', `memory-backend-file,id=mem,size=${spec.memoryMb}M,mem-path=${spec.ram.path},share=${spec.ram.share ? 'on' : 'off'}`] : []),
    ...(microvm || spec.ram ? ['-machine', machine] : []),
    '-smp', String(spec.smp ?? 1),
    '-display', 'none',
    '-monitor', 'none',
    '-chardev', 'stdio,id=console,signal=off',
    '-serial', 'chardev:console',
    '-no-reboot',
    '-nodefaults',
    ...(spec.sshForwardPort === undefined
      ? ['-net', 'none']
      : ['-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${spec.sshForwardPort}-:22`, '-device', `${microvm ? 'virtio-net-device' : `virtio-net-pci${pci}`},netdev=net0`]),
    // microvm brings its own minimal firmware.
    ...(spec.firmware && !microvm ? ['-bios', spec.firmware] : []),
    '-kernel', spec.kernelImage,
    '-initrd', spec.initrd,
    '-append', spec.append.join(' '),
    '-device', microvm ? 'virtio-serial-device' : `virtio-serial-pci${pci}`,
    '-chardev', `socket,id=jobs,path=${spec.channelSocket}`,
    '-device', `virtserialport,chardev=jobs,name=${CHANNEL_NAME}`,
    ...(spec.qmpSocket ? ['-qmp', `unix:${spec.qmpSocket},server=on,wait=off`] : []),
    ...(spec.incoming ? ['-incoming', 'defer'] : []),
    ...(spec.gdbPort === undefined ? [] : ['-gdb', `tcp:127.0.0.1:${spec.gdbPort}`]),
  ];
  return args;
}
