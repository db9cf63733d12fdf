import { describe, expect, it } from 'vitest';
import { findProblems, parseFrame, parseKernelLine, parseKernelLog, reachedInit } from '../../src/parse/kmsg.js';
import { fixture } from '../helpers.js';
import { causeOf } from '../../src/diagnose/kernel-causes.js';

describe('printk lines', () => {
  it('splits the timestamp from the text', () => {
    expect(parseKernelLine('[    2.285222] mmaplab: strategy seed, 16 pages')).toEqual({ time: 2.285222, text: 'mmaplab: strategy seed, 16 pages' });
    expect(parseKernelLine('Bus error')).toEqual({ time: undefined, text: 'Bus error' });
  });

  it('parses stack frames, telling guesses from reliable frames', () => {
    expect(parseFrame(' broken_mmap+0x11/0x1d [null_deref]')).toEqual({ fn: 'broken_mmap', offset: '0x11/0x1d', module: 'null_deref', reliable: true });
    expect(parseFrame(' ? rest_init+0xd0/0xd0')).toEqual({ fn: 'rest_init', offset: '0xd0/0xd0', module: undefined, reliable: false });
    expect(parseFrame('RSP: 0018:ffffd3c9405cfa38 EFLAGS: 00000246')).toBeUndefined();
  });
});

describe('problems in real guest consoles', () => {
  it("reads an i386 guest's oops the same way (captured from a real 686-pae guest): EIP without a code segment, a call trace without <TASK> marks", () => {
    const lines = parseKernelLog(fixture('consoles', 'null-deref-mmap-i386.console.log'));
    const problems = findProblems(lines);
    // Five checks, each in a guest restored afresh, each crashed once.
    expect(problems).toHaveLength(5);
    const [oops] = problems;
    expect(oops).toMatchObject({ kind: 'oops', title: 'BUG: kernel NULL pointer dereference, address: 00000000', location: 'broken_mmap+0x12/0x19', locationModule: 'null_deref' });
    expect(oops!.modules).toContain('null_deref');
    // The trace stops at the registers the syscall came in with ("EIP: 0xb7fa4559"), which is no frame.
    expect(oops!.callTrace.map((f) => f.fn).slice(0, 4)).toEqual(['mmap_file', 'mmap_region', 'generic_get_unmapped_area_topdown', 'arch_get_unmapped_area_topdown']);
    expect(oops!.callTrace.map((f) => f.fn).at(-1)).toBe('entry_SYSENTER_32');
    expect(lines[oops!.endLine - 1]!.text).toMatch(/^(CR0|DS): /);
  });

  it("reads an arm64 guest's oops (captured from a real cloud-arm64 guest): the fault's lines and 'Internal error: Oops' are one report, pc is the location, 'Call trace:' its frames", () => {
    const lines = parseKernelLog(fixture('consoles', 'null-deref-mmap-arm64.console.log'));
    const problems = findProblems(lines);
    expect(problems.map((p) => p.kind)).toEqual(problems.map(() => 'oops'));
    expect(problems.length).toBeGreaterThanOrEqual(2);
    const [oops] = problems;
    expect(oops).toMatchObject({ kind: 'oops', title: 'Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000', location: 'broken_mmap+0x2c/0x34', locationModule: 'null_deref' });
    expect(oops!.modules).toContain('null_deref');
    expect(oops!.callTrace.map((f) => f.fn).slice(0, 4)).toEqual(['broken_mmap', 'mmap_region', 'do_mmap', 'vm_mmap_pgoff']);
    expect(oops!.callTrace.find((f) => f.fn === 'broken_mmap')).toMatchObject({ module: 'null_deref', offset: '0x2c/0x34' });
    expect(problems.some((p) => /^Internal error/.test(p.title))).toBe(false);
  });

  it("ends an arm64 call trace at its last frame (it has no </TASK>), reads 6.13's frame marks, starts on every 'Internal error:', and knows arm64's causes", () => {
    const hung = parseKernelLog(
      [
        '[   30.1] INFO: task mmap-test:147 blocked for more than 10 seconds.',
        '[   30.2] Call trace:',
        '[   30.3]  __switch_to+0xf0/0x170 (T)',
        '[   30.4]  __schedule+0x2f4/0x9c0',
        '[   30.5]  stuck_mmap+0x24/0x40 [stuck] (P)',
        '[   30.6] stuck: still waiting',
        '[   30.7] mmaplab: check 3 end',
      ].join('\n'),
    );
    const [task] = findProblems(hung);
    expect(task!.callTrace.map((f) => f.fn)).toEqual(['__switch_to', '__schedule', 'stuck_mmap']);
    expect(task!.callTrace[2]).toMatchObject({ module: 'stuck', offset: '0x24/0x40' });
    // The driver's next line and the markers are the log going on, not the report.
    expect(task!.endLine).toBe(5);
    const abort = findProblems(parseKernelLog('[ 5.0] Internal error: synchronous external abort: 0000000096000010 [#1] SMP\n[ 5.1] pc : poke_mmap+0x10/0x20 [poke]\n'));
    expect(abort).toMatchObject([{ kind: 'oops', location: 'poke_mmap+0x10/0x20', locationModule: 'poke' }]);
    const cause = (title: string) => causeOf({ kind: 'oops', title, time: 1, location: undefined, source: undefined, modules: [], callTrace: [], line: 0, endLine: 1 })?.id;
    expect(cause('Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000')).toBe('null-deref');
    expect(cause('Unable to handle kernel paging request at virtual address ffff800008ad0000')).toBe('page-fault');
  });

  it('finds the NULL dereference oops in the driver, with its location and call trace', () => {
    const lines = parseKernelLog(fixture('consoles', 'null-deref-mmap.console.log'));
    const problems = findProblems(lines);
    expect(problems).toHaveLength(1);
    const [oops] = problems;
    expect(oops).toMatchObject({ kind: 'oops', title: expect.stringMatching(/^BUG: kernel NULL pointer dereference/) });
    expect(oops!.location).toMatch(/^broken_mmap\+0x[0-9a-f]+\/0x[0-9a-f]+$/);
    expect(oops!.modules).toContain('null_deref');
    expect(oops!.callTrace.map((f) => f.fn)).toEqual(expect.arrayContaining(['mmap_region', 'do_mmap', 'ksys_mmap_pgoff']));
    // The body ends with the register dump after "end trace", not at the end of the log.
    expect(lines[oops!.endLine - 1]!.text).toMatch(/^CR2: /);
  });

  it('finds one WARNING per mapping, located at the driver source line', () => {
    const problems = findProblems(parseKernelLog(fixture('consoles', 'warn-mmap.console.log')));
    expect(problems.length).toBeGreaterThanOrEqual(7);
    expect(new Set(problems.map((p) => p.kind))).toEqual(new Set(['warning']));
    expect(problems[0]!.source).toMatch(/\/test\/fixtures\/drivers\/warn-mmap\/warn_mmap\.c:15$/);
    expect(problems[0]!.location).toMatch(/^broken_mmap\+/);
    expect(problems[0]!.callTrace[0]!.fn).toBe('mmap_file');
  });

  it('finds the panic before init and knows init never ran', () => {
    const text = fixture('consoles', 'early-panic.console.log');
    const problems = findProblems(parseKernelLog(text));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ kind: 'panic', title: 'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)' });
    expect(problems[0]!.callTrace.filter((f) => f.reliable).map((f) => f.fn)).toContain('mount_block_root');
    expect(reachedInit(text)).toBe(false);
    expect(reachedInit(fixture('consoles', 'seed.console.log'))).toBe(true);
  });

  it('finds nothing wrong in the seed driver run', () => {
    expect(findProblems(parseKernelLog(fixture('consoles', 'seed.console.log')))).toEqual([]);
  });
});

describe('a corrupted page table', () => {
  it('is an oops, titled by the corruption, with the Bad pagetable line folded in', () => {
    const lines = parseKernelLog(
      [
        '[    2.502815] mmap-test: Corrupted page table at address 7fb2f164f000',
        '[    2.506249] PGD 2db2067 P4D 2db2067 PUD 2d9a067 PMD 2da1067 PTE 80023b7000000235',
        '[    2.507108] Bad pagetable: 000c [#1] PREEMPT SMP NOPTI',
        '[    2.508113] RIP: 0033:0x40286a',
      ].join('\n'),
    );
    expect(findProblems(lines).map((p) => [p.kind, p.title])).toEqual([['oops', 'mmap-test: Corrupted page table at address 7fb2f164f000']]);
  });
});
