import { describe, expect, it } from 'vitest';
import { ALL_KERNELS, expandKernelSpecs, formatKernelSpec, kernelSlug, parseKernelSpec } from '../../src/kernel/spec.js';
import { buildRootSuite } from '../../src/kbuild/build-root.js';
import { builtinByConfig } from '../../src/kernel/modules.js';
import { fixHeadersMakefile } from '../../src/kernel/debian.js';
import { compilerMajor } from '../../src/kbuild/compiler.js';

describe('kernel specs', () => {
  it('parses debian:<suite> with the default flavour', () => {
    expect(parseKernelSpec('debian:bookworm')).toEqual({ kind: 'debian', suite: 'bookworm', flavour: 'cloud-amd64', arch: 'amd64' });
    expect(parseKernelSpec('debian:bookworm-backports', 'amd64')).toEqual({ kind: 'debian', suite: 'bookworm-backports', flavour: 'amd64', arch: 'amd64' });
  });

  it('pins a package version with @, as a grade records it, and refuses what is no Debian version', () => {
    expect(parseKernelSpec('debian:bookworm@6.1.192-3')).toEqual({ kind: 'debian', suite: 'bookworm', flavour: 'cloud-amd64', arch: 'amd64', version: '6.1.192-3' });
    expect(formatKernelSpec(parseKernelSpec('debian:bookworm-backports@6.12.48-1~bpo12+1'))).toBe('debian:bookworm-backports@6.12.48-1~bpo12+1');
    expect(kernelSlug('debian:bookworm@6.1.192-3')).toBe('bookworm_6.1.192-3');
    expect(() => parseKernelSpec('debian:bookworm@')).toThrow(/is not a Debian package version/);
    expect(() => parseKernelSpec('debian:bookworm@x y')).toThrow("'x y' in 'debian:bookworm@x y' is not a Debian package version");
  });

  it('parses host and local:<bzImage>[,<tree>]', () => {
    expect(parseKernelSpec('host')).toEqual({ kind: 'host' });
    expect(parseKernelSpec('local:arch/x86/boot/bzImage')).toEqual({ kind: 'local', image: 'arch/x86/boot/bzImage', kdir: undefined });
    expect(parseKernelSpec('local:/k/bzImage,/k')).toEqual({ kind: 'local', image: '/k/bzImage', kdir: '/k' });
    expect(formatKernelSpec(parseKernelSpec('local:/k/bzImage,/k'))).toBe('local:/k/bzImage,/k');
  });

  it('expands all, keeps the order given, drops repeats, and defaults to bookworm', () => {
    expect(expandKernelSpecs([])).toEqual(['debian:bookworm']);
    expect(expandKernelSpecs(['all'])).toEqual(ALL_KERNELS);
    expect(ALL_KERNELS).toEqual(['debian:bullseye', 'debian:bookworm', 'debian:bookworm-backports', 'debian:trixie', 'debian:sid']);
    expect(expandKernelSpecs(['debian:sid', 'host', 'debian:sid', ' debian:bullseye'])).toEqual(['debian:sid', 'host', 'debian:bullseye']);
    expect(() => expandKernelSpecs(['debian:bookworm', 'ubuntu:noble'])).toThrowError(expect.objectContaining({ kind: 'usage' }));
  });

  it('names each kernel with a short, file-name-safe slug', () => {
    expect(ALL_KERNELS.map(kernelSlug)).toEqual(['bullseye', 'bookworm', 'bookworm-backports', 'trixie', 'sid']);
    expect(kernelSlug('host')).toBe('host');
    expect(kernelSlug('local:/src/linux/arch/x86/boot/bzImage,/src/linux')).toBe('local-bzImage');
  });

  it('rejects anything else as a usage error', () => {
    for (const bad of ['bookworm', 'debian:', 'ubuntu:jammy', 'debian:Bookworm', '', 'local:', 'all']) {
      expect(() => parseKernelSpec(bad)).toThrowError(expect.objectContaining({ kind: 'usage' }));
    }
  });
});

describe('headers fix-up', () => {
  it('makes the flavour Makefile include the common tree relative to itself', () => {
    expect(fixHeadersMakefile('include /usr/src/linux-headers-6.1.0-56-common/Makefile\n')).toBe(
      'include $(dir $(lastword $(MAKEFILE_LIST)))../linux-headers-6.1.0-56-common/Makefile\n',
    );
    expect(fixHeadersMakefile('# nothing to do\n')).toBe('# nothing to do\n');
  });

  it("makes sid's absolute KBUILD_OUTPUT the Makefile's own directory, fixed when read", () => {
    // The two lines of sid's linux-headers-7.2.13+deb14-cloud-amd64/Makefile.
    const fixed = fixHeadersMakefile('KBUILD_OUTPUT=/usr/src/linux-headers-7.2.13+deb14-cloud-amd64\ninclude /usr/src/linux-headers-7.2.13+deb14-common/Makefile\n');
    expect(fixed).toBe('KBUILD_OUTPUT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))\ninclude $(dir $(lastword $(MAKEFILE_LIST)))../linux-headers-7.2.13+deb14-common/Makefile\n');
  });
});

describe('build roots', () => {
  it("are made from the kernel's own release, or for other kernels from the release that shipped its gcc", () => {
    expect(buildRootSuite('trixie', 14)).toBe('trixie');
    expect(buildRootSuite('bookworm-backports', 12)).toBe('bookworm');
    expect(buildRootSuite('bullseye-security', 10)).toBe('bullseye');
    expect(buildRootSuite(undefined, 10)).toBe('bullseye');
    expect(buildRootSuite('', 14)).toBe('trixie');
    expect(buildRootSuite(undefined, 9)).toBeUndefined();
  });
});

describe('built-in modules from the config', () => {
  it("knows sid's virtio drivers are built in, though it ships no modules.builtin", () => {
    const b = builtinByConfig('CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_CONSOLE=y\nCONFIG_VIRTIO_NET=m\n# CONFIG_FOO is not set\n');
    expect(b.has('virtio_pci')).toBe(true);
    expect(b.has('virtio_console')).toBe(true);
    expect(b.has('virtio_net')).toBe(false);
  });
});

describe('the compiler a kernel was built with', () => {
  it('reads CONFIG_CC_VERSION_TEXT', () => {
    expect(compilerMajor('gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0')).toEqual({ name: 'gcc', major: 12 });
    expect(compilerMajor('gcc-10 (Debian 10.2.1-6) 10.2.1 20210110')).toEqual({ name: 'gcc', major: 10 });
    expect(compilerMajor('gcc (GCC) 14.1.1 20240522')).toEqual({ name: 'gcc', major: 14 });
    expect(compilerMajor('x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0')).toEqual({ name: 'gcc', major: 14 });
    expect(compilerMajor('Debian clang version 16.0.6')).toBeUndefined();
  });
});
