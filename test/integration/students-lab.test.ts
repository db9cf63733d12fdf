/**
 * mmaplab check on drivers written the way students write them for the
 * memory-mapping lab and LDD3 (test/fixtures/students: written by someone who
 * had not seen mmaplab's code): correct ones pass whatever their layout, byte
 * order and registration; the mistakes that are not crashes get the true
 * verdict, not the one mmaplab's own fixtures would suggest.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { CheckItem, CheckReport } from '../../src/model/report.js';
import { qemuProcesses, runCli } from './cli.js';
import { parseValidResults } from '../support/schema.js';

const STUDENTS = 'test/fixtures/students';

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

async function check(name: string): Promise<{ exitCode: number; report: CheckReport; item: (id: string) => CheckItem }> {
  const r = await runCli(['check', '--json', `${STUDENTS}/${name}`]);
  const report = parseValidResults<CheckReport>(r.stdout);
  return { exitCode: r.exitCode ?? -1, report, item: (id) => report.items.find((i) => i.id === id)! };
}

const failed = (r: CheckReport) => r.items.filter((i) => i.verdict === 'fail').map((i) => i.id);

describe("students' correct drivers pass", () => {
  it("the lab's own layout (driver beside test/ with the lab's test program): the pattern is the one the lab's test checks", async () => {
    const { exitCode, report, item } = await check('lab-vmmap-layout');
    expect(failed(report)).toEqual([]);
    expect(exitCode).toBe(0);
    expect(item('readonly').reason).toBe('a write into a PROT_READ mapping of the device opened O_RDONLY faults');
    expect(report.pattern).toMatchObject({ bytes: 'aa bb cc dd', from: 'lab-test', where: expect.stringMatching(/lab-vmmap-layout\/test\/mmap-test\.c:\d+$/) });
    expect(item('shared').reason).toMatch(/^16\/16 pages start with aa bb cc dd \(the lab's test/);
  });

  it('a fixed major with a cdev and a /proc entry, the kmalloc variant; an LDD3 simple.c; a misc device; the seed\'s u32 store', async () => {
    for (const name of ['lab-kmmap-fixed-major', 'ldd3-simple', 'lab-vmalloc', 'kmalloc-reserved']) {
      const { exitCode, report } = await check(name);
      expect({ name, failed: failed(report), exitCode }).toEqual({ name, failed: [], exitCode: 0 });
    }
    // A u32 store of 0xaabbccdd is dd cc bb aa in memory: the driver's own order, named as such.
    const u32 = await check('u32-pattern');
    expect(failed(u32.report)).toEqual([]);
    expect(u32.item('shared').reason).toMatch(/^16\/16 pages start with dd cc bb aa \(the driver writes them, .*mmapdrv\.c:\d+; not the lab's aa bb cc dd: with the lab's test program, --expect-pattern 0xddccbbaa holds it to those\)$/);
  });
});

describe("students' mistakes that are not crashes", () => {
  it("read() that copies nothing (the skeleton's stub), two students' takes: read() fails as such, and the write still reaches the driver", async () => {
    for (const name of ['read-stub', 'read-stub-2']) {
      const { report, item } = await check(name);
      expect({ name, failed: failed(report) }).toEqual({ name, failed: ['read'] });
      expect(item('read').reason).toBe('read() returns 4 bytes but copies nothing');
      expect(item('write')).toMatchObject({ verdict: 'pass', reason: 'a second mapping of the device sees it' });
    }
  });

  it('read() that ignores the file offset, vmalloc and kmalloc variants', async () => {
    for (const name of ['read-ignores-offset', 'read-ignores-offset-2']) {
      const { report, item } = await check(name);
      expect({ name, failed: failed(report) }).toEqual({ name, failed: ['read'] });
      expect(item('read').reason).toBe('read() ignores the file offset: at offset 8 it returns the bytes at offset 0');
    }
  });

  it('PAGE_SHARED for vma->vm_page_prot, page by page or in one call: everything reads right, but a read-only mapping writes the buffer', async () => {
    for (const name of ['page-shared-prot', 'page-shared-2']) {
      const { report, item } = await check(name);
      expect({ name, failed: failed(report) }).toEqual({ name, failed: ['readonly'] });
      expect(item('readonly')).toMatchObject({ reason: 'writable PTEs in a read-only mapping: a PROT_READ mapping of the device opened O_RDONLY wrote into the buffer', hint: expect.stringMatching(/vma->vm_page_prot, not PAGE_SHARED/) });
    }
  });

  it("every page mapped to the buffer's first (the pfn of page 0 each time; the kernel pointer never advanced): all 16 pages one physical page", async () => {
    for (const name of ['all-pages-first', 'same-page-2']) {
      const { report, item } = await check(name);
      expect({ name, failed: failed(report) }).toEqual({ name, failed: ['distinct-pages'] });
      expect(item('distinct-pages').reason).toMatch(/^all 16 pages map one physical page/);
      // The picture in the JSON: sixteen pages, all the buffer's first.
      expect({ name, shows: report.results.find((x) => x.check === 'shared')!.picture!.pages.map((p) => p.shows) }).toEqual({ name, shows: Array(16).fill(0) });
    }
  });
});
