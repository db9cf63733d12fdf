import { describe, expect, it } from 'vitest';
import { parseKernelSpec } from '../../src/kernel/spec.js';
import { fixHeadersMakefile } from '../../src/kernel/debian.js';
import { compilerMajor } from '../../src/build/compiler.js';

describe('kernel specs', () => {
  it('parses debian:<suite> with the default flavour', () => {
    expect(parseKernelSpec('debian:bookworm')).toEqual({ kind: 'debian', suite: 'bookworm', flavour: 'cloud-amd64' });
    expect(parseKernelSpec('debian:bookworm-backports', 'amd64')).toEqual({ kind: 'debian', suite: 'bookworm-backports', flavour: 'amd64' });
  });

  it('rejects anything else as a usage error', () => {
    for (const bad of ['bookworm', 'debian:', 'ubuntu:jammy', 'debian:Bookworm', '']) {
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
