/** `host` and `local:` kernels: what is looked for where, and the message when it is not there. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bzImageRelease, hostKernel, localKernel } from '../../src/kernel/installed.js';

function layout() {
  const root = mkdtempSync(join(tmpdir(), 'mmaplab-test-host-'));
  const l = { release: '6.1.0-99-amd64', bootDir: join(root, 'boot'), modulesRoot: join(root, 'lib/modules') };
  mkdirSync(l.bootDir, { recursive: true });
  return { root, l };
}

/** The first 0x300 bytes of a bzImage: the setup header announcing a release. */
function fakeBzImage(path: string, release: string) {
  const b = Buffer.alloc(0x400);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x100, 0x20e);
  b.write(`${release} (builder@host) #1 SMP`, 0x300, 'latin1');
  writeFileSync(path, b);
}

describe('the host kernel', () => {
  it("says the image is missing, naming the package, when /boot has none (containers, this machine)", async () => {
    const { l } = layout();
    await expect(hostKernel(l)).rejects.toMatchObject({ kind: 'fetch', message: expect.stringMatching(/image .*vmlinuz-6\.1\.0-99-amd64 is not there/), hint: expect.stringMatching(/install linux-image-6\.1\.0-99-amd64/) });
  });

  it('names the headers package when the image is there but /lib/modules/<release>/build is not', async () => {
    const { l } = layout();
    fakeBzImage(join(l.bootDir, `vmlinuz-${l.release}`), l.release);
    await expect(hostKernel(l)).rejects.toMatchObject({ message: expect.stringMatching(/no headers for the running kernel/), hint: 'install linux-headers-6.1.0-99-amd64' });
  });

  it('describes the running kernel from its image, config and headers', async () => {
    const { l } = layout();
    fakeBzImage(join(l.bootDir, `vmlinuz-${l.release}`), l.release);
    const build = join(l.modulesRoot, l.release, 'build');
    mkdirSync(join(l.modulesRoot, l.release, 'kernel'), { recursive: true });
    mkdirSync(build, { recursive: true });
    writeFileSync(join(build, 'Makefile'), 'all:\n');
    writeFileSync(join(build, '.config'), 'CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14) 12.2.0"\n');
    const k = await hostKernel(l);
    expect(k).toMatchObject({ spec: 'host', release: l.release, headersDir: build, modulesDir: join(l.modulesRoot, l.release), compilerText: 'gcc-12 (Debian 12.2.0-14) 12.2.0' });
  });
});

describe('a local kernel', () => {
  it('reads the release a bzImage announces', async () => {
    const { root } = layout();
    fakeBzImage(join(root, 'bzImage'), '6.19.0-rc1+');
    expect(await bzImageRelease(join(root, 'bzImage'))).toBe('6.19.0-rc1+');
    writeFileSync(join(root, 'vmlinux'), '\x7fELF');
    expect(await bzImageRelease(join(root, 'vmlinux'))).toBeUndefined();
  });

  it('asks for the tree when the image is not inside one, and refuses a tree of another release', async () => {
    const { root } = layout();
    fakeBzImage(join(root, 'bzImage'), '6.19.0');
    await expect(localKernel(join(root, 'bzImage'), undefined)).rejects.toMatchObject({ message: expect.stringMatching(/which kernel tree goes with it/) });
    const tree = join(root, 'linux');
    mkdirSync(join(tree, 'include/generated'), { recursive: true });
    for (const f of ['Makefile', '.config', 'Module.symvers']) writeFileSync(join(tree, f), '');
    writeFileSync(join(tree, 'include/generated/utsrelease.h'), '#define UTS_RELEASE "6.18.2"\n');
    await expect(localKernel(join(root, 'bzImage'), tree)).rejects.toMatchObject({ message: expect.stringMatching(/is kernel 6\.19\.0, but the tree .* is for 6\.18\.2/) });
    await expect(localKernel(join(root, 'nope'), tree)).rejects.toMatchObject({ message: expect.stringMatching(/not there or not readable/) });
  });

  it('finds the tree of arch/x86/boot/bzImage by itself', async () => {
    const { root } = layout();
    const tree = join(root, 'linux');
    mkdirSync(join(tree, 'arch/x86/boot'), { recursive: true });
    mkdirSync(join(tree, 'include/generated'), { recursive: true });
    fakeBzImage(join(tree, 'arch/x86/boot/bzImage'), '6.19.0');
    for (const f of ['Makefile', 'Module.symvers']) writeFileSync(join(tree, f), '');
    writeFileSync(join(tree, '.config'), 'CONFIG_CC_VERSION_TEXT="gcc (GCC) 14.2.0"\n');
    writeFileSync(join(tree, 'include/generated/utsrelease.h'), '#define UTS_RELEASE "6.19.0"\n');
    const k = await localKernel(join(tree, 'arch/x86/boot/bzImage'), undefined);
    expect(k).toMatchObject({ release: '6.19.0', headersDir: tree, compilerText: 'gcc (GCC) 14.2.0' });
  });
});
