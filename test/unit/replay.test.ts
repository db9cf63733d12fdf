/** Replaying Kbuild's recorded commands after a one-file change: when it is safe, and what it runs. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelAllowsReplay, oneChangedC, recordedCommand, replayScript, writeIntoTree } from '../../src/kbuild/replay.js';

describe("Kbuild's recorded commands", () => {
  it("reads a .cmd file's command for its own target, make's escapes undone", () => {
    const text = "cmd_/t/src/drv.o := gcc -Wp,-MMD,/t/src/.drv.o.d -DKBUILD_MODNAME='\"drv\"' -c -o /t/src/drv.o /t/src/drv.c; sed 's/x$$/y/' $(pound)\n\nsource_/t/src/drv.o := /t/src/drv.c\n";
    expect(recordedCommand(text, '/t/src/drv.o')).toBe("gcc -Wp,-MMD,/t/src/.drv.o.d -DKBUILD_MODNAME='\"drv\"' -c -o /t/src/drv.o /t/src/drv.c; sed 's/x$/y/' #");
    // 6.3 on names it savedcmd_.
    expect(recordedCommand('savedcmd_/t/src/drv.o := gcc -c x.c\n', '/t/src/drv.o')).toBe('gcc -c x.c');
    // Another target's command, or one named relative to M= (Kbuild from 6.13 runs from there): not replayed.
    expect(recordedCommand('cmd_/t/src/other.o := gcc\n', '/t/src/drv.o')).toBeUndefined();
    expect(recordedCommand('cmd_drv.o := gcc\n', 'drv.o')).toBeUndefined();
  });

  it('replays only when one .c file is all that changed', () => {
    const before = { 'drv.c': 'a', 'drv.h': 'b', Kbuild: 'c' };
    expect(oneChangedC(before, { ...before, 'drv.c': 'A' })).toBe('drv.c');
    expect(oneChangedC(before, { ...before, 'drv.h': 'B' })).toBeUndefined();
    expect(oneChangedC(before, { ...before, Kbuild: 'C' })).toBeUndefined();
    expect(oneChangedC(before, { ...before, 'drv.c': 'A', 'drv.h': 'B' })).toBeUndefined();
    expect(oneChangedC(before, { ...before, 'new.c': 'n' })).toBeUndefined();
    expect(oneChangedC(before, before)).toBeUndefined();
  });

  it('the script: the object, modpost, the .mod.o only if the .mod.c changed, the link; nothing where Kbuild would do more', async () => {
    const tree = mkdtempSync(join(tmpdir(), 'mmaplab-replay-'));
    const src = join(tree, 'src');
    mkdirSync(src);
    const cmd = (target: string, command: string, more = '') => writeFileSync(join(src, `.${target}.cmd`), `cmd_${join(src, target)} := ${command}\n${more}`);
    const script = (changed = 'src/drv.c', source = 'int x;') => replayScript(tree, 'src', changed, source, 'drv.ko');
    cmd('drv.o', 'gcc -c -o drv.o drv.c');
    cmd('Module.symvers', "sed 's/ko$$/o/' modules.order | scripts/mod/modpost -o Module.symvers -T -");
    cmd('drv.mod.o', 'gcc -c -o drv.mod.o drv.mod.c');
    expect(await script()).toBeUndefined();
    cmd('drv.ko', 'ld -r -o drv.ko drv.o drv.mod.o');
    // The objects Kbuild listed for the module: not one object, or not this one, is Kbuild's to build.
    expect(await script()).toBeUndefined();
    writeFileSync(join(src, 'drv.mod'), `${join(src, 'drv.o')}\n${join(src, 'part.o')}\n`);
    expect(await script()).toBeUndefined();
    writeFileSync(join(src, 'drv.mod'), `${join(src, 'drv.o')}\n`);
    const modC = join(src, 'drv.mod.c');
    expect((await script())!.split('\n')).toEqual([
      'set -e',
      'gcc -c -o drv.o drv.c',
      `cp '${modC}' '${modC}.before'`,
      "sed 's/ko$/o/' modules.order | scripts/mod/modpost -o Module.symvers -T -",
      `cmp -s '${modC}' '${modC}.before' || { gcc -c -o drv.mod.o drv.mod.c; }`,
      'ld -r -o drv.ko drv.o drv.mod.o',
    ]);
    // Another file than the module's object, an export (symbol versions, the local-export check), a record with symbol versions.
    expect(await script('src/other.c')).toBeUndefined();
    expect(await script('src/drv.c', 'EXPORT_SYMBOL_GPL(x);')).toBeUndefined();
    cmd('drv.o', 'gcc -c -o drv.o drv.c', '#SYMVER x 0x12345678\n');
    expect(await script()).toBeUndefined();
    // A record the build made a link (to any host file) or a FIFO is not read.
    rmSync(join(src, '.drv.o.cmd'));
    symlinkSync('/etc/passwd', join(src, '.drv.o.cmd'));
    expect(await script()).toBeUndefined();
    rmSync(join(src, '.drv.o.cmd'));
    execFileSync('mkfifo', [join(src, '.drv.o.cmd')]);
    expect(await script()).toBeUndefined();
  });

  it('kernels that run more than the recorded compile (record_mcount, trimmed exports) are not replayed', () => {
    expect(kernelAllowsReplay('CONFIG_X86_64=y\nCONFIG_FTRACE_MCOUNT_USE_CC=y\n')).toBe(true);
    expect(kernelAllowsReplay('CONFIG_FTRACE_MCOUNT_USE_RECORDMCOUNT=y\n')).toBe(false);
    expect(kernelAllowsReplay('CONFIG_TRIM_UNUSED_KSYMS=y\n')).toBe(false);
  });

  it('the changed file goes into the kept tree through real folders only, never through a link the build left', async () => {
    const tree = mkdtempSync(join(tmpdir(), 'mmaplab-replay-tree-'));
    const outside = mkdtempSync(join(tmpdir(), 'mmaplab-replay-host-'));
    writeFileSync(join(outside, 'victim'), 'host file\n');
    // The build made the driver's own file a link to a host file: the link goes, the file stays as it was.
    symlinkSync(join(outside, 'victim'), join(tree, 'drv.c'));
    await writeIntoTree(tree, 'drv.c', Buffer.from('int x;\n'));
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('host file\n');
    expect(readFileSync(join(tree, 'drv.c'), 'utf8')).toBe('int x;\n');
    // A folder on the way made a link to a host folder: refused.
    symlinkSync(outside, join(tree, 'sub'));
    await expect(writeIntoTree(tree, 'sub/victim', Buffer.from('x'))).rejects.toThrow(/replaced its own folder sub/);
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('host file\n');
  });
});
