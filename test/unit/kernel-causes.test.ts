import { describe, expect, it } from 'vitest';
import { causeOf } from '../../src/diagnose/kernel-causes.js';
import { resolve } from 'node:path';
import { fileIn, symbolizeTraced, symbolizer } from '../../src/kbuild/symbolize.js';
import { findProblems, parseKernelLog } from '../../src/parse/kmsg.js';
import { fixture } from '../helpers.js';

describe("a kernel report's usual cause", () => {
  it("reads WARN()'s message from before its WARNING line, and names vfree of what is not vmalloc'ed", () => {
    // As a double vfree() in exit printed it on bookworm (test/fixtures/students/double-vfree).
    const log = ['[    5.054100] mmaplab: step rmmod', '[    5.064698] ------------[ cut here ]------------', '[    5.065211] Trying to vfree() nonexistent vm area (000000005f072c98)', '[    5.065856] WARNING: CPU: 0 PID: 135 at mm/vmalloc.c:2758 __vunmap+0x7e/0x340'].join('\n');
    const [p] = findProblems(parseKernelLog(log));
    expect(p).toMatchObject({ kind: 'warning', message: 'Trying to vfree() nonexistent vm area (000000005f072c98)', source: 'mm/vmalloc.c:2758' });
    expect(causeOf(p!)?.id).toBe('vfree-not-vmalloc');
  });

  it('a NULL dereference, from a real console', () => {
    const [p] = findProblems(parseKernelLog(fixture('consoles', 'null-deref-mmap.console.log')));
    expect(causeOf(p!)?.id).toBe('null-deref');
  });
});

describe('traced calls at the driver line', () => {
  it("resolves a traced caller's return address in the built module to its file:line and quotes it", async () => {
    const s = await symbolizer('test/fixtures/runs/check-null-deref-mmap/null_deref.ko', 'null_deref');
    const traced = [{ fn: 'remap_pfn_range', caller: 'broken_mmap+0x10/0x1d [null_deref]', calls: 1, returns: { '0': 1 } }, { fn: 'x', caller: 'other+0x1/0x2 [elsewhere]', calls: 1, returns: { '0': 1 } }];
    // The module's debug info names the driver where it was built (this checkout's test/fixtures): that one file may be quoted.
    const built = (await s!.resolve('broken_mmap', '0x10/0x1d', true))!.replace(/:\d+$/, '');
    await symbolizeTraced(traced, s!, process.cwd(), fileIn([resolve(built)]));
    expect(traced[0]).toMatchObject({ callerSource: expect.stringMatching(/null-deref-mmap\/null_deref\.c:1[78]$/), callerCode: expect.stringMatching(/pr_info|return \*never_set/) });
    expect(traced[1]).not.toHaveProperty('callerSource');
  });
});
