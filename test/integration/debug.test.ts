/**
 * mmaplab debug on a real guest: gdb in batch mode connects to the guest's
 * stub, the breakpoint in a student-layout driver's mmap hits when the test
 * maps the device, gdb prints vma->vm_flags, the source line and the
 * driver's own variables (read at the .bss address the guest gave), and
 * detaches. shell --gdb: the guest's shell reads /sys/module itself, and its
 * values are those the gdb script was given; gdb attaches from outside.
 * No QEMU is left behind: each debug guest is told apart by its -gdb option
 * (other QEMU tests may run on this machine at the same time).
 */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { qemuProcesses, runCli, startCli } from './cli.js';

const DRIVER = 'test/fixtures/drivers/lab-layout/vmmap';
const debugGuests = () => qemuProcesses().filter((l) => l.includes(' -gdb tcp:127.0.0.1:'));

afterEach(() => {
  expect(debugGuests()).toEqual([]);
});

/** The section addresses the gdb script gave add-symbol-file, by name. */
function scriptSections(script: string): Record<string, string> {
  const line = script.split('\n').find((l) => l.startsWith('add-symbol-file '))!;
  const [, text, rest] = /^add-symbol-file "[^"]+" (0x[0-9a-f]+)(.*)$/.exec(line)!;
  const out: Record<string, string> = { '.text': text! };
  for (const m of rest!.matchAll(/-s (\S+) (0x[0-9a-f]+)/g)) out[m[1]!] = m[2]!;
  return out;
}

describe('mmaplab debug', () => {
  it('breaks in the driver\'s mmap when the test maps, prints vma->vm_flags and the source line, and detaches', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-debug-test-'));
    const commands = join(dir, 'cmds.gdb');
    writeFileSync(commands, ['info breakpoints', 'mmaplab-map shared', 'print/x vma->vm_flags', 'frame', 'print/x buf', 'print devno', 'detach', ''].join('\n'));
    const r = await startCli(['debug', DRIVER, '--no-kernel-symbols', '--gdb-batch', commands, '--output-dir', join(dir, 'run')]);
    const out = String(r.stdout);
    const err = String(r.stderr);
    expect(r.exitCode, err + out).toBe(0);
    expect(err).toMatch(/breakpoint at my_mmap \(the \.mmap of its file_operations, vmmap\/vmmap\.c:25\)/);
    expect(out).toMatch(/^Breakpoint 1, my_mmap \(filp=0x[0-9a-f]+, vma=0x[0-9a-f]+\) at \S*vmmap\.c:2[12]$/m);
    // The source line itself, found through the driver's folder.
    expect(out).toMatch(/^2[12]\t(\{|\treturn remap_vmalloc_range\(vma, buf, vma->vm_pgoff\);)$/m);
    // The shared check's read-only MAP_SHARED mapping: VM_READ (0x1) and VM_MAYSHARE (0x80), not VM_WRITE (0x2).
    const flags = Number.parseInt(/^\$1 = (0x[0-9a-f]+)$/m.exec(out)![1]!, 16);
    expect(flags & 0x83).toBe(0x81);
    // The driver's .bss read at the address the guest gave: its vmalloc'ed buffer and its device number.
    expect(out).toMatch(/^\$2 = 0xffffc9[0-9a-f]+$/m);
    expect(Number(/^\$3 = (\d+)$/m.exec(out)![1])).toBeGreaterThan(1 << 20);
    expect(out).toContain('[Inferior 1 (process 1) detached]');
    expect(err).toMatch(/the shared mapping test ended: the test program exited 0, 16\/16 pages read right/);
    expect(err).toMatch(/the guest is off/);
  }, 90_000);

  it("shell --gdb: the guest's /sys/module shows the addresses the gdb script was given, and gdb attaches from another terminal", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-debug-test-'));
    const run = join(dir, 'run');
    const p = startCli(['shell', '--gdb', DRIVER, '--no-kernel-symbols', '--output-dir', run], {}, 'pipe');
    let out = '';
    let sent = false;
    let attached: Promise<{ stdout: string }> | undefined;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (sent || !out.includes('mmaplab# ')) return;
      sent = true;
      // gdb from "another terminal", while the shell runs: the symbols and breakpoint, then detach.
      attached = execa('gdb', ['-q', '-nx', '-batch', '-x', join(run, 'debug.gdb'), '-ex', 'info breakpoints', '-ex', 'print devno', '-ex', 'detach'], { reject: false }).then(async (g) => {
        p.stdin!.write('grep -H "" /sys/module/vmmap/sections/.[!.]* /sys/module/vmmap/sections/*; echo SECTIONS-END\nexit\n');
        return { stdout: String(g.stdout) };
      });
    });
    const r = await p;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const g = await attached!;
    expect(g.stdout).toMatch(/^1\s+breakpoint\s+keep y\s+0x[0-9a-f]+ in my_mmap at \S*vmmap\.c:\d+$/m);
    expect(g.stdout).toMatch(/^\$1 = \d+$/m);
    expect(String(r.stderr)).toMatch(/attach gdb from another terminal: \S*gdb -q -x \S+debug\.gdb/);
    const guest: Record<string, string> = {};
    for (const m of out.matchAll(/\/sys\/module\/vmmap\/sections\/([^:\s]+):(0x[0-9a-f]+)/g)) guest[m[1]!] = m[2]!;
    const given = scriptSections(readFileSync(join(run, 'debug.gdb'), 'utf8'));
    expect(Object.keys(given)).toEqual(expect.arrayContaining(['.text', '.bss', '.exit.text', '.rodata']));
    // Every section gdb was given is where the guest says, and every section the guest has was given (but its symbol tables' copies).
    for (const [name, addr] of Object.entries(given)) expect(guest[name], name).toBe(addr);
    expect(Object.keys(guest).filter((n) => !(n in given)).sort()).toEqual(['.strtab', '.symtab']);
  }, 90_000);

  it('--print-gdb prints the commands and a launch.json, keeps the guest for an IDE (mmaplab-map works from it), and Ctrl-C leaves nothing running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-debug-test-'));
    const p = startCli(['debug', DRIVER, '--no-kernel-symbols', '--print-gdb', '--output-dir', join(dir, 'run')]);
    let out = '';
    let ide: Promise<string> | undefined;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (ide || !out.includes('until Ctrl-C')) return;
      // The IDE: gdb with the printed script, the test run from its prompt, then Ctrl-C to mmaplab.
      ide = execa('gdb', ['-q', '-nx', '-batch', '-x', join(dir, 'run', 'debug.gdb'), '-ex', 'mmaplab-map private', '-ex', 'print/x vma->vm_flags', '-ex', 'detach'], { reject: false }).then((g) => {
        setTimeout(() => p.kill('SIGINT'), 1000);
        return String(g.stdout);
      });
    });
    const r = await p;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const launch = JSON.parse(/^(\{\n  "version": "0\.2\.0"[\s\S]*?\n\})$/m.exec(out)![1]!) as { configurations: Array<{ type: string; miDebuggerServerAddress: string }> };
    expect(launch.configurations[0]).toMatchObject({ type: 'cppdbg', miDebuggerServerAddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as string });
    expect(out).toMatch(/^add-symbol-file "\S+vmmap\.ko" 0xffffffff[0-9a-f]+ -s /m);
    expect(await ide).toMatch(/^Breakpoint 1, my_mmap \(/m);
    expect(String(r.stderr)).toMatch(/the private mapping test ended: the test program exited 0/);
    expect(String(r.stderr)).toMatch(/the guest is off/);
  }, 90_000);

  it('finds a handler set at run time (no initializer in the sources) in the guest\'s memory, and breaks there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-debug-test-'));
    const commands = join(dir, 'cmds.gdb');
    writeFileSync(commands, ['mmaplab-map shared', 'detach', ''].join('\n'));
    const r = await startCli(['debug', 'test/fixtures/drivers/runtime-fops', '--no-kernel-symbols', '--gdb-batch', commands, '--output-dir', join(dir, 'run')]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stderr)).toMatch(/no mmap handler in the driver's sources \(no `\.mmap = fn`.*gdb looks in the guest's memory/);
    expect(String(r.stdout)).toContain("mmaplab: mmap handler from the guest's memory: fops.mmap");
    expect(String(r.stdout)).toMatch(/^Breakpoint 1, late_mmap \(filp=0x[0-9a-f]+, vma=0x[0-9a-f]+\) at \S*runtime_fops\.c:\d+$/m);
    expect(String(r.stderr)).toMatch(/the shared mapping test ended: the test program exited 0, 16\/16 pages read right/);
  }, 90_000);

  it('two sessions at once each get a gdb stub of their own and break in their own guest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmaplab-debug-test-'));
    const commands = join(dir, 'cmds.gdb');
    writeFileSync(commands, ['mmaplab-map shared', 'print vma->vm_pgoff', 'detach', ''].join('\n'));
    const both = await Promise.all([1, 2].map((i) => startCli(['debug', '--no-kernel-symbols', '--gdb-batch', commands, '--output-dir', join(dir, `run${i}`)])));
    const ports = both.map((r) => {
      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(String(r.stdout)).toMatch(/^Breakpoint 1, mmaplab_mmap \(/m);
      return /gdb stub on 127\.0\.0\.1:(\d+)/.exec(String(r.stderr))![1];
    });
    expect(ports[0]).not.toBe(ports[1]);
  }, 90_000);

  it('without gdb: one line naming the package, before anything is built or booted', async () => {
    // A PATH with nothing on it (mmaplab itself runs from node's own path).
    const r = await runCli(['debug', DRIVER, '--no-kernel-symbols'], { PATH: mkdtempSync(join(tmpdir(), 'mmaplab-empty-path-')) });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/gdb not found/);
    expect(r.stderr).toMatch(/install the Debian\/Ubuntu package gdb \(sudo apt-get install gdb\)/);
    expect(r.durationMs).toBeLessThan(5000);
  });
});
