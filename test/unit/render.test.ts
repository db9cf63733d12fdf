import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { renderRunJson } from '../../src/report/json.js';
import { runStatus } from '../../src/model/exit.js';
import { outcomeCode as cell } from '../../src/model/outcome.js';
import { verdict } from '../../src/diagnose/words.js';
import { renderRunText } from '../../src/report/text.js';
import { fixtureReport } from './fixture-runs.js';
import { parseValidResults } from '../support/schema.js';

const plain = new Chalk({ level: 0 });

describe('terminal report, one strategy', () => {
  it("details each check: verdict, expectation, exit status, traced calls, the driver's log; then the reasons and fixes", () => {
    const text = renderRunText(fixtureReport('seed'), plain);
    expect(text).toMatch(/^mmaplab run: the seed driver on debian:bookworm$/m);
    expect(text).toMatch(/^private +SIGBUS at page 0 \(BUS_ADRERR, addr 0x[0-9a-f]+\) +as expected$/m);
    expect(text).toMatch(/^shared +16\/16 pages 0xaabbccdd +as expected$/m);
    expect(text).toMatch(/^shared-write +the write reached the driver \(read\(\) sees it\) +as expected$/m);
    expect(text).toMatch(/^oversize +mmap\(\) failed: EIO \(Input\/output error\) +as expected$/m);
    expect(text).toContain('exit: Bus error (exit status 135, SIGBUS)');
    expect(text).toMatch(/traced: remap_pfn_range\(\) returned -EINVAL 16× \(from seed_mmap\+/);
    expect(text).toMatch(/MAP_PRIVATE made the mapping copy-on-write/);
    expect(text).toMatch(/fix: map with MAP_SHARED/);
    expect(text).toContain('[ffffffdd]');
    expect(text).toMatch(/^PASS: all 9 outcomes are what the lab expects$/m);
  });

  it('has no escape codes without colour, and colours with it', () => {
    expect(renderRunText(fixtureReport('seed'), plain)).not.toMatch(/\x1b\[/);
    expect(renderRunText(fixtureReport('seed'), new Chalk({ level: 1 }))).toMatch(/\x1b\[/);
  });
});

describe('terminal report, the grid', () => {
  const text = renderRunText(fixtureReport('grid'), plain);

  it('shows strategies x checks with short verdicts', () => {
    expect(text).toMatch(/^mmaplab run: 8 strategies x 9 checks on debian:bookworm$/m);
    expect(text).toMatch(/^strategy +private +shared +per-page +sh-write +isolation +mprotect +offset +oversize +read-only$/m);
    expect(text).toMatch(/^seed +SIGBUS@0 +ok +wrong@1 +ok +SIGBUS@0 +SIGBUS@0 +wrong@0 +EIO +ok$/m);
    expect(text).toMatch(/^no-maywrite +ok +ok +wrong@1 +ok +EACCES +mp:EACCES +wrong@0 +EIO +ok$/m);
    expect(text).toMatch(/^page-shared +EINVAL +ok +wrong@1 +ok +EINVAL +EINVAL +wrong@0 +EIO +RO-WRITABLE$/m);
    expect(text).toMatch(/^insert-page +ok +ok +ok +ok +ok +ok +ok +ENXIO +ok$/m);
  });

  it('explains each distinct failure once, naming the cells', () => {
    expect(text.match(/copy-on-write, so each per-page remap_pfn_range\(\) returned -EINVAL/g)).toHaveLength(1);
    expect(text).toMatch(/\(private, private-isolation, mprotect in seed\)/);
    expect(text).toMatch(/ignores vm_pgoff/);
    expect(text).toMatch(/\(shared in seed, checked, no-maywrite, remap-vmalloc-range, insert-page, fault, contiguous, page-shared\)/);
    expect(text).toMatch(/^PASS: all 72 outcomes are what the lab expects$/m);
  });

  it('marks a cell that differs from the expectation and fails the run', () => {
    const r = fixtureReport('grid');
    const c = r.results.find((x) => x.strategy === 'fault' && x.check === 'offset')!;
    c.matchesExpected = false;
    Object.assign(r, runStatus(r.results, []));
    const t = renderRunText(r, plain);
    expect(t).toMatch(/^fault +ok +ok +ok +ok +ok +ok +ok! +EINVAL +ok$/m);
    expect(t).toMatch(/^fault \/ offset +13\/13 pages 0xaabbccdd +UNEXPECTED \(expected every page as written\)$/m);
    expect(t).toMatch(/^FAIL: 1 of 72 outcomes differ/m);
  });

  it('has a verdict and a cell for every outcome kind', () => {
    expect(verdict({ kind: 'mmap-failed', errno: 'EINVAL', message: 'Invalid argument', page: -1 })).toBe('mmap() failed: EINVAL (Invalid argument)');
    expect(verdict({ kind: 'hang', step: 'the private check', evidence: 'watchdog: BUG: soft lockup' })).toBe('hang in the private check (watchdog: BUG: soft lockup)');
    expect(cell({ kind: 'mprotect-denied', errno: 'EACCES', message: '' })).toBe('mp:EACCES');
    expect(cell({ kind: 'crash', title: 'x' })).toBe('CRASH');
  });
});

describe('JSON report', () => {
  it('carries the whole grid: per cell strategy, check, mode, outcome.kind, pagesOk, expected, matchesExpected and the traced calls', () => {
    const doc = parseValidResults<ReturnType<typeof fixtureReport>>(renderRunJson(fixtureReport('grid')));
    expect(doc.schemaVersion).toBe(2);
    expect(doc.exitCode).toBe(0);
    expect(doc.results).toHaveLength(72);
    const seedPrivate = doc.results.find((r) => r.strategy === 'seed' && r.check === 'private')!;
    expect(seedPrivate).toMatchObject({ mode: 'private', outcome: { kind: 'sigbus' }, pagesOk: 0, expected: { kind: 'sigbus', page: 0 }, matchesExpected: true });
    expect(seedPrivate.traced[0]).toMatchObject({ fn: 'remap_pfn_range', calls: 16, returns: { '-22': 16 } });
    expect(doc.strategies.map((s) => s.strategy)).toEqual(['seed', 'checked', 'no-maywrite', 'remap-vmalloc-range', 'insert-page', 'fault', 'contiguous', 'page-shared']);
  });
});

describe('terminal report, untraced', () => {
  const untraced = (machine: ReturnType<typeof fixtureReport>['machine']) => {
    const r = fixtureReport('seed');
    return renderRunText({ ...r, machine, strategies: r.strategies.map((s) => ({ ...s, tracing: false })) }, plain);
  };
  const target = { kind: 'ssh' as const, target: 'ssh://pi@board:22', hostKey: 'SHA256:x', os: 'Debian GNU/Linux 13', bootId: 'b', leftBehind: [] };

  it('says why no call was traced: a kernel without kprobe events, or a target mmaplab cannot trace yet', () => {
    expect(untraced(fixtureReport('seed').machine)).toMatch(/^ {2}tracing {2}unavailable in this kernel \(no kprobe events\): no traced calls$/m);
    expect(untraced({ ...target, arch: 'riscv64' })).toMatch(/^ {2}tracing {2}off: mmaplab cannot trace riscv64 yet \(see the note\): no traced calls$/m);
    expect(untraced({ ...target, arch: 'x86_64' })).toMatch(/unavailable in this kernel \(no kprobe events\)/);
  });
});
