/**
 * mmaplab check on students' drivers that crash, warn or do not build
 * (test/fixtures/students, written without seeing mmaplab's code): each crash
 * is reported in the step it happened in, at the driver's own line, once.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CheckItem, CheckReport } from '../../src/model/report.js';
import { qemuProcesses, runCli } from './cli.js';
import { parseValidResults } from '../support/schema.js';

const STUDENTS = 'test/fixtures/students';

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

async function check(name: string, more: string[] = [], exitCode = 1): Promise<{ report: CheckReport; item: (id: string) => CheckItem }> {
  const r = await runCli(['check', '--json', `${STUDENTS}/${name}`, ...more]);
  expect(r.exitCode, r.stderr).toBe(exitCode);
  const report = parseValidResults<CheckReport>(r.stdout);
  return { report, item: (id) => report.items.find((i) => i.id === id)! };
}

/** How many passes (jobs) the check ran, from the records it kept. */
function passes(r: CheckReport): number {
  const lines = readFileSync(join(r.artifacts.dir, 'records.jsonl'), 'utf8').split('\n').filter(Boolean);
  return new Set(lines.map((l) => (JSON.parse(l) as { job: number }).job)).size;
}

describe('a crash in module init', () => {
  it('the skeleton with its allocation forgotten: loads fails with the oops at the line that wrote through NULL, tried once', async () => {
    for (const [name, line] of [['init-null-buffer', /vmap_skel\.c:90\)$/], ['init-null-buffer-2', /kbufdev\.c:48, called at .*kbufdev\.c:82\)$/], ['oops-in-init', /oops_in_init\.c:47\)$/], ['oops-in-init-3', /physbuf\.c:89\)$/]] as const) {
      const { report, item } = await check(name);
      expect(item('loads')).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/^module init crashed: BUG: kernel NULL pointer dereference, address: [0-9a-f]+ in \w+\+0x[0-9a-f]+ \(/) });
      expect(item('loads').reason).toMatch(line);
      expect(item('kernel').verdict).toBe('fail');
      expect(passes(report)).toBe(1);
    }
  });

  it('panic() in init: named as the panic, with its message and line; the dead guest is not tried again', async () => {
    const { report, item } = await check('panic-in-init');
    expect(item('loads').reason).toMatch(/^module init called panic\(\): pagemap: page 0 has a corrupted header! in pm_init\+0x[0-9a-f]+ \(.*pagemap_drv\.c:60, called at .*pagemap_drv\.c:78\)$/);
    expect(item('loads').details).toEqual([expect.stringMatching(/pagemap_drv\.c:60: panic\(/)]);
    expect(passes(report)).toBe(1);
    expect(report.notes.filter((n) => /went down during insmod/.test(n))).toHaveLength(1);
  });
});

describe('a BUG_ON() in init', () => {
  it('named as the BUG_ON at its line, with a hint about BUG_ON, not about pointers', async () => {
    const { report, item } = await check('panic-in-init-2');
    expect(item('loads').reason).toMatch(/^module init crashed: kernel BUG at .*kpgbuf\.c:100! in kpg_init\+0x[0-9a-f]+ \(.*kpgbuf\.c:100\)$/);
    expect(item('loads').hint).toMatch(/^a BUG_ON\(\) \(or BUG\(\)\) in the driver fired/);
    expect(passes(report)).toBe(1);
  });
});

describe('a crash or a warning in exit', () => {
  it('vfree() twice: the WARNING with its message, the usual cause, and the driver line of the second call', async () => {
    const { item } = await check('double-vfree');
    expect(item('kernel').reason).toMatch(/^1 problem: Trying to vfree\(\) nonexistent vm area \((?:\w+|\(_+ptrval_+\))\) — WARNING: .* at mm\/vmalloc\.c:\d+/);
    expect(item('kernel').details).toContainEqual(expect.stringMatching(/at vmmap_exit\+0x[0-9a-f]+ \(.*so2_vmmap\.c:126\) \(during rmmod\)$/));
    expect(item('kernel').details).toContainEqual(expect.stringMatching(/^usual cause: vfree\(\) of memory that is not vmalloc\(\)ed now: the same buffer freed twice/));
  });

  it('vfree() twice through one helper: the helper\'s line and the second call\'s', async () => {
    const { item } = await check('double-free-2');
    expect(item('kernel').details).toContainEqual(expect.stringMatching(/at vpb_exit\+0x[0-9a-f]+ \(.*vpagebuf\.c:112, called at .*vpagebuf\.c:153\) \(during rmmod\)$/));
  });

  it('vfree() of kmalloc memory: the same cause, at its own line', async () => {
    const { item } = await check('vfree-never-allocated');
    expect(item('kernel').details).toContainEqual(expect.stringMatching(/kmap_lab\.c:87\) \(during rmmod\)$/));
  });

  it('a NULL dereference in exit fails rmmod as that crash', async () => {
    const { item } = await check('oops-in-exit');
    expect(item('unloads').reason).toMatch(/^the exit function crashed: BUG: kernel NULL pointer dereference, address: 0+80 in labmem_exit\+0x[0-9a-f]+ \(.*labmem\.c:127\)$/);
  });
});

describe('a crash in mmap', () => {
  it("private_data never set: the mapping checks fail at the driver's line, with the line quoted", async () => {
    const { item } = await check('oops-in-mmap-2');
    expect(item('shared').reason).toMatch(/^the driver crashed: BUG: kernel NULL pointer dereference, address: 0+68 in remapper_mmap\+0x[0-9a-f]+ \(.*remapper\.c:45\)$/);
    expect(item('shared').details).toEqual([expect.stringMatching(/remapper\.c:45: char \*buf = dev->vbuf;$/)]);
  });
});

describe('a loop that never ends', () => {
  it('in init: insmod never finished, named by the soft lockup at the loop\'s line, seconds after it began', async () => {
    const { item, report } = await check('loop-in-init');
    expect(item('loads').reason).toMatch(/^insmod never finished: module init never returns: the kernel reported a soft lockup in pfnmap_init\+0x[0-9a-f]+ \(.*pfnmap\.c:6[3-7]\)$/);
    expect(report.notes.join(' ')).toMatch(/stopped once the kernel reported the guest stuck during insmod \(watchdog: BUG: soft lockup/);
  });

  it('in exit: rmmod never finished, at the loop', async () => {
    const { item } = await check('loop-in-exit');
    expect(item('unloads').reason).toMatch(/^rmmod never finished: the exit function never returns: the kernel reported a soft lockup in vp_exit\+0x[0-9a-f]+ \(.*vpages\.c:11[4-8]\)$/);
  });
});

describe('drivers that do not build here', () => {
  it("the 32-bit lab's int read()/write(): one line and the ssize_t fix", async () => {
    const { item } = await check('int-read-write-32bit');
    expect(item('builds').buildMistakes?.map((m) => m.id)).toEqual(['int-read-write']);
    expect(item('builds').hint).toMatch(/^declare them static ssize_t/);
  });

  it('a 5.x driver walking mm->mmap, on the kernel asked for: the API change, and the Debian kernel that builds it as written', async () => {
    const { item } = await check('vma-list-5x', ['--kernel', 'debian:bookworm']);
    expect(item('builds').apiChanges?.map((c) => [c.id, c.buildsOn])).toEqual([['vma-list-removed', 'debian:bullseye']]);
  });

  it('the same driver with no kernel named: checked on bullseye, which builds it, and says why', async () => {
    const { report } = await check('vma-list-5x', [], 0);
    expect(report.kernel.spec).toBe('debian:bullseye');
    expect(report.items.filter((i) => i.verdict === 'fail')).toEqual([]);
    expect(report.notes[0]).toMatch(/^the driver does not build on 6\.1\.\S+, only because of kernel API changes \(mm->mmap and vma->vm_next are gone since Linux 6\.1.*\); it was checked on debian:bullseye, which builds it as written/);
  });

  it('a userspace program: said to be one', async () => {
    const { item } = await check('userspace-program');
    expect(item('builds').reason).toMatch(/^this is a userspace program, not a kernel module/);
  });
});
