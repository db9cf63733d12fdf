/**
 * mmaplab debug's pure parts: the sections a guest reports, the driver's mmap
 * handler found in its sources, the gdb script and the launch.json made of
 * them, the -dbg package and the vmlinux taken out of it, the gdb stub's port.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GuestRecord } from '../../src/guest/protocol.js';
import { launchConfiguration, launchJson } from '../../src/gdb/launch.js';
import { parseMapRequest } from '../../src/gdb/map-socket.js';
import { gdbArgs } from '../../src/gdb/run-gdb.js';
import { addSymbolFile, earlyScript, gdbPath, gdbScript, lateScript, symbolsScript, type GdbSetup } from '../../src/gdb/script.js';
import { definedFunctions, definedSymbols, mmapInitializers, pickMmapHandler } from '../../src/kbuild/mmap-handler.js';
import { findStaticBusybox } from '../../src/guest/initramfs.js';
import { extractVmlinux, kernelDbgPackage, kernelSymbolsDir, vmlinuxMember } from '../../src/kernel/debug-symbols.js';
import { moduleSections } from '../../src/parse/module-sections.js';
import { freeLoopbackPort } from '../../src/util/net.js';
import { gdbPortTaken } from '../../src/vm/boot.js';
import { DEBUG_APPEND, qemuArgs } from '../../src/vm/qemu-args.js';
import { ROOT } from '../helpers.js';

const sec = (name: string, addr: string): GuestRecord => ({ t: 'section', name, addr });

describe('the sections a guest reports', () => {
  it('keeps every section with its address, .text named apart', () => {
    const r = moduleSections([sec('.text', '0xffffffffc0238000'), sec('.data', '0xFFFFFFFFC023B000'), sec('.bss', '0xffffffffc023b3c0'), sec('.exit.text', '0xffffffffc023873f'), sec('.note.gnu.build-id', '0xffffffffc0239000'), { t: 'step', step: 'insmod', status: 0, output: '' }]);
    expect(r).toEqual({
      kind: 'found',
      text: '0xffffffffc0238000',
      refused: [],
      sections: [
        { name: '.text', addr: '0xffffffffc0238000' },
        { name: '.data', addr: '0xffffffffc023b000' },
        { name: '.bss', addr: '0xffffffffc023b3c0' },
        { name: '.exit.text', addr: '0xffffffffc023873f' },
        { name: '.note.gnu.build-id', addr: '0xffffffffc0239000' },
      ],
    });
  });

  it('are read from /sys/module/<name>/sections by the job script, dot-files included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-sections-'));
    for (const [n, a] of [['.text', '0xffffffffc0238000'], ['.exit.text', '0xffffffffc023873f'], ['__param', '0xffffffffc02395c8']]) writeFileSync(join(dir, n!), `${a}\n`);
    const busybox = await findStaticBusybox();
    const out = execFileSync(busybox, ['sh', '-c', `MMAPLAB_JOB_LIB=1; . ./vm/job.sh; report_sections ${dir}`], { cwd: ROOT, encoding: 'utf8' });
    const records = out.trim().split('\n').map((l) => JSON.parse(l) as GuestRecord);
    expect(moduleSections(records)).toMatchObject({ kind: 'found', text: '0xffffffffc0238000', sections: [{ name: '.exit.text' }, { name: '.text' }, { name: '__param', addr: '0xffffffffc02395c8' }] });
  });

  it('refuses names and addresses that could reach a gdb command line', () => {
    const r = moduleSections([sec('.text', '0x1000'), sec('.data\nshell rm -rf ~', '0x2000'), sec('.bss', '0x3000; shell id'), sec('a b', '0x4')]);
    expect(r.kind === 'found' && r.sections.map((s) => s.name)).toEqual(['.text']);
    expect(r.kind === 'found' && r.refused).toHaveLength(3);
  });

  it('says why when there is no .text, or every address is hidden (0)', () => {
    expect(moduleSections([])).toEqual({ kind: 'none', why: 'the guest reported no sections in /sys/module' });
    expect(moduleSections([sec('.data', '0x1')]).kind).toBe('none');
    expect(moduleSections([sec('.text', '0x0000000000000000'), sec('.data', '0x0')])).toMatchObject({ kind: 'none', why: expect.stringMatching(/hidden/) as string });
  });
});

describe("the driver's mmap handler", () => {
  it('is the function a file_operations initializer names in .mmap, with its line', () => {
    const src = '/* .mmap = commented_out */\nstatic int a_mmap(struct file *f, struct vm_area_struct *v);\nstatic const struct file_operations fops = {\n\t.owner = THIS_MODULE,\n\t.mmap = a_mmap,\n};\n';
    expect(mmapInitializers(src, 'a.c')).toEqual([{ name: 'a_mmap', file: 'a.c', line: 5, via: 'file_operations' }]);
    expect(pickMmapHandler(mmapInitializers(src, 'a.c'), new Set(['a_mmap']))).toEqual({ kind: 'found', name: 'a_mmap', file: 'a.c', line: 5, via: 'file_operations' });
  });

  it("reads a proc_ops' .proc_mmap, and not a strategy struct's .mmap", () => {
    const src = 'static const struct proc_ops pops = { .proc_read = r, .proc_mmap = &p_mmap };\nstatic const struct strategy s = { .mmap = not_fops };\n';
    expect(mmapInitializers(src, 'p.c')).toEqual([{ name: 'p_mmap', file: 'p.c', line: 1, via: 'proc_ops' }]);
  });

  it('finds the fixtures\' and the bundled driver\'s handlers', () => {
    const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
    expect(mmapInitializers(read('test/fixtures/drivers/lab-layout/vmmap/vmmap.c'), 'vmmap.c').map((i) => i.name)).toEqual(['my_mmap']);
    expect(mmapInitializers(read('kernel-module/mmaplab_main.c'), 'mmaplab_main.c').map((i) => i.name)).toEqual(['mmaplab_mmap']);
  });

  it('says clearly when there is none, or the name is no function of the .ko', () => {
    expect(pickMmapHandler([], new Set())).toMatchObject({ kind: 'none', why: expect.stringMatching(/no `\.mmap = fn`/) as string });
    expect(pickMmapHandler([{ name: 'MACRO', file: 'a.c', line: 1, via: 'file_operations' }], new Set(['other']))).toMatchObject({ kind: 'none', why: expect.stringMatching(/defines no such function/) as string });
    const two = pickMmapHandler([{ name: 'a', file: 'a.c', line: 1, via: 'file_operations' }, { name: 'b', file: 'b.c', line: 2, via: 'file_operations' }], new Set(['a', 'b']));
    expect(two).toMatchObject({ kind: 'several', name: 'a', others: ['b'] });
  });

  it("takes the defined functions from readelf's symbol table", () => {
    const out = [
      'Symbol table \'.symtab\' contains 3 entries:',
      '   Num:    Value          Size Type    Bind   Vis      Ndx Name',
      '    20: 0000000000000000    68 FUNC    LOCAL  DEFAULT    2 my_mmap',
      '    21: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND remap_vmalloc_range',
      '    22: 0000000000000010     8 OBJECT  LOCAL  DEFAULT    5 buf',
    ].join('\n');
    expect([...definedFunctions(out)]).toEqual(['my_mmap']);
    expect([...definedSymbols(out, 'OBJECT')]).toEqual(['buf']);
  });
});

const setup: GdbSetup = {
  port: 41234,
  vmlinux: undefined,
  ko: '/cache/builds/m/vmmap.ko',
  sections: [
    { name: '.text', addr: '0xffffffffc0238000' },
    { name: '.data', addr: '0xffffffffc023b000' },
    { name: '.bss', addr: '0xffffffffc023b3c0' },
    { name: '.exit.text', addr: '0xffffffffc023873f' },
    { name: '.symtab', addr: '0xffffffffc0240000' },
  ],
  handler: 'my_mmap',
  sourceDir: '/src/vmmap',
  mapSocket: '/run/x/gdb-map.sock',
  checks: ['shared', 'private'],
};

describe('the gdb script', () => {
  it('loads the .ko at the .text address with every other section by -s (not the kernel\'s symbol table copies)', () => {
    expect(addSymbolFile(setup.ko, setup.sections)).toBe('add-symbol-file "/cache/builds/m/vmmap.ko" 0xffffffffc0238000 -s .data 0xffffffffc023b000 -s .bss 0xffffffffc023b3c0 -s .exit.text 0xffffffffc023873f');
  });

  it('sets the breakpoint, defines mmaplab-map, and connects last', () => {
    const s = gdbScript(setup);
    expect(s).toContain('set architecture i386:x86-64\n');
    expect(s).toContain('break my_mmap\n');
    expect(s).toContain('directory "/src/vmmap"\n');
    expect(s).toContain('s.connect("/run/x/gdb-map.sock")');
    expect(s).toContain('check = arg.strip() or "shared"');
    expect(s.trimEnd().split('\n').at(-1)).toBe('target remote 127.0.0.1:41234');
    expect(symbolsScript(setup)).not.toContain('target remote');
  });

  it("loads the kernel's symbols first when there are, and no breakpoint without a handler", () => {
    const s = symbolsScript({ ...setup, vmlinux: '/cache/kernel-symbols/r_v/vmlinux', indexCache: '/cache/gdb-index', handler: undefined });
    expect(s).toContain('file "/cache/kernel-symbols/r_v/vmlinux"\n');
    expect(s.indexOf('set index-cache enabled on')).toBeLessThan(s.indexOf('file "/cache'));
    // The index cache's folder unquoted: gdb takes that setting's line as it is.
    expect(s).toContain('set index-cache directory /cache/gdb-index\n');
    expect(s.indexOf('file "/cache')).toBeLessThan(s.indexOf('add-symbol-file'));
    expect(s).not.toContain('break ');
  });

  it('starts gdb early with the cached kernel symbols, and gives it the rest (never the kernel twice) once the driver is loaded', () => {
    const withKernel = { ...setup, vmlinux: '/k/vmlinux', indexCache: '/c/gdb-index' };
    const early = earlyScript(withKernel);
    expect(early).toContain('file "/k/vmlinux"\n');
    expect(early).toContain('s.sendall(b"ready\\n")');
    expect(early).toContain('gdb.execute("source " + reply[3:])');
    expect(early).not.toContain('add-symbol-file');
    const late = lateScript(withKernel, { vmlinux: '/k/vmlinux' });
    expect(late).not.toContain('file "/k/vmlinux"');
    expect(late.split('\n')[0]).toMatch(/^add-symbol-file /);
    expect(late.trimEnd().split('\n').at(-1)).toBe('target remote 127.0.0.1:41234');
    // Symbols fetched during the boot (not cached when gdb started): the late part loads them.
    expect(lateScript(withKernel, { vmlinux: undefined })).toContain('file "/k/vmlinux"\n');
    expect(lateScript(setup, { vmlinux: undefined })).toContain('set architecture i386:x86-64\n');
    expect(earlyScript(setup)).not.toContain('file ');
  });

  it("looks for the handler in the guest's memory, after connecting, only when the sources named none", () => {
    const s = gdbScript({ ...setup, handler: undefined, lookIn: ['fops', 'misc', 'bad name'] });
    expect(s.indexOf('target remote')).toBeLessThan(s.indexOf('for name in ["fops","misc"]:'));
    expect(s).toContain('gdb.execute("break *%d" % fn)');
    expect(gdbScript({ ...setup, lookIn: ['fops'] })).not.toContain('for name in');
    expect(symbolsScript({ ...setup, handler: undefined, lookIn: ['fops'] })).not.toContain('for name in');
    expect(lateScript({ ...setup, handler: undefined, lookIn: ['fops'] }, { vmlinux: undefined })).toContain('for name in ["fops"]:');
  });

  it('refuses a path it cannot quote', () => {
    expect(() => gdbPath('/a"b')).toThrow();
    expect(() => gdbPath('/a\nshell id')).toThrow();
  });

  it('defines mmaplab-map as python gdb itself accepts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-gdb-test-'));
    const script = join(dir, 'map.gdb');
    writeFileSync(script, `${symbolsScript({ ...setup, sections: [{ name: '.text', addr: '0x0' }], ko: '/bin/true', handler: undefined }).replace(/^add-symbol-file.*$/m, '')}help mmaplab-map\n`);
    const out = execFileSync('gdb', ['-q', '-nx', '-batch', '-x', script], { encoding: 'utf8' });
    expect(out).toMatch(/mmaplab-map \[shared\|private\]: have mmaplab run the mapping test/);
  });

  it("runs gdb quietly, without debuginfod, the user's commands after mmaplab's in batch mode", () => {
    expect(gdbArgs('/r/debug.gdb', { kind: 'batch', commands: '/t/cmds' })).toEqual(['-q', '-iex', 'set debuginfod enabled off', '-nx', '-batch', '-x', '/r/debug.gdb', '-x', '/t/cmds']);
    expect(gdbArgs('/r/debug.gdb', { kind: 'interactive' })).toEqual(['-q', '-iex', 'set debuginfod enabled off', '-x', '/r/debug.gdb']);
  });
});

describe('the launch.json snippet', () => {
  it('attaches cppdbg to the stub and sources the symbols script', () => {
    const i = { name: 'mmaplab: vmmap', port: 41234, program: '/k/vmlinux', symbolsScript: '/r/debug-symbols.gdb', cwd: '/src', gdb: '/usr/bin/gdb' };
    expect(launchConfiguration(i)).toMatchObject({ type: 'cppdbg', request: 'launch', program: '/k/vmlinux', MIMode: 'gdb', miDebuggerServerAddress: '127.0.0.1:41234', setupCommands: [{ text: 'source /r/debug-symbols.gdb' }] });
    const doc = JSON.parse(launchJson(i)) as { version: string; configurations: unknown[] };
    expect(doc.version).toBe('0.2.0');
    expect(doc.configurations).toHaveLength(1);
  });
});

describe("gdb's mmaplab-map requests", () => {
  it('are `map CHECK`, anything else refused', () => {
    expect(parseMapRequest('map shared\n')).toEqual({ kind: 'map', check: 'shared' });
    expect(parseMapRequest('map private-per-page')).toEqual({ kind: 'map', check: 'private-per-page' });
    expect(parseMapRequest('map shared; rm')).toMatchObject({ kind: 'bad' });
    expect(parseMapRequest('ready\n')).toEqual({ kind: 'ready' });
  });
});

describe("the kernel's symbols", () => {
  it("come from Debian's -dbg package of the release, its vmlinux alone", () => {
    expect(kernelDbgPackage('6.1.0-57-cloud-amd64')).toBe('linux-image-6.1.0-57-cloud-amd64-dbg');
    expect(vmlinuxMember('6.1.0-57-cloud-amd64')).toBe('./usr/lib/debug/boot/vmlinux-6.1.0-57-cloud-amd64');
    expect(kernelSymbolsDir('/c', { release: '6.1.0-57-cloud-amd64', packageVersion: '6.1.192-3' })).toBe('/c/kernel-symbols/6.1.0-57-cloud-amd64_6.1.192-3');
  });

  it('extracts only the vmlinux from a package', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-dbg-test-'));
    const pkg = join(dir, 'pkg');
    mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
    mkdirSync(join(pkg, 'usr/lib/debug/boot'), { recursive: true });
    mkdirSync(join(pkg, 'usr/lib/debug/lib/modules/r/kernel'), { recursive: true });
    writeFileSync(join(pkg, 'DEBIAN/control'), 'Package: linux-image-r-dbg\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: t\n');
    const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(60, 1)]);
    writeFileSync(join(pkg, 'usr/lib/debug/boot/vmlinux-r'), elf);
    writeFileSync(join(pkg, 'usr/lib/debug/lib/modules/r/kernel/big.ko'), Buffer.alloc(1000));
    execFileSync('dpkg-deb', ['--build', '-Zgzip', pkg, join(dir, 'p.deb')], { stdio: 'ignore' });
    await extractVmlinux(join(dir, 'p.deb'), 'r', join(dir, 'vmlinux'));
    expect(readFileSync(join(dir, 'vmlinux')).equals(elf)).toBe(true);
    await expect(extractVmlinux(join(dir, 'p.deb'), 'other', join(dir, 'v2'))).rejects.toThrow();
  });
});

describe("QEMU's gdb stub", () => {
  it('listens on 127.0.0.1 only, on a port the kernel chose, with KASLR off', async () => {
    const [a, b] = await Promise.all([freeLoopbackPort(), freeLoopbackPort()]);
    expect(a).not.toBe(b);
    const args = qemuArgs({ accel: 'tcg', memoryMb: 256, kernelImage: 'k', initrd: 'i', append: ['console=ttyS0', ...DEBUG_APPEND], firmware: undefined, channelSocket: 's', gdbPort: a });
    expect(args.join(' ')).toContain(`-gdb tcp:127.0.0.1:${a}`);
    expect(args[args.indexOf('-append') + 1]).toContain('nokaslr');
    expect(qemuArgs({ accel: 'tcg', memoryMb: 256, kernelImage: 'k', initrd: 'i', append: [], firmware: undefined, channelSocket: 's' })).not.toContain('-gdb');
  });

  it("knows QEMU's words for a port taken meanwhile", () => {
    expect(gdbPortTaken('qemu-system-x86_64: -gdb tcp:127.0.0.1:45677: Failed to find an available port: Address already in use\n')).toBe(true);
    expect(gdbPortTaken('qemu-system-x86_64: -kernel x: No such file')).toBe(false);
  });
});
