/** Replaying Kbuild's recorded commands after a one-file change: when it is safe, and what it runs. */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { oneChangedC, recordedCommand, replayScript } from '../../src/kbuild/replay.js';

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

  it('the script: the object, modpost, the .mod.o only if the .mod.c changed, the link; nothing when a record is missing', async () => {
    const tree = mkdtempSync(join(tmpdir(), 'mmaplab-replay-'));
    const src = join(tree, 'src');
    mkdirSync(src);
    const cmd = (target: string, command: string) => writeFileSync(join(src, `.${target}.cmd`), `cmd_${join(src, target)} := ${command}\n`);
    cmd('drv.o', 'gcc -c -o drv.o drv.c');
    cmd('Module.symvers', "sed 's/ko$$/o/' modules.order | scripts/mod/modpost -o Module.symvers -T -");
    cmd('drv.mod.o', 'gcc -c -o drv.mod.o drv.mod.c');
    expect(await replayScript(tree, 'src', 'src/drv.c', 'drv.ko')).toBeUndefined();
    cmd('drv.ko', 'ld -r -o drv.ko drv.o drv.mod.o');
    // The objects Kbuild listed for the module: a file not among them is not replayed.
    expect(await replayScript(tree, 'src', 'src/drv.c', 'drv.ko')).toBeUndefined();
    writeFileSync(join(src, 'drv.mod'), `${join(src, 'drv.o')}\n`);
    const script = (await replayScript(tree, 'src', 'src/drv.c', 'drv.ko'))!;
    const modC = join(src, 'drv.mod.c');
    expect(script.split('\n')).toEqual([
      'set -e',
      'gcc -c -o drv.o drv.c',
      `cp '${modC}' '${modC}.before'`,
      "sed 's/ko$/o/' modules.order | scripts/mod/modpost -o Module.symvers -T -",
      `cmp -s '${modC}' '${modC}.before' || { gcc -c -o drv.mod.o drv.mod.c; }`,
      'ld -r -o drv.ko drv.o drv.mod.o',
    ]);
    // A module of several objects: a part changed is linked into the module's object again.
    cmd('part.o', 'gcc -c -o part.o part.c');
    cmd('drv.o', 'ld -r -o drv.o @drv.mod');
    expect(await replayScript(tree, 'src', 'src/part.c', 'drv.ko')).toBeUndefined();
    writeFileSync(join(src, 'drv.mod'), `${join(src, 'part.o')}\n${join(src, 'main.o')}\n`);
    expect((await replayScript(tree, 'src', 'src/part.c', 'drv.ko'))!.split('\n').slice(1, 3)).toEqual(['gcc -c -o part.o part.c', 'ld -r -o drv.o @drv.mod']);
  });
});
