import { describe, expect, it } from 'vitest';
import { checkItems, taintLetters } from '../../src/diagnose/verdicts.js';
import { leakedAreas } from '../../src/parse/job-records.js';
import { checksStatus } from '../../src/model/exit.js';
import type { CheckResult } from '../../src/model/outcome.js';
import { LAB_WORD, patternChoice } from '../../src/model/pattern.js';

const SEED_ORDER = patternChoice(0xaabbccdd, 'option', true);

const page = (i: number, pfn: string | null) => ({ page: i, addr: `0x${i}000`, word: '0xaabbccdd', index: 0, expectIndex: null, pfn, ok: true });
function shared(pfns: Array<string | null>): CheckResult {
  return {
    strategy: 'custom', check: 'shared', mode: 'shared', outcome: { kind: 'ok', pagesOk: pfns.length, pages: pfns.length, pattern: '0xaabbccdd' },
    pagesOk: pfns.length, pages: pfns.length, expected: { kind: 'ok' }, matchesExpected: true, exitStatus: 0, exitDescription: 'exit status 0',
    pageReports: pfns.map((p, i) => page(i, p)), seedPrintf: undefined, traced: [], kernelLog: [], explanation: undefined,
  };
}
const base = {
  build: { ok: true as const, warnings: [] },
  insmod: { ok: true, status: 0, output: '' },
  device: { ok: true, status: 0, output: '/dev/x 244:0' },
  rmmod: { ok: true, status: 0, output: '' },
  problems: [],
  vmallocLeft: [],
  tainted: 12288,
  moduleName: 'kmmap',
  pattern: SEED_ORDER,
};

describe('check verdicts', () => {
  it('fails a driver that maps the same page everywhere, naming the pages', () => {
    const items = checkItems({ ...base, results: [shared(['0x100', '0x101', '0x100'])] });
    expect(items.find((i) => i.id === 'distinct-pages')).toMatchObject({ verdict: 'fail', reason: 'pages 0 and 2 map one physical page (by their page frames)' });
    expect(checksStatus(items).exitCode).toBe(1);
  });

  it('passes distinct pages, and skips the check when frames are unknown', () => {
    expect(checkItems({ ...base, results: [shared(['0x100', '0x101'])] }).find((i) => i.id === 'distinct-pages')!.verdict).toBe('pass');
    expect(checkItems({ ...base, results: [shared([null, null])] }).find((i) => i.id === 'distinct-pages')!.verdict).toBe('skip');
  });

  it('without page frames (a PFN mapping), judges by the markers written into each page', () => {
    const aliased = { ...shared([null, null, null]), aliases: { tested: true, pairs: [[0, 2] as [number, number], [1, 2] as [number, number]] } };
    expect(checkItems({ ...base, results: [aliased] }).find((i) => i.id === 'distinct-pages')).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/^all 3 pages map one physical page \(the one page 0 maps/) });
    // Two pairs of pages, each pair one page: named pair by pair.
    const pairs = { ...shared([null, null, null, null]), aliases: { tested: true, pairs: [[0, 2] as [number, number], [1, 3] as [number, number]] } };
    expect(checkItems({ ...base, results: [pairs] }).find((i) => i.id === 'distinct-pages')!.reason).toBe('pages 0 and 2 map one physical page; pages 1 and 3 map one physical page (a marker written into each showed in the others)');
    const fine = { ...shared([null, null]), aliases: { tested: true, pairs: [] } };
    expect(checkItems({ ...base, results: [fine] }).find((i) => i.id === 'distinct-pages')!.verdict).toBe('pass');
    const untested = { ...shared([null, null]), aliases: { tested: false, pairs: [], why: 'writable MAP_SHARED: EACCES' } };
    expect(checkItems({ ...base, results: [untested] }).find((i) => i.id === 'distinct-pages')).toMatchObject({ verdict: 'skip', reason: expect.stringMatching(/EACCES/) });
  });

  it('fails a driver whose rmmod freed reserved pages, skips when that could not be watched', () => {
    expect(checkItems({ ...base, results: [], reservedFreed: 16 }).find((i) => i.id === 'reserved')).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/^rmmod freed 16 pages still marked PG_reserved/) });
    expect(checkItems({ ...base, results: [], reservedFreed: 0 }).find((i) => i.id === 'reserved')!.verdict).toBe('pass');
    expect(checkItems({ ...base, results: [] }).find((i) => i.id === 'reserved')!.verdict).toBe('skip');
  });

  it('reads the taint mask', () => {
    expect(taintLetters(12288)).toEqual(['O', 'E']);
    expect(taintLetters(0)).toEqual([]);
    expect(checkItems({ ...base, results: [] }).find((i) => i.id === 'taint')!.reason).toBe('O (out-of-tree module), E (unsigned module)');
  });

  it('finds the vmalloc areas an unloaded module left: its name, or a caller in module space', () => {
    // As the job reports them: the (hashed) address range dropped.
    const lines = [' 69632 0xffffffffc0321045 pages=16 vmalloc N0=16', ' 20480 dup_task_struct+0x4f/0x1f0 pages=4 vmalloc N0=4', ' 69632 kmmap_init+0x20/0x100 [kmmap] pages=16 vmalloc'];
    expect(leakedAreas(lines, 'kmmap')).toEqual([lines[0], lines[2]]);
    // An i386 module lives in vmalloc space: once it is gone its caller is a bare 32-bit address (seen on a 686-pae guest).
    const i386 = [' 69632 0xd0888018 pages=16 vmalloc', ' 8192 __vmalloc_node+0x3e/0x50 pages=1 vmalloc'];
    expect(leakedAreas(i386, 'leaky')).toEqual([i386[0]]);
    // arm64 loads modules beside the randomized kernel image: a bare 64-bit address too (seen on a cloud-arm64 guest).
    const arm64 = [' 69632 0xffffc76ff3e63028 pages=16 vmalloc N0=16', ' 20480 kernel_clone+0xa0/0x4b0 pages=4 vmalloc N0=4', ' 8192 gicv2m_init_one+0xac/0x238 phys=0x0000000008020000 ioremap'];
    expect(leakedAreas(arm64, 'leaky')).toEqual([arm64[0]]);
    const items = checkItems({ ...base, results: [], vmallocLeft: lines });
    expect(items.find((i) => i.id === 'leaks')).toMatchObject({ verdict: 'fail', reason: '2 vmalloc areas still allocated' });
  });

  it('a build that fails is the first failed check; the rest are skipped', () => {
    const items = checkItems({ ...base, build: { ok: false, message: 'does not compile', diagnostics: [{ severity: 'error', file: 'a.c', line: 3, column: 1, message: 'boom' }] }, results: [] });
    expect(items.map((i) => [i.id, i.verdict])).toEqual([['builds', 'fail'], ['loads', 'skip'], ['device', 'skip']]);
    expect(items[0]!.details).toEqual(['a.c:3:1: error: boom']);
  });
});

describe("check's report", () => {
  it('says a note once however many passes made it, without the strategy name a run puts first', async () => {
    const { assessJob } = await import('../../src/diagnose/assess.js');
    const { assembleCheckReport } = await import('../../src/diagnose/assemble.js');
    // A crash in module init, as each of four passes meets it: the job never gets past insmod.
    const pass = (id: number) => {
      const console = [`[    1.0] mmaplab: job ${id} begin`, '[    1.1] mmaplab: step insmod', '[    1.2] BUG: kernel NULL pointer dereference, address: 0000000000000000', '[    1.3] RIP: 0010:my_init+0x44/0x80 [vmmap]'].join('\n');
      return assessJob({ strategy: 'custom', label: '', checks: ['shared', 'private', 'shared-write', 'oversize'], jobId: id, end: 'stalled', records: [], console });
    };
    const assessments = [1, 2, 3, 4].map(pass);
    const r = assembleCheckReport({
      kernel: { spec: 'debian:bookworm', release: '6.1.0-57-cloud-amd64', packageVersion: '6.1', flavour: 'cloud-amd64' },
      machine: undefined,
      driver: { source: 'vmmap', module: 'vmmap', compiler: 'gcc-12', buildWarnings: [] },
      build: { ok: true, warnings: [] },
      assessments,
      pattern: SEED_ORDER,
      notes: ['a setup note'],
      artifacts: { dir: '/x', consoleLog: undefined, resultsJson: '/x/results.json', module: undefined },
    });
    expect(r.notes).toEqual(['a setup note', 'the kernel crashed during insmod and the guest made no progress after it; it was killed']);
    expect(r.status).toBe('fail');
  });
});

describe('a driver whose device does not open', () => {
  it('fails the device check once; the mapping checks say nothing of mappings they never made', () => {
    const openFailed = (check: 'shared' | 'private' | 'shared-write' | 'oversize'): CheckResult => ({
      ...shared([]),
      check,
      outcome: { kind: 'open-failed', errno: 'ENOENT', message: 'No such file or directory' },
      pageReports: [],
    });
    const items = checkItems({
      build: { ok: true, warnings: [] },
      insmod: { ok: true, status: 0, output: '' },
      device: { ok: false, status: 1, output: 'no new character device after insmod' },
      rmmod: { ok: true, status: 0, output: '' },
      results: (['shared', 'private', 'shared-write', 'oversize'] as const).map(openFailed),
      problems: [],
      vmallocLeft: [],
      tainted: undefined,
      moduleName: 'proc_only',
      pattern: SEED_ORDER,
    });
    const v = Object.fromEntries(items.map((i) => [i.id, `${i.verdict}: ${i.reason}`]));
    expect(v.device).toBe('fail: no new character device after insmod');
    expect([v.private, v.write, v.oversize]).toEqual(['skip: the device did not open', 'skip: the device did not open', 'skip: the device did not open']);
  });
});

describe('the pattern a driver writes', () => {
  const okWith = (word: string): CheckResult => ({ ...shared(['0x1', '0x2']), outcome: { kind: 'ok', pagesOk: 2, pages: 2, pattern: word } });
  const sharedItem = (pattern: ReturnType<typeof patternChoice>, r: CheckResult) => checkItems({ ...base, pattern, results: [r] }).find((i) => i.id === 'shared')!;

  it("names a byte-order mismatch against the lab's test as such, with the bytes and the file that wants them", () => {
    const lab = patternChoice(LAB_WORD, 'lab-test', true, 'test/mmap-test.c:40');
    const item = sharedItem(lab, okWith('0xaabbccdd'));
    expect(item).toMatchObject({ verdict: 'fail', reason: "byte order: 2/2 pages start with dd cc bb aa, but the lab's test, test/mmap-test.c:40 expects aa bb cc dd" });
    expect(item.hint).toMatch(/p\[0\] = 0xaa; p\[1\] = 0xbb/);
    expect(sharedItem(lab, okWith('0xddccbbaa'))).toMatchObject({ verdict: 'pass', reason: "2/2 pages start with aa bb cc dd (the lab's test, test/mmap-test.c:40)" });
  });

  it('passes the other byte order when only the driver itself said which bytes, and says so', () => {
    const own = patternChoice(0xaabbccdd, 'driver', false, 'drv.c:27');
    expect(sharedItem(own, okWith('0xaabbccdd'))).toMatchObject({ verdict: 'pass', reason: "2/2 pages start with dd cc bb aa (the driver writes them, drv.c:27; not the lab's aa bb cc dd: with the lab's test program, --expect-pattern 0xddccbbaa holds it to those)" });
    expect(sharedItem(own, okWith('0xddccbbaa')).reason).toMatch(/the other byte order/);
  });

  it('a word nothing named, the same on every page: asks for --expect-pattern rather than blaming the mapping', () => {
    const bad: CheckResult = { ...shared(['0x1', '0x2']), outcome: { kind: 'wrong-data', pagesOk: 0, pages: 2, firstBad: { page: 0, word: '0x12345678', index: 0, expectIndex: null } } };
    bad.pageReports = bad.pageReports.map((p) => ({ ...p, word: '0x12345678', ok: false }));
    const item = sharedItem(patternChoice(LAB_WORD, 'default', false), bad);
    expect(item).toMatchObject({ verdict: 'fail', hint: 'if those are the bytes your driver writes, say so: --expect-pattern 0x12345678' });
  });
});

describe('what read() does, apart from the mapping', () => {
  const write = (finding: CheckResult['readFinding'], outcome: CheckResult['outcome'] = { kind: 'ok', pagesOk: 1, pages: 1 }): CheckResult => ({ ...shared([]), check: 'shared-write', outcome, ...(finding ? { readFinding: finding } : {}) });
  const items = (r: CheckResult) => Object.fromEntries(checkItems({ ...base, results: [r] }).map((i) => [i.id, `${i.verdict}: ${i.reason}`]));

  it('a stub read() that returns the count and copies nothing: the read check fails, the write is seen by a second mapping', () => {
    const v = items(write({ read: { kind: 'copies-nothing', n: 4, offset: 8 }, secondMapping: true, fromStart: false }));
    expect(v.read).toBe('fail: read() returns 4 bytes but copies nothing');
    expect(v.write).toBe('pass: a second mapping of the device sees it');
  });

  it('a read() that ignores the offset: said so, and the write counts (read() from 0 shows it in place)', () => {
    const v = items(write({ read: { kind: 'ignores-offset', offset: 8 }, secondMapping: true, fromStart: true }));
    expect(v.read).toBe('fail: read() ignores the file offset: at offset 8 it returns the bytes at offset 0');
    expect(v.write).toMatch(/^pass/);
  });

  it('no read() at all is not a failure of either', () => {
    const v = items(write({ read: { kind: 'failed', err: 'EINVAL' }, secondMapping: true, fromStart: false }));
    expect(v.read).toBe('skip: the driver has no read(): it fails with EINVAL');
    expect(v.write).toMatch(/^pass/);
  });

  it('read() and the mapping on different memory', () => {
    const v = items(write({ read: { kind: 'misses-write', offset: 8, value: '0x00000000' }, secondMapping: true, fromStart: false }));
    expect(v.read).toMatch(/^fail: .*read\(\) and mmap\(\) use different memory/);
  });
});

describe('crashes in a step are that step failing', () => {
  const oops = (during: string, kind: 'oops' | 'panic' = 'oops') => ({
    kind, title: kind === 'panic' ? 'Kernel panic - not syncing: corrupted' : 'BUG: kernel NULL pointer dereference, address: 0000000000000000', during,
    time: 1, location: 'my_init+0x44/0x80', locationModule: 'vmmap', source: undefined, modules: [], callTrace: [], line: 0, endLine: 1,
    culprit: { fn: 'my_init+0x44', source: 'vmmap.c:57', how: 'rip' as const, code: 'buf[0] = 0xaa;' },
  });

  it('an oops in init: loads fails with the crash at the driver\'s line, not "init returned an error"', () => {
    const items = checkItems({ ...base, insmod: { ok: false, status: 137, output: 'Killed' }, problems: [oops('insmod')], results: [] });
    expect(items.find((i) => i.id === 'loads')).toMatchObject({ verdict: 'fail', reason: 'module init crashed: BUG: kernel NULL pointer dereference, address: 0000000000000000 in my_init+0x44 (vmmap.c:57)', details: ['vmmap.c:57: buf[0] = 0xaa;'] });
    expect(items.find((i) => i.id === 'kernel')!.verdict).toBe('fail');
  });

  it('panic() in init never finished insmod: named as the panic', () => {
    const items = checkItems({ ...base, insmod: undefined, problems: [oops('insmod', 'panic')], results: [] });
    expect(items.find((i) => i.id === 'loads')!.reason).toBe('module init called panic(): corrupted in my_init+0x44 (vmmap.c:57)');
  });

  it('a step the kernel reported stuck: a loop spins, a wait sleeps; each with its own hint', () => {
    const stuck = (kind: 'soft-lockup' | 'hung-task', during: string) => ({ ...oops(during), kind, title: kind === 'soft-lockup' ? 'watchdog: BUG: soft lockup - CPU#0 stuck for 10s! [insmod:117]' : 'INFO: task rmmod:130 blocked for more than 10 seconds.' });
    const loads = checkItems({ ...base, insmod: undefined, problems: [stuck('soft-lockup', 'insmod')], results: [] }).find((i) => i.id === 'loads')!;
    expect(loads).toMatchObject({ reason: 'insmod never finished: module init never returns: the kernel reported a soft lockup in my_init+0x44 (vmmap.c:57)', hint: expect.stringMatching(/^a loop in init that never ends/) });
    const unloads = checkItems({ ...base, rmmod: undefined, problems: [stuck('hung-task', 'rmmod')], results: [] }).find((i) => i.id === 'unloads')!;
    expect(unloads).toMatchObject({ reason: 'rmmod never finished: the exit function never returns: it sleeps and is never woken (the kernel reported a hung task in my_init+0x44 (vmmap.c:57))', hint: expect.stringMatching(/wait_event_timeout/) });
  });

  it('an oops in exit fails rmmod with the crash', () => {
    const items = checkItems({ ...base, rmmod: { ok: false, status: 137, output: 'Killed' }, problems: [oops('rmmod')], results: [] });
    expect(items.find((i) => i.id === 'unloads')!.reason).toMatch(/^the exit function crashed: BUG: kernel NULL pointer dereference.* in my_init\+0x44 \(vmmap\.c:57\)$/);
  });

  it("a fault in freed module text after rmmod (a kernel thread left running) is named as such, with kthread_stop(), not as a bad pointer in exit", () => {
    // As a clean-clone run of the kthread bomb printed it: the RIP has no symbol, the module being gone.
    const gone = { ...oops('rmmod'), title: 'BUG: unable to handle page fault for address: ffffffffc0238091', location: '0xffffffffc0238091', locationModule: undefined, culprit: undefined };
    const unloads = checkItems({ ...base, rmmod: { ok: true, status: 0, output: '' }, problems: [gone], results: [] }).find((i) => i.id === 'unloads')!;
    expect(unloads).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/^the module's code ran after rmmod had freed it: BUG: unable to handle page fault for address: ffffffffc0238091 at 0xffffffffc0238091/), hint: expect.stringContaining('kthread_stop()') });
    // A crash at a symbol of the driver stays the exit function's own.
    expect(checkItems({ ...base, rmmod: { ok: false, status: 137, output: 'Killed' }, problems: [{ ...gone, location: 'my_exit+0x10/0x40' }], results: [] }).find((i) => i.id === 'unloads')!.reason).toMatch(/^the exit function crashed/);
  });
});

describe('a read-only mapping', () => {
  const ro = (outcome: CheckResult['outcome']): CheckResult => ({ ...shared([]), check: 'readonly', outcome });
  it('passes when the write faulted, and names writable PTEs when it did not', () => {
    const item = (o: CheckResult['outcome']) => checkItems({ ...base, results: [ro(o)] }).find((i) => i.id === 'readonly')!;
    expect(item({ kind: 'ok', pagesOk: 1, pages: 1 }).verdict).toBe('pass');
    expect(item({ kind: 'write-allowed', reached: true })).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/^writable PTEs in a read-only mapping/), hint: expect.stringMatching(/vma->vm_page_prot/) });
  });
});
