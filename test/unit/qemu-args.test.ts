import { describe, expect, it } from 'vitest';
import { BASE_APPEND, qemuArgs } from '../../src/vm/qemu-args.js';

describe('QEMU command line', () => {
  const spec = {
    accel: 'tcg' as const,
    memoryMb: 256,
    kernelImage: '/k/vmlinuz',
    initrd: '/i/initrd.cpio',
    append: [...BASE_APPEND],
    firmware: '/usr/share/qemu/qboot.rom',
    channelSocket: '/tmp/x/jobs.sock',
  };

  it('is a pure function of the spec (pinned: it keys snapshots later)', () => {
    expect(qemuArgs(spec).join(' ')).toBe(
      '-accel tcg -m 256 -smp 1 -display none -monitor none -chardev stdio,id=console,signal=off -serial chardev:console ' +
        '-no-reboot -nodefaults -net none -bios /usr/share/qemu/qboot.rom -kernel /k/vmlinuz -initrd /i/initrd.cpio ' +
        '-append console=ttyS0 quiet panic=-1 cryptomgr.notests -device virtio-serial-pci ' +
        '-chardev socket,id=jobs,path=/tmp/x/jobs.sock -device virtserialport,chardev=jobs,name=mmaplab.0',
    );
  });

  it('uses the host CPU under KVM and the default BIOS without qboot', () => {
    const a = qemuArgs({ ...spec, accel: 'kvm', firmware: undefined });
    expect(a.slice(0, 4)).toEqual(['-accel', 'kvm', '-cpu', 'host']);
    expect(a).not.toContain('-bios');
  });
});
