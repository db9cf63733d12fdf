import { describe, expect, it } from 'vitest';
import { Chalk } from 'chalk';
import { assessJob } from '../../src/diagnose/assess.js';
import { parseRecordLine } from '../../src/guest/protocol.js';
import { renderRunJson } from '../../src/report/json.js';
import { runStatus, SCHEMA_VERSION, type RunReport } from '../../src/report/model.js';
import { renderRunText, verdict } from '../../src/report/text.js';
import { fixture } from '../helpers.js';

function seedReport(): RunReport {
  const a = assessJob({
    strategy: 'seed', modes: ['private', 'shared'], pages: 16, jobId: 1, end: 'done',
    records: fixture('consoles', 'seed.records.jsonl').split('\n').filter(Boolean).map(parseRecordLine),
    console: fixture('consoles', 'seed.console.log'),
  });
  return {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'mmaplab', version: '0.0.0-test' },
    command: 'run',
    ...runStatus(a.results, a.kernelLog.problems),
    kernel: { spec: 'debian:bookworm', release: '6.1.0-56-cloud-amd64', packageVersion: '6.1.192-2', flavour: 'cloud-amd64' },
    machine: { accel: 'tcg', accelReason: 'TCG: no /dev/kvm', qemu: '7.2.22', bootAttempts: 1 },
    module: { name: 'mmaplab', strategy: 'seed', compiler: 'gcc-12 12.2.0', buildCached: true, buildWarnings: [], insmod: a.insmod, rmmod: a.rmmod },
    results: a.results,
    kernelLog: a.kernelLog,
    notes: a.notes,
    consoleTail: a.consoleTail,
    artifacts: { dir: '/runs/x', consoleLog: '/runs/x/console.log', resultsJson: '/runs/x/results.json', module: '/runs/x/mmaplab.ko', testProgram: '/runs/x/mmap-test' },
    timings: { totalMs: 3000, kernelMs: 1, buildMs: 1, bootMs: 2200, guestReadyMs: 1700, jobMs: 600 },
  };
}

describe('terminal report', () => {
  const plain = new Chalk({ level: 0 });

  it('states each mode\'s verdict, the expectation, the reason and the fixes', () => {
    const text = renderRunText(seedReport(), plain);
    expect(text).toMatch(/^MAP_PRIVATE +SIGBUS at page 0 \(BUS_ADRERR, addr 0x[0-9a-f]+\) +as expected$/m);
    expect(text).toMatch(/^MAP_SHARED +16\/16 pages 0xaabbccdd +as expected$/m);
    expect(text).toContain('exit: Bus error (exit status 135, SIGBUS)');
    expect(text).toMatch(/why: MAP_PRIVATE made the mapping copy-on-write/);
    expect(text).toMatch(/map with MAP_SHARED/);
    expect(text).toContain('[ffffffdd]');
    expect(text).toMatch(/^PASS: /m);
    expect(text).toContain('/runs/x');
  });

  it('has no escape codes without colour, and colours with it', () => {
    expect(renderRunText(seedReport(), plain)).not.toMatch(/\x1b\[/);
    expect(renderRunText(seedReport(), new Chalk({ level: 1 }))).toMatch(/\x1b\[/);
  });

  it('marks an outcome that differs from the expectation', () => {
    const r = seedReport();
    r.results[0]!.matchesExpected = false;
    Object.assign(r, runStatus(r.results, []));
    const text = renderRunText(r, plain);
    expect(text).toMatch(/UNEXPECTED \(expected SIGBUS at page 0\)/);
    expect(text).toMatch(/^FAIL: 1 outcome\(s\) differ/m);
  });

  it('has a verdict for every outcome kind', () => {
    expect(verdict({ kind: 'mmap-failed', errno: 'EINVAL', message: 'Invalid argument' })).toBe('mmap() failed: EINVAL (Invalid argument)');
    expect(verdict({ kind: 'hang', step: 'the private test', evidence: 'watchdog: BUG: soft lockup' })).toBe('hang in the private test (watchdog: BUG: soft lockup)');
    expect(verdict({ kind: 'not-run', reason: 'x' })).toBe('not run: x');
  });
});

describe('JSON report', () => {
  it('is one document with a schema version and, per mode, strategy, mode, outcome.kind, pagesOk, expected, matchesExpected', () => {
    const doc = JSON.parse(renderRunJson(seedReport()));
    expect(doc.schemaVersion).toBe(1);
    expect(doc.exitCode).toBe(0);
    expect(doc.results.map((r: { strategy: string; mode: string; outcome: { kind: string }; pagesOk: number; expected: unknown; matchesExpected: boolean }) => [r.strategy, r.mode, r.outcome.kind, r.pagesOk, r.expected, r.matchesExpected])).toEqual([
      ['seed', 'private', 'sigbus', 0, { kind: 'sigbus', page: 0 }, true],
      ['seed', 'shared', 'ok', 16, { kind: 'ok' }, true],
    ]);
  });
});
