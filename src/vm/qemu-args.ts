/**
 * QEMU's command line as a pure function of a spec, so it can be pinned by a
 * test and (later) used as a snapshot key.
 */

export type Accel = 'kvm' | 'tcg';

export interface VmSpec {
  accel: Accel;
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
}

export const CHANNEL_NAME = 'mmaplab.0';

/** Kernel command line: quiet boot, reboot (= exit, with -no-reboot) on panic, no crypto self-tests. */
export const BASE_APPEND = ['console=ttyS0', 'quiet', 'panic=-1', 'cryptomgr.notests'] as const;

export function qemuArgs(spec: VmSpec): string[] {
  const args = [
    '-accel', spec.accel,
    ...(spec.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(spec.memoryMb),
    '-smp', String(spec.smp ?? 1),
    '-display', 'none',
    '-monitor', 'none',
    '-chardev', 'stdio,id=console,signal=off',
    '-serial', 'chardev:console',
    '-no-reboot',
    '-nodefaults',
    ...(spec.sshForwardPort === undefined
      ? ['-net', 'none']
      : ['-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${spec.sshForwardPort}-:22`, '-device', 'virtio-net-pci,netdev=net0']),
    ...(spec.firmware ? ['-bios', spec.firmware] : []),
    '-kernel', spec.kernelImage,
    '-initrd', spec.initrd,
    '-append', spec.append.join(' '),
    '-device', 'virtio-serial-pci',
    '-chardev', `socket,id=jobs,path=${spec.channelSocket}`,
    '-device', `virtserialport,chardev=jobs,name=${CHANNEL_NAME}`,
  ];
  return args;
}
