/** Which ways to boot a kernel mmaplab tries, in which order, and the TSC rate microvm is told. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootRecipes, guestSpec, microvmCanWork } from '../../src/vm/boot.js';
import { ruleOutMicrovm } from '../../src/kernel/vmlinux.js';
import type { Kernel } from '../../src/kernel/types.js';
import { qemuArgs } from '../../src/vm/qemu-args.js';
import { hostTscKhz, type QemuInfo } from '../../src/vm/qemu.js';

const qemu: QemuInfo = { binary: '/usr/bin/qemu-system-x86_64', arch: 'amd64', version: '10.0.2', firmware: '/usr/share/qemu/qboot.rom', tscKhz: 2_100_000 };

function kernel(config: string): Kernel {
  const dir = mkdtempSync(join(tmpdir(), 'mmaplab-recipes-'));
  writeFileSync(join(dir, 'config'), config);
  return { image: join(dir, 'vmlinuz'), vmlinux: join(dir, 'vmlinux'), config: join(dir, 'config') } as Kernel;
}

describe('boot recipes', () => {
  it("a Debian kernel (no VIRTIO_MMIO_CMDLINE_DEVICES) boots pc: the vmlinux through PVH, then the bzImage", async () => {
    const k = kernel('CONFIG_VIRTIO_MMIO=m\n# CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set\n');
    expect(await microvmCanWork(k)).toBe(false);
    expect(await bootRecipes(k, qemu, {})).toEqual([{ machine: 'pc', image: k.vmlinux }, { machine: 'pc', image: k.image }]);
  });

  it('a kernel that reads virtio-mmio devices from its command line tries microvm first, until it failed with this QEMU', async () => {
    const k = kernel('CONFIG_VIRTIO_MMIO=y\nCONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\n');
    expect((await bootRecipes(k, qemu, {})).map((r) => r.machine)).toEqual(['microvm', 'pc', 'pc']);
    await ruleOutMicrovm(k.vmlinux!, '10.0.2');
    expect((await bootRecipes(k, qemu, {})).map((r) => r.machine)).toEqual(['pc', 'pc']);
    // Another QEMU version gets its own chance.
    expect((await bootRecipes(k, { ...qemu, version: '10.1.0' }, {})).map((r) => r.machine)).toEqual(['microvm', 'pc', 'pc']);
  });

  it('microvm: no ACPI, virtio over MMIO, its own firmware, and the TSC rate under TCG only', () => {
    const k = kernel('');
    const spec = guestSpec(qemu, 'tcg', { machine: 'microvm', image: '/k/vmlinux' }, '/i.cpio', 256);
    expect(spec.append).toContain('tsc_early_khz=2100000');
    const args = qemuArgs({ ...spec, channelSocket: '/s' }).join(' ');
    expect(args).toContain('-machine microvm,acpi=off');
    expect(args).toContain('-device virtio-serial-device');
    expect(args).not.toContain('-bios');
    expect(guestSpec(qemu, 'kvm', { machine: 'microvm', image: '/k/vmlinux' }, '/i.cpio', 256).append).not.toContain('tsc_early_khz=2100000');
    expect(guestSpec(qemu, 'tcg', { machine: 'pc', image: k.image }, '/i.cpio', 256).append.join(' ')).not.toMatch(/tsc_early_khz/);
  });
});

describe('the host TSC rate', () => {
  const files = (m: Record<string, string>) => (p: string) => {
    if (!(p in m)) throw new Error('ENOENT');
    return m[p]!;
  };

  it("from the kernel's tsc_freq_khz, else an Intel model name's rated clock, never from the current cpu MHz", () => {
    expect(hostTscKhz(files({ '/sys/devices/system/cpu/cpu0/tsc_freq_khz': '2399998\n' }))).toBe(2_399_998);
    const intel = 'model name\t: Intel(R) Xeon(R) Processor @ 2.10GHz\ncpu MHz\t\t: 800.000\nflags\t\t: fpu tsc constant_tsc nonstop_tsc\n';
    expect(hostTscKhz(files({ '/proc/cpuinfo': intel }))).toBe(2_100_000);
    expect(hostTscKhz(files({ '/proc/cpuinfo': 'model name\t: AMD EPYC 7B13\ncpu MHz\t\t: 2450.000\nflags\t\t: constant_tsc\n' }))).toBeUndefined();
    expect(hostTscKhz(files({ '/proc/cpuinfo': intel.replace(' constant_tsc', '') }))).toBeUndefined();
  });
});
