/** check --watch's news: which verdicts turned since the last check, and which saves are a driver's. */
import { describe, expect, it } from 'vitest';
import { cellChanges, knownVerdicts, verdictChanges } from '../../src/diagnose/changes.js';
import type { CheckResult } from '../../src/model/outcome.js';
import type { RunReport } from '../../src/model/report.js';
import type { CheckItem, CheckReport, Verdict } from '../../src/model/report.js';
import { ignoredPath } from '../../src/util/file-watch.js';

const item = (id: string, verdict: Verdict, reason = `${id} ${verdict}`): CheckItem => ({ id, title: `the ${id} check`, verdict, reason });
const report = (items: CheckItem[]) => ({ items }) as CheckReport;
const built = (v: Record<string, Verdict>) => report([item('builds', 'pass'), ...Object.entries(v).map(([id, x]) => item(id, x))]);
const notBuilt = report([item('builds', 'fail', 'does not compile'), item('loads', 'skip', 'the driver did not build'), item('device', 'skip', 'the driver did not build')]);

describe('what changed since the last check', () => {
  it('a first check announces its failures only', () => {
    expect(verdictChanges(undefined, built({ loads: 'pass', shared: 'fail' })).map((c) => [c.id, c.from, c.to])).toEqual([['shared', undefined, 'fail']]);
  });

  it('a check that turned, either way, and nothing that stayed', () => {
    const one = built({ loads: 'pass', shared: 'pass', oversize: 'fail' });
    const two = built({ loads: 'pass', shared: 'fail', oversize: 'pass' });
    expect(verdictChanges(knownVerdicts([], one), two).map((c) => [c.id, c.from, c.to])).toEqual([['shared', 'pass', 'fail'], ['oversize', 'fail', 'pass']]);
    expect(verdictChanges(knownVerdicts([], two), two)).toEqual([]);
  });

  it('a build that fails turns the build only; the build that works again announces what differs from before it', () => {
    const before = built({ loads: 'pass', device: 'pass', shared: 'fail' });
    let known = knownVerdicts([], before);
    expect(verdictChanges(known, notBuilt).map((c) => [c.id, c.to])).toEqual([['builds', 'fail']]);
    known = knownVerdicts(known, notBuilt);
    const after = built({ loads: 'pass', device: 'pass', shared: 'pass' });
    expect(verdictChanges(known, after).map((c) => [c.id, c.from, c.to])).toEqual([['builds', 'fail', 'pass'], ['shared', 'fail', 'pass']]);
  });
});

describe("the cells of run's grid that changed", () => {
  const cell = (check: string, outcome: CheckResult['outcome'], matchesExpected: boolean) => ({ strategy: 'custom', check, outcome, matchesExpected }) as CheckResult;
  const run = (results: CheckResult[]) => ({ results }) as RunReport;
  it("a first run announces what the lab did not expect; later ones the cells whose outcome changed", () => {
    const one = run([cell('shared', { kind: 'ok', pagesOk: 16, pages: 16 }, true), cell('private', { kind: 'sigbus', page: 0, addr: '0x0', code: 'BUS_ADRERR', pagesOk: 0 }, false)]);
    expect(cellChanges(undefined, one).map((c) => [c.check, c.from, c.to])).toEqual([['private', undefined, 'SIGBUS@0']]);
    const two = run([cell('shared', { kind: 'ok', pagesOk: 16, pages: 16 }, true), cell('private', { kind: 'mmap-failed', errno: 'EINVAL', message: '', page: 0 }, true)]);
    expect(cellChanges(one, two).map((c) => [c.check, c.from, c.to, c.expected])).toEqual([['private', 'SIGBUS@0', 'EINVAL', true]]);
    expect(cellChanges(two, two)).toEqual([]);
  });
});

describe('which saves are the driver\'s', () => {
  it('ignores editors\' files, build outputs and version control, and nothing else', () => {
    const root = '/s';
    for (const p of ['/s/.drv.c.swp', '/s/drv.c~', '/s/#drv.c#', '/s/.#drv.c', '/s/4913', '/s/drv.o', '/s/drv.ko', '/s/.drv.o.cmd', '/s/.git/index', '/s/x/.goutputstream-ABC', '/s/Module.symvers'])
      expect({ p, ignored: ignoredPath(root, p) }).toEqual({ p, ignored: true });
    for (const p of ['/s/drv.c', '/s/drv.h', '/s/Kbuild', '/s/Makefile', '/s/test/mmap-test.c', '/s'])
      expect({ p, ignored: ignoredPath(root, p) }).toEqual({ p, ignored: false });
  });
});
