import { describe, expect, it } from 'vitest';
import { baseAppend, qemuArgs } from '../../src/vm/qemu-args.js';

describe('QEMU command line', () => {
  const spec = {
    accel: 'tcg' as const,
    memoryMb: 256,
    kernelImage: '/k/vmlinuz',
    initrd: '/i/initrd.cpio',
    append: baseAppend(),
    firmware: '/usr/share/qemu/qboot.rom',
    channelSocket: '/tmp/x/jobs.sock',
  };

  it('is a pure function of the spec (pinned: it keys snapshots later)', () => {
    expect(qemuArgs(spec).join(' ')).toBe(
      '-accel tcg -m 256 -smp 1 -display none -monitor none -chardev stdio,id=console,signal=off -serial chardev:console ' +
        '-no-reboot -nodefaults -net none -bios /usr/share/qemu/qboot.rom -kernel /k/vmlinuz -initrd /i/initrd.cpio ' +
        '-append console=ttyS0 quiet panic=-1 cryptomgr.notests watchdog_thresh=4 -device virtio-serial-pci ' +
        '-chardev socket,id=jobs,path=/tmp/x/jobs.sock -device virtserialport,chardev=jobs,name=mmaplab.0',
    );
  });

  it("boots arm64 on QEMU's virt machine with the max CPU (hardware dirty-bit management, cheap pointer authentication), no firmware, the console on the PL011", () => {
    const a = qemuArgs({ ...spec, arch: 'arm64', append: baseAppend('arm64'), firmware: undefined });
    expect(a.join(' ')).toContain('-accel tcg -cpu max,pauth-impdef=on -m 256 -machine virt -smp 1');
    expect(a.join(' ')).toContain('-append console=ttyAMA0 quiet');
    expect(a).not.toContain('-bios');
    expect(a).toContain('virtio-serial-pci');
    // A snapshot's RAM backend on virt; MMAPLAB_ARM64_CPU's model instead of max.
    expect(qemuArgs({ ...spec, arch: 'arm64', cpu: 'cortex-a57', ram: { path: '/c/ram', share: true } }).join(' ')).toContain('-cpu cortex-a57 -m 256 -object memory-backend-file,id=mem,size=256M,mem-path=/c/ram,share=on -machine virt,memory-backend=mem');
    expect(qemuArgs({ ...spec, arch: 'arm64', accel: 'kvm' }).slice(0, 4)).toEqual(['-accel', 'kvm', '-cpu', 'host']);
  });

  it('uses the host CPU under KVM and the default BIOS without qboot', () => {
    const a = qemuArgs({ ...spec, accel: 'kvm', firmware: undefined });
    expect(a.slice(0, 4)).toEqual(['-accel', 'kvm', '-cpu', 'host']);
    expect(a).not.toContain('-bios');
  });
});

describe('QEMU command line for snapshots', () => {
  const spec = {
    accel: 'tcg' as const,
    memoryMb: 256,
    kernelImage: '/k/vmlinux',
    initrd: '/i/initrd.cpio',
    append: baseAppend(),
    firmware: undefined,
    channelSocket: '/tmp/x/jobs.sock',
  };

  it('puts the RAM in a file, shared while the snapshot is made and private when restored, with QMP and a deferred incoming', () => {
    const making = qemuArgs({ ...spec, ram: { path: '/c/ram', share: true }, qmpSocket: '/tmp/x/qmp.sock' });
    expect(making.join(' ')).toContain('-m 256 -object memory-backend-file,id=mem,size=256M,mem-path=/c/ram,share=on -machine pc,memory-backend=mem');
    expect(making.slice(-2)).toEqual(['-qmp', 'unix:/tmp/x/qmp.sock,server=on,wait=off']);
    const restoring = qemuArgs({ ...spec, ram: { path: '/c/ram', share: false }, qmpSocket: '/tmp/x/qmp.sock', incoming: true });
    expect(restoring.join(' ')).toContain('mem-path=/c/ram,share=off');
    expect(restoring.slice(-2)).toEqual(['-incoming', 'defer']);
    // Apart from share= and -incoming, the two are the same machine: the restore's devices match the saved state.
    const strip = (a: string[]) => a.join(' ').replace(/share=o(n|ff)/, '').replace(/ -incoming defer$/, '');
    expect(strip(restoring)).toBe(strip(making));
  });
});
