import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reachUp, resolveDriverSource } from '../../src/kbuild/driver-source.js';

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'mmaplab-src-'));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), text);
  }
  return root;
}

describe('what to build for a driver', () => {
  it('uses the driver folder as it is when it has a Kbuild or Makefile', async () => {
    const root = tree({ 'drv/Makefile': 'obj-m := a.o\n', 'drv/a.c': '#include "a.h"\n', 'drv/a.h': '', 'drv/a.o': 'stale', 'drv/notes.txt': '' });
    expect(await resolveDriverSource(join(root, 'drv'))).toEqual({ root: join(root, 'drv'), subdir: '', files: ['Makefile', 'a.c', 'a.h'], generatedKbuild: undefined });
  });

  it('writes a Kbuild for a lone .c, or for several .c files as one module named after the folder', async () => {
    const one = tree({ 'x/my-drv.c': '' });
    expect((await resolveDriverSource(join(one, 'x'))).generatedKbuild).toBe('obj-m := my-drv.o\n');
    const many = tree({ 'lab-3/main.c': '', 'lab-3/mmap.c': '' });
    expect((await resolveDriverSource(join(many, 'lab-3'))).generatedKbuild).toBe('obj-m := lab_3.o\nlab_3-y := main.o mmap.o\n');
  });

  it('builds just the file named, with the folder headers', async () => {
    const root = tree({ 'd/a.c': '', 'd/b.c': '', 'd/common.h': '' });
    expect(await resolveDriverSource(join(root, 'd', 'b.c'))).toEqual({ root: join(root, 'd'), subdir: '', files: ['b.c', 'common.h'], generatedKbuild: 'obj-m := b.o\n' });
  });

  it('takes in the folder above when the driver includes "../test/mmap-test.h" (the lab layout)', async () => {
    const root = tree({ 'lab/kmmap/kmmap.c': '#include "../test/mmap-test.h"\n', 'lab/kmmap/Kbuild': 'obj-m = kmmap.o\n', 'lab/test/mmap-test.h': '', 'lab/test/mmap-test.c': '', 'lab/.git/x': '' });
    expect(await resolveDriverSource(join(root, 'lab', 'kmmap'))).toEqual({
      root: join(root, 'lab'),
      subdir: 'kmmap',
      files: ['kmmap/Kbuild', 'kmmap/kmmap.c', 'test/mmap-test.c', 'test/mmap-test.h'],
      generatedKbuild: undefined,
    });
  });

  it('takes in from the folder above only what the includes name, not the rest of it (other people\'s work)', async () => {
    const root = tree({ 'class/alice/drv.c': '#include "../test/mmap-test.h"\n', 'class/alice/Kbuild': 'obj-m := drv.o\n', 'class/test/mmap-test.h': '', 'class/bob/drv.c': 'BOB', 'class/notes.h': '' });
    expect((await resolveDriverSource(join(root, 'class', 'alice'))).files).toEqual(['alice/Kbuild', 'alice/drv.c', 'test/mmap-test.h']);
  });

  it('counts how far includes and -I flags reach up', () => {
    expect(reachUp(['#include "x.h"'])).toBe(0);
    expect(reachUp(['#include "../test/mmap-test.h"'])).toBe(1);
    expect(reachUp(['#include "../../include/x.h"'])).toBe(2);
    expect(reachUp(['ccflags-y += -I$(src)/../include'])).toBe(1);
  });

  it('refuses what it cannot build, as a usage error', async () => {
    await expect(resolveDriverSource('/nonexistent')).rejects.toMatchObject({ kind: 'usage' });
    await expect(resolveDriverSource(tree({ 'd/README': '' }) + '/d')).rejects.toThrow(/no Kbuild, Makefile or .c file/);
  });

  it('takes a symlink inside the submission as the file it names, and refuses one that leaves it or leads nowhere', async () => {
    const lab = tree({ 'lab/drv/drv.c': '#include "../test/mmap-test.h"\n#include "common.h"\n', 'lab/test/mmap-test.h': '', 'lab/test/common.h': '', 'secret.h': 'SECRET' });
    symlinkSync('../test/common.h', join(lab, 'lab/drv/common.h'));
    expect((await resolveDriverSource(join(lab, 'lab', 'drv'))).files).toContain('drv/common.h');
    symlinkSync(join(lab, 'secret.h'), join(lab, 'lab/drv/secret.h'));
    await expect(resolveDriverSource(join(lab, 'lab', 'drv'))).rejects.toMatchObject({ kind: 'build', message: 'drv/secret.h is a symlink that leads outside the submission' });
    const dangling = tree({ 'd/a.c': '' });
    symlinkSync('/nonexistent/x.h', join(dangling, 'd/x.h'));
    await expect(resolveDriverSource(join(dangling, 'd'))).rejects.toMatchObject({ kind: 'build', message: 'x.h is a symlink that leads nowhere' });
    // A folder by a link: never walked through, refused when it leaves.
    const dirLink = tree({ 'd/a.c': '#include "inc/x.h"\n', 'elsewhere/x.h': 'SECRET' });
    symlinkSync(join(dirLink, 'elsewhere'), join(dirLink, 'd/inc'));
    await expect(resolveDriverSource(join(dirLink, 'd'))).rejects.toMatchObject({ kind: 'build', message: 'inc is a symlink that leads outside the submission' });
    const single = tree({ 'd/real.c': '' });
    symlinkSync(join(lab, 'secret.h'), join(single, 'd/link.c'));
    await expect(resolveDriverSource(join(single, 'd', 'link.c'))).rejects.toMatchObject({ kind: 'build' });
  });
});
