/** The architecture table: flavours, suites, Kbuild's ARCH, and where kprobes find the traced calls' arguments. */
import { describe, expect, it } from 'vitest';
import { archOfConfig, archOfFlavour, archOfMachine, crossPrefix, defaultArch, hostArch, kbuildArchArgs, kprobeArgs } from '../../src/kernel/arch.js';
import { archAndFlavour, matrixEntries, parseKernelSpec, splitEntry } from '../../src/kernel/spec.js';
import { kprobeArgsFor, traceEnv } from '../../src/guest/job.js';
import { lacksStaticLibc, userCompiler } from '../../src/kbuild/userspace.js';
import { qemuArgs } from '../../src/vm/qemu-args.js';
import { setupOptions, type GuestCliOptions } from '../../src/cli/options.js';

describe('--arch and --flavour', () => {
  it('the flavour follows the architecture, and the architecture the flavour', () => {
    expect(archAndFlavour('i386', undefined)).toEqual({ arch: 'i386', flavour: '686-pae' });
    expect(archAndFlavour(undefined, '686')).toEqual({ arch: 'i386', flavour: '686' });
    expect(archAndFlavour(undefined, undefined)).toEqual({ arch: defaultArch(), flavour: defaultArch() === 'amd64' ? 'cloud-amd64' : expect.any(String) });
  });

  it('arm64 guests boot cloud-arm64 by default; an arm64 host defaults to arm64 guests, its own', () => {
    expect(archAndFlavour('arm64', undefined)).toEqual({ arch: 'arm64', flavour: 'cloud-arm64' });
    expect(archAndFlavour(undefined, 'arm64')).toEqual({ arch: 'arm64', flavour: 'arm64' });
    expect([defaultArch('arm64'), defaultArch('x64'), defaultArch('ia32')]).toEqual(['arm64', 'amd64', 'i386']);
    expect(hostArch('arm64')).toBe('arm64');
  });

  it("cross tools where the host cannot build the guest's code itself: none between x86's word sizes, Debian's triplet prefix otherwise", () => {
    expect([crossPrefix('i386', 'amd64'), crossPrefix('amd64', 'amd64'), crossPrefix('arm64', 'amd64'), crossPrefix('amd64', 'arm64'), crossPrefix('arm64', 'arm64')]).toEqual(['', '', 'aarch64-linux-gnu-', 'x86_64-linux-gnu-', '']);
    expect(kbuildArchArgs('amd64', 'arm64')).toEqual(['ARCH=x86_64', 'CROSS_COMPILE=x86_64-linux-gnu-']);
    expect(kbuildArchArgs('arm64', 'arm64')).toEqual([]);
  });

  it("a flavour of another architecture is refused, naming both", () => {
    expect(() => archAndFlavour('i386', 'cloud-amd64')).toThrow(/--flavour cloud-amd64 is a kernel for amd64, not i386/);
  });

  it('i386 kernels only from the suites that ship them: trixie and sid refused by name, before any download', () => {
    expect(parseKernelSpec('debian:bookworm', '686-pae', 'i386')).toMatchObject({ kind: 'debian', suite: 'bookworm', arch: 'i386', flavour: '686-pae' });
    expect(parseKernelSpec('debian:bullseye-security', '686-pae', 'i386')).toMatchObject({ suite: 'bullseye-security', arch: 'i386' });
    expect(() => parseKernelSpec('debian:trixie', '686-pae', 'i386')).toThrow(/debian:trixie ships no i386 kernel/);
    expect(() => parseKernelSpec('debian:sid', '686-pae', 'i386')).toThrow(expect.objectContaining({ message: expect.stringMatching(/debian:sid ships no i386 kernel/), hint: expect.stringMatching(/Debian's i386 kernels are in debian:bullseye and debian:bookworm/) }));
    expect(parseKernelSpec('debian:trixie', 'cloud-arm64', 'arm64')).toMatchObject({ arch: 'arm64' });
  });

  it('the architecture of a flavour, a uname -m and a kernel config', () => {
    expect(['cloud-amd64', 'amd64', 'rt-amd64', '686', '686-pae', 'arm64', 'cloud-arm64', 'rpi'].map(archOfFlavour)).toEqual(['amd64', 'amd64', 'amd64', 'i386', 'i386', 'arm64', 'arm64', undefined]);
    expect(['x86_64', 'i686', 'aarch64', 'riscv64'].map(archOfMachine)).toEqual(['amd64', 'i386', 'arm64', undefined]);
    expect(archOfConfig('CONFIG_X86_32=y\nCONFIG_X86=y\n')).toBe('i386');
    expect(archOfConfig('CONFIG_64BIT=y\nCONFIG_X86_64=y\n')).toBe('amd64');
  });
});

describe('a matrix of kernels x arches', () => {
  it('names its entries <spec>/<arch>, kernels first; one architecture keeps the plain specs', () => {
    expect(matrixEntries(['debian:bookworm', 'debian:bullseye'], ['amd64', 'i386'])).toEqual(['debian:bookworm/amd64', 'debian:bookworm/i386', 'debian:bullseye/amd64', 'debian:bullseye/i386']);
    expect(matrixEntries(['debian:bookworm'], ['i386'])).toEqual(['debian:bookworm']);
    expect(splitEntry('debian:bookworm/i386')).toEqual({ kernel: 'debian:bookworm', arch: 'i386' });
    expect(splitEntry('local:/k/arch/x86/boot/bzImage')).toEqual({ kernel: 'local:/k/arch/x86/boot/bzImage', arch: undefined });
  });

  it('`all` is every suite that ships the architecture; a suite named outright that does not is refused before anything runs', () => {
    expect(matrixEntries(['all'], ['i386'])).toEqual(['debian:bullseye', 'debian:bookworm']);
    expect(matrixEntries(['all'], ['amd64', 'i386']).filter((e) => e.endsWith('/i386'))).toEqual(['debian:bullseye/i386', 'debian:bookworm/i386']);
    expect(() => matrixEntries(['debian:trixie'], ['amd64', 'i386'])).toThrow(/debian:trixie ships no i386 kernel/);
  });
});

describe("a run's options per entry", () => {
  const cli = (over: Partial<GuestCliOptions>): GuestCliOptions => ({ kernel: [], jobs: 1, accel: 'tcg', timeout: 60, memory: 256, connectTimeout: 20, buildTimeout: 60, ...over });

  it("a flavour (the project config's, say) serves only its own architecture's entries of a matrix", () => {
    const o = cli({ arch: ['amd64', 'i386'], flavour: 'amd64' });
    expect(setupOptions(o, false, 'debian:bookworm/amd64')).toMatchObject({ kernel: 'debian:bookworm', arch: 'amd64', flavour: 'amd64' });
    expect(setupOptions(o, false, 'debian:bookworm/i386')).toMatchObject({ kernel: 'debian:bookworm', arch: 'i386', flavour: '686-pae' });
  });

  it('a spec is split into <spec>/<arch> only in a matrix across architectures: a local tree ending in /amd64 stays whole', () => {
    expect(setupOptions(cli({}), false, 'local:/k/bzImage,/home/me/build/amd64')).toMatchObject({ kernel: 'local:/k/bzImage,/home/me/build/amd64', arch: defaultArch() });
  });
});

describe('building for another architecture on an amd64 host', () => {
  it.runIf(hostArch() === 'amd64')("Kbuild gets ARCH=i386 (the host's gcc builds -m32 for CONFIG_X86_32) and ARCH=arm64 with the cross prefix", () => {
    expect(kbuildArchArgs('amd64')).toEqual([]);
    expect(kbuildArchArgs('i386')).toEqual(['ARCH=i386']);
    expect(kbuildArchArgs('arm64')).toEqual(['ARCH=arm64', 'CROSS_COMPILE=aarch64-linux-gnu-']);
    // Debian's i686 cross gcc (which coexists with arm64's; gcc-multilib conflicts with every cross gcc).
    expect(userCompiler('i386', () => true)).toEqual({ cc: 'i686-linux-gnu-gcc', flags: [], packages: 'gcc-i686-linux-gnu libc6-dev-i386-cross' });
    expect(userCompiler('arm64', () => true)).toEqual({ cc: 'aarch64-linux-gnu-gcc', flags: [], packages: 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross' });
    // gcc -m32 without libc6-dev-i386 stops at the first libc header; a missing static libc at the link.
    expect(lacksStaticLibc('In file included from userspace/mmap-test.c:12:\n/usr/include/stdio.h:27:10: fatal error: bits/libc-header-start.h: No such file or directory\n')).toBe(true);
    expect(lacksStaticLibc('/usr/bin/ld: cannot find -lc: No such file or directory\n')).toBe(true);
    expect(lacksStaticLibc("mmap-test.c:40:5: error: 'x' undeclared (first use in this function)\n")).toBe(false);
  });
});

describe('traced arguments', () => {
  it('are fetched as $argN, typed by the word size: on i386 the fourth ($arg4, size) is on the stack, which the kernel knows; x86-64 keeps register names, which kernels before 4.20 take too', () => {
    expect(kprobeArgs('amd64')).toEqual({ remap: 'addr=%si:x64 pfn=%dx:x64 size=%cx:x64', pageFree: 'flags=+0(%di):x64 order=%si:u32' });
    expect(kprobeArgs('arm64')).toEqual({ remap: 'addr=$arg2:x64 pfn=$arg3:x64 size=$arg4:x64', pageFree: 'flags=+0($arg1):x64 order=$arg2:u32' });
    expect(kprobeArgs('i386').remap).toBe('addr=$arg2:x32 pfn=$arg3:x32 size=$arg4:x32');
    expect(kprobeArgsFor('i686')).toEqual(kprobeArgs('i386'));
    expect(kprobeArgsFor('aarch64')).toEqual(kprobeArgs('arm64'));
  });

  it('an SSH target of an architecture mmaplab does not know is not traced at all', () => {
    expect(kprobeArgsFor('riscv64')).toBeUndefined();
    expect(traceEnv('riscv64')).toEqual({ REMAP_ARGS: '', PAGE_FREE_ARGS: '' });
  });
});

describe('QEMU for i386', () => {
  it("offers a 32-bit guest the virtio devices' legacy interface only", () => {
    const base = { accel: 'tcg' as const, memoryMb: 256, kernelImage: 'k', initrd: 'i', append: ['quiet'], firmware: undefined, channelSocket: '/s' };
    expect(qemuArgs({ ...base, arch: 'i386' })).toContain('virtio-serial-pci,disable-modern=on');
    expect(qemuArgs(base)).toContain('virtio-serial-pci');
  });
});
