import { describe, expect, it } from 'vitest';
import { assessJob } from '../../src/diagnose/assess.js';
import { EXPECTATIONS, STRATEGIES } from '../../src/diagnose/expectations.js';
import { CHECK_NAMES } from '../../src/model/checks.js';
import { runStatus } from '../../src/model/exit.js';
import { parseRecordLine } from '../../src/guest/protocol.js';
import { expectGolden, fixture } from '../helpers.js';
import { assessFixture, fixtureJobs } from './fixture-runs.js';

describe('assessing real guest runs', () => {
  it('seed driver: SIGBUS at page 0 under MAP_PRIVATE with 16 traced -EINVALs, 16 good pages under MAP_SHARED', async () => {
    const [a] = assessFixture('seed');
    const cell = (check: string) => a!.results.find((r) => r.check === check)!;
    expect(a!.strategy).toMatchObject({ strategy: 'seed', insmod: { ok: true }, rmmod: { ok: true }, tracing: true, problems: [] });
    expect(cell('private').outcome).toMatchObject({ kind: 'sigbus', page: 0, code: 'BUS_ADRERR' });
    expect(cell('private').exitStatus).toBe(135);
    expect(cell('private').exitDescription).toMatch(/^Bus error/);
    expect(cell('private').traced).toEqual([{ fn: 'remap_pfn_range', caller: expect.stringMatching(/^seed_mmap\+/), calls: 16, returns: { '-22': 16 }, sizes: [4096] }]);
    expect(cell('private').explanation?.id).toBe('cow-remap-ignored');
    expect(cell('private').explanation?.why.join(' ')).toMatch(/all 16 calls failed \(traced: remap_pfn_range\(\) returned -EINVAL 16×, each for 4096 bytes/);
    expect(cell('private').kernelLog.map((l) => l.text)).toContain('mmaplab: mmap seed: 16 pages at pgoff 0, MAP_PRIVATE, copy-on-write');
    expect(cell('shared').outcome).toEqual({ kind: 'ok', pagesOk: 16, pages: 16, pattern: '0xaabbccdd' });
    expect(cell('shared').traced[0]!.returns).toEqual({ '0': 16 });
    expect(cell('shared').pageReports.every((p) => p.word === '0xaabbccdd' && p.index === p.expectIndex)).toBe(true);
    expect(cell('shared').seedPrintf).toBe('[ffffffdd]');
    expect(cell('shared').explanation?.id).toBe('sign-extension');
    expect(cell('offset').outcome).toMatchObject({ kind: 'wrong-data', firstBad: { page: 0, index: 0, expectIndex: 3 } });
    expect(cell('offset').explanation?.id).toBe('ignores-pgoff');
    expect(cell('oversize').outcome).toMatchObject({ kind: 'mmap-failed', errno: 'EIO' });
    expect(a!.results.every((r) => r.matchesExpected)).toBe(true);
    await expectGolden('assess-seed', a);
  });

  it('the whole real grid on bookworm equals the expectations table', () => {
    const grid = assessFixture('grid');
    expect(grid.map((a) => a.strategy.strategy)).toEqual(STRATEGIES);
    for (const a of grid) {
      for (const r of a.results) {
        expect({ cell: `${r.strategy}/${r.check}`, kind: r.outcome.kind }).toEqual({ cell: `${r.strategy}/${r.check}`, kind: EXPECTATIONS[r.strategy]![r.check].kind });
        expect(r.matchesExpected, `${r.strategy}/${r.check}`).toBe(true);
      }
    }
    const results = grid.flatMap((a) => a.results);
    expect(results).toHaveLength(STRATEGIES.length * CHECK_NAMES.length);
    expect(runStatus(results, grid.flatMap((a) => a.strategy.problems))).toEqual({ status: 'pass', exitCode: 0 });
  });

  it('the same records fail when the lab expected something else', () => {
    const [j] = fixtureJobs('seed');
    const a = assessJob({ strategy: 'custom', checks: CHECK_NAMES, jobId: 1, end: 'done', records: j!.records, console: '' });
    expect(a.results.find((r) => r.check === 'private')!.matchesExpected).toBe(false);
    expect(runStatus(a.results, []).exitCode).toBe(1);
  });

  it('NULL dereference in mmap: a crash in the private check, the rest not run', async () => {
    const [a] = assessFixture('null-deref-mmap', 'stalled');
    expect(a!.results[0]!.outcome).toMatchObject({ kind: 'crash', title: expect.stringMatching(/NULL pointer dereference/) });
    expect(a!.results.slice(1).every((r) => r.outcome.kind === 'not-run')).toBe(true);
    expect(a!.strategy.problems[0]!.location).toMatch(/^broken_mmap/);
    expect(a!.notes.join(' ')).toMatch(/crashed during the private check/);
    await expectGolden('assess-null-deref-mmap', a);
  });

  it('an oops in a check whose process the test program then killed at its own deadline (124) is that crash, not a hang', () => {
    // What a slower host showed: the console never fell silent long enough to call the guest stalled.
    const [j] = fixtureJobs('null-deref-mmap');
    const records = [...j!.records, parseRecordLine('{"t":"exit","check":"private","status":124}'), parseRecordLine('{"t":"start","check":"shared","device":"/dev/mmaplab0","pages":16,"pageSize":4096}')];
    const console = `${fixture('consoles', 'null-deref-mmap.console.log').trimEnd()}\n[   24.0] mmaplab: check private end status 124\n[   24.1] mmaplab: check shared begin\n`;
    const a = assessJob({ strategy: 'custom', checks: CHECK_NAMES, jobId: 1, end: 'timeout', records, console });
    expect(a.results[0]!.outcome).toMatchObject({ kind: 'crash', title: expect.stringMatching(/NULL pointer dereference/) });
    expect(a.results[0]!.exitStatus).toBe(124);
  });

  it("an oops in the window of a check that finished by itself (mmap() refused cleanly) is not that check's crash", () => {
    // A driver can print an oops-looking line itself; the check's process ended on its own, so it saw what it reports.
    const [j] = fixtureJobs('null-deref-mmap');
    const records = [...j!.records, parseRecordLine('{"t":"mmap","ok":false,"page":-1,"errno":22,"err":"EINVAL","msg":"Invalid argument"}'), parseRecordLine('{"t":"exit","check":"private","status":2}')];
    const console = `${fixture('consoles', 'null-deref-mmap.console.log').trimEnd()}\n[    3.0] mmaplab: check private end status 2\n`;
    const a = assessJob({ strategy: 'custom', checks: ['private'], jobId: 1, end: 'timeout', records, console });
    expect(a.results[0]!.outcome).toMatchObject({ kind: 'mmap-failed', errno: 'EINVAL' });
    expect(a.strategy.problems[0]!.kind).toBe('oops');
  });

  it('WARNING then -EINVAL: mmap() fails in every check and every warning is a problem', async () => {
    const [a] = assessFixture('warn-mmap');
    expect(new Set(a!.results.map((r) => r.outcome.kind))).toEqual(new Set(['mmap-failed']));
    const priv = a!.results.find((r) => r.check === 'private')!;
    expect(priv.kernelLog.some((l) => /^WARNING: /.test(l.text))).toBe(true);
    // The register dump is part of the problem, not the check's own log.
    expect(priv.kernelLog.some((l) => /^RAX: /.test(l.text))).toBe(false);
    expect(a!.strategy.problems.every((p) => p.kind === 'warning')).toBe(true);
    expect(a!.strategy.problems.length).toBeGreaterThanOrEqual(7);
    expect(runStatus(a!.results, a!.strategy.problems).exitCode).toBe(1);
    await expectGolden('assess-warn-mmap', a);
  });

  it('a job that timed out in a check is a hang in that check', () => {
    const [j] = fixtureJobs('seed');
    const upToShared = j!.records.slice(0, j!.records.findIndex((r) => r.t === 'start' && r.check === 'shared') + 3);
    const console = 'mmaplab-agent: started\n[    2.0] mmaplab: job 1 begin\n[    2.1] mmaplab: step insmod\n[    2.2] mmaplab: check private begin\n[    2.3] mmaplab: check private end status 135\n[    2.4] mmaplab: check shared begin\n';
    const a = assessJob({ strategy: 'seed', checks: CHECK_NAMES, jobId: 1, end: 'timeout', records: upToShared, console });
    expect(a.results[0]!.outcome.kind).toBe('sigbus');
    expect(a.results[1]!.outcome).toEqual({ kind: 'hang', step: 'the shared check' });
    expect(a.results[2]!.outcome.kind).toBe('not-run');
  });
});

describe('a job that never logged its start', () => {
  it('is charged with nothing of the jobs before it in the same log (an SSH target lost as the job began)', () => {
    const log = [
      '[   10.0] mmaplab: job 1 begin',
      '[   10.1] mmaplab: check oversize begin',
      '[   10.2] mmaplab: mmap seed returned -5',
      '[   10.3] mmaplab: check oversize end status 2',
      '[   10.4] WARNING: CPU: 0 PID: 1 at mm/vmalloc.c:2758 vfree+0x1/0x2',
      '[   10.5] ---[ end trace 0000000000000000 ]---',
      '[   10.6] mmaplab: job 1 end',
    ].join('\n');
    const a = assessJob({ strategy: 'checked', checks: ['oversize'], jobId: 2, end: 'connection-lost', records: [], console: log });
    expect(a.strategy.problems).toEqual([]);
    expect(a.results[0]!.kernelLog).toEqual([]);
    expect(a.results[0]!.outcome).toEqual({ kind: 'not-run', reason: 'the connection to the target was lost before this job' });
  });
});
