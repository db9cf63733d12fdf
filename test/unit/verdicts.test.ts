import { describe, expect, it } from 'vitest';
import { checkItems, leakedAreas, taintLetters } from '../../src/diagnose/verdicts.js';
import { checksStatus } from '../../src/model/exit.js';
import type { CheckResult } from '../../src/model/outcome.js';

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
  pattern: '0xaabbccdd',
};

describe('check verdicts', () => {
  it('fails a driver that maps the same page everywhere, naming the pages', () => {
    const items = checkItems({ ...base, results: [shared(['0x100', '0x101', '0x100'])] });
    expect(items.find((i) => i.id === 'distinct-pages')).toMatchObject({ verdict: 'fail', reason: 'pages 0 and 2 are the same physical page (frame 0x100)' });
    expect(checksStatus(items).exitCode).toBe(1);
  });

  it('passes distinct pages, and skips the check when frames are unknown', () => {
    expect(checkItems({ ...base, results: [shared(['0x100', '0x101'])] }).find((i) => i.id === 'distinct-pages')!.verdict).toBe('pass');
    expect(checkItems({ ...base, results: [shared([null, null])] }).find((i) => i.id === 'distinct-pages')!.verdict).toBe('skip');
  });

  it('without page frames (a PFN mapping), judges by the markers written into each page', () => {
    const aliased = { ...shared([null, null, null]), aliases: { tested: true, pairs: [[0, 2] as [number, number], [1, 2] as [number, number]] } };
    expect(checkItems({ ...base, results: [aliased] }).find((i) => i.id === 'distinct-pages')).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/^pages 0 and 2 are the same physical page/) });
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
      pattern: '0xaabbccdd',
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
      pattern: '0xaabbccdd',
    });
    const v = Object.fromEntries(items.map((i) => [i.id, `${i.verdict}: ${i.reason}`]));
    expect(v.device).toBe('fail: no new character device after insmod');
    expect([v.private, v.write, v.oversize]).toEqual(['skip: the device did not open', 'skip: the device did not open', 'skip: the device did not open']);
  });
});
