/**
 * QEMU's command line as a pure function of a spec, so it can be pinned by a
 * test and be part of a snapshot's key.
 */

import { ARCH_INFO, type Arch } from '../kernel/arch.js';

export type Accel = 'kvm' | 'tcg';

/**
 * pc: the classic PC (with qboot when installed). microvm: QEMU's minimal
 * machine (no PCI, no ACPI here, virtio over MMIO): a faster boot, but it
 * needs the kernel's PVH entry and is given up per kernel and QEMU version
 * where it does not boot. virt: arm64's generic machine, the only one booted there.
 */
export type MachineType = 'pc' | 'microvm' | 'virt';

export interface VmSpec {
  accel: Accel;
  /** The guest's architecture; default amd64. */
  arch?: Arch;
  /** Default pc. */
  machine?: MachineType;
  /** arm64 under TCG: QEMU's CPU model instead of max,pauth-impdef=on (MMAPLAB_ARM64_CPU: cortex-a57 checks as on a CPU without hardware dirty-bit management). */
  cpu?: string;
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
export function baseAppend(arch: Arch = 'amd64'): string[] {
  return [`console=${ARCH_INFO[arch].serialConsole}`, 'quiet', 'panic=-1', 'cryptomgr.notests', 'watchdog_thresh=4'];
}

/**
 * A guest booted for debugging: the kernel at the addresses its symbols say
 * (no KASLR), so gdb needs no offset for the kernel's own symbols.
 */
export const DEBUG_APPEND = ['nokaslr'] as const;

/**
 * The CPU model. KVM: the host's. arm64 under TCG: QEMU's max, which manages
 * the dirty bit in hardware (FEAT_HAFDBS) as x86 does, so a write to a clean
 * shared page is not a permission fault; with pauth-impdef=on, whose pointer
 * authentication is cheaper to emulate than the default QARMA5 (a grid run
 * about 1.25x faster here; README). x86 under TCG: QEMU's default.
 */
function cpuArgs(spec: VmSpec): string[] {
  if (spec.accel === 'kvm') return ['-cpu', 'host'];
  return spec.arch === 'arm64' ? ['-cpu', spec.cpu ?? 'max,pauth-impdef=on'] : [];
}

/** The machine: arm64's virt (PCI, no firmware: QEMU loads the kernel itself), x86's pc or microvm. */
function machineArgs(spec: VmSpec): string[] {
  const microvm = spec.machine === 'microvm';
  // Under KVM, virt's interrupt controller is the host's (virt's default GICv2 is missing on GICv3-only hosts).
  const base = spec.arch === 'arm64' ? (spec.accel === 'kvm' ? 'virt,gic-version=host' : 'virt') : microvm ? 'microvm,acpi=off' : 'pc';
  // microvm,acpi=off: with ACPI, its boot hangs at ACPI init under TCG here (QEMU 10); without, it is the fastest boot measured.
  const machine = [base, ...(spec.ram ? ['memory-backend=mem'] : [])].join(',');
  return base !== 'pc' || spec.ram ? ['-machine', machine] : [];
}

export function qemuArgs(spec: VmSpec): string[] {
  const microvm = spec.machine === 'microvm' && spec.arch !== 'arm64';
  // A 32-bit kernel's virtio_pci finds a transitional device's modern interface without VIRTIO_F_VERSION_1: offer it the legacy one only.
  const pci = spec.arch === 'i386' ? ',disable-modern=on' : '';
  const args = [
    '-accel', spec.accel,
    ...cpuArgs(spec),
    '-m', String(spec.memoryMb),
    ...(spec.ram ? ['-object', `memory-backend-file,id=mem,size=${spec.memoryMb}M,mem-path=${spec.ram.path},share=${spec.ram.share ? 'on' : 'off'}`] : []),
    ...machineArgs(spec),
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
