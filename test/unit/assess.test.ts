import { describe, expect, it } from 'vitest';
import { assessJob, type AssessInput } from '../../src/diagnose/assess.js';
import { parseRecordLine } from '../../src/guest/protocol.js';
import { runStatus } from '../../src/report/model.js';
import { expectGolden, fixture } from '../helpers.js';

function input(name: string, strategy: string, end: AssessInput['end']): AssessInput {
  return {
    strategy,
    modes: ['private', 'shared'],
    pages: 16,
    jobId: 1,
    end,
    records: fixture('consoles', `${name}.records.jsonl`).split('\n').filter(Boolean).map(parseRecordLine),
    console: fixture('consoles', `${name}.console.log`),
  };
}

describe('assessing real guest runs', () => {
  it('seed driver: SIGBUS at page 0 under MAP_PRIVATE, 16 good pages under MAP_SHARED, both as expected', async () => {
    const a = assessJob(input('seed', 'seed', 'done'));
    const [priv, shared] = a.results;
    expect(a.insmod?.ok).toBe(true);
    expect(a.rmmod?.ok).toBe(true);
    expect(priv!.outcome).toMatchObject({ kind: 'sigbus', page: 0, code: 'BUS_ADRERR' });
    expect(priv!.exitStatus).toBe(135);
    expect(priv!.exitDescription).toMatch(/^Bus error/);
    expect(priv!.matchesExpected).toBe(true);
    expect(priv!.explanation?.summary).toMatch(/copy-on-write.*-EINVAL/);
    expect(priv!.kernelLog.map((l) => l.text)).toContain('mmaplab: mmap seed: 16 pages at pgoff 0, MAP_PRIVATE, copy-on-write');
    expect(shared!.outcome).toEqual({ kind: 'ok', pagesOk: 16, pages: 16 });
    expect(shared!.pageReports.every((p) => p.word === '0xaabbccdd')).toBe(true);
    expect(shared!.seedPrintf).toBe('[ffffffdd]');
    expect(shared!.explanation?.fixes[0]).toMatch(/unsigned/);
    expect(a.kernelLog.problems).toEqual([]);
    expect(runStatus(a.results, a.kernelLog.problems)).toEqual({ status: 'pass', exitCode: 0 });
    await expectGolden('assess-seed', a);
  });

  it('the same records fail when the lab expected something else', () => {
    const a = assessJob(input('seed', 'custom', 'done'));
    expect(a.results[0]!.matchesExpected).toBe(false);
    expect(runStatus(a.results, a.kernelLog.problems).exitCode).toBe(1);
  });

  it('NULL dereference in mmap: a crash in the private test, the shared test not run', async () => {
    const a = assessJob(input('null-deref-mmap', 'custom', 'stalled'));
    expect(a.results[0]!.outcome).toMatchObject({ kind: 'crash', title: expect.stringMatching(/NULL pointer dereference/) });
    expect(a.results[1]!.outcome).toMatchObject({ kind: 'not-run' });
    expect(a.kernelLog.problems[0]!.location).toMatch(/^broken_mmap/);
    expect(a.notes.join(' ')).toMatch(/crashed during the private test/);
    await expectGolden('assess-null-deref-mmap', a);
  });

  it('WARNING then -EINVAL: mmap() fails in both modes and both warnings are problems', async () => {
    const a = assessJob(input('warn-mmap', 'custom', 'done'));
    expect(a.results.map((r) => r.outcome.kind)).toEqual(['mmap-failed', 'mmap-failed']);
    expect(a.results[0]!.kernelLog.some((l) => /^WARNING: /.test(l.text))).toBe(true);
    // The register dump is part of the problem, not the mode's own log.
    expect(a.results[0]!.kernelLog.some((l) => /^RAX: /.test(l.text))).toBe(false);
    expect(a.kernelLog.problems.map((p) => p.kind)).toEqual(['warning', 'warning']);
    expect(runStatus(a.results, a.kernelLog.problems).exitCode).toBe(1);
    await expectGolden('assess-warn-mmap', a);
  });

  it('a job that timed out in a test is a hang in that test', () => {
    const records = input('seed', 'seed', 'timeout').records.filter((r) => !(r.t === 'exit' && r.mode === 'private') && r.t !== 'kmsg' && r.t !== 'job-done');
    const console = 'mmaplab-agent: started\n[    2.0] mmaplab: job 1 begin\n[    2.1] mmaplab: step insmod\n[    2.2] mmaplab: test private begin\n';
    const a = assessJob({ ...input('seed', 'seed', 'timeout'), records: records.filter((r) => r.t !== 'start' || r.mode === 'private').slice(0, 4), console });
    expect(a.results[0]!.outcome).toEqual({ kind: 'hang', step: 'the private test' });
    expect(a.results[1]!.outcome.kind).toBe('not-run');
  });
});
