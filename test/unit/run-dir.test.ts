/**
 * The run directory: what a run keeps, written and read back by one owner.
 * Documents are validated and tagged when read; a check's directory, captured
 * from a real guest (null-deref-mmap: four passes, each crashing its restored
 * guest), reads back as the very report the check wrote.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSaved } from '../../src/commands/parse.js';
import type { CheckReport } from '../../src/model/report.js';
import { jobConsoleLabel, parseResults, RunDir, splitJobs, validateResults } from '../../src/rundir/run-dir.js';
import { FIXTURES, fixture } from '../helpers.js';

const CHECK_DIR = join(FIXTURES, 'runs', 'check-null-deref-mmap');
const dirs: string[] = [];
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'mmaplab-rundir-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('results.json, read back', () => {
  it('is tagged by what wrote it: a run, a check or a matrix', () => {
    expect(validateResults(JSON.parse(fixture('matrix', 'run-bookworm.json')), 'a').kind).toBe('run');
    expect(validateResults(JSON.parse(fixture('runs', 'check-null-deref-mmap', 'results.json')), 'b').kind).toBe('check');
    expect(validateResults(JSON.parse(fixture('matrix', 'check-old-vm-flags.json')), 'c').kind).toBe('matrix');
  });

  it('refuses what mmaplab did not write, in one line naming the file and what is wrong', () => {
    const run = JSON.parse(fixture('matrix', 'run-bookworm.json')) as Record<string, unknown>;
    expect(() => parseResults('{"hello": 1}', 'x.json')).toThrow(/^x\.json is not an mmaplab result: no tool\/schemaVersion$/);
    expect(() => parseResults('{"tool"', 'x.json')).toThrow(/^x\.json is not JSON$/);
    expect(() => validateResults({ ...run, schemaVersion: 3 }, 'new.json')).toThrow(/^new\.json has schemaVersion 3; this mmaplab reads up to 2$/);
    expect(() => validateResults({ ...run, command: 'grade' }, 'g.json')).toThrow(/neither a run, a check nor a matrix \(command "grade"\)/);
    expect(() => validateResults({ ...run, results: undefined, strategies: {} }, 'r.json')).toThrow(/^r\.json is not an mmaplab result: a run document without strategies, results$/);
    const matrix = JSON.parse(fixture('matrix', 'check-old-vm-flags.json')) as { kernels: Array<Record<string, unknown>> };
    matrix.kernels[1]!.report = run;
    expect(() => validateResults(matrix, 'm.json')).toThrow(/kernel debian:sid is marked check but holds a run report/);
  });
});

describe('records.jsonl', () => {
  it('keeps each job with how it ended and the boot that ran it, appended as jobs end', async () => {
    const dir = await RunDir.create({ outputDir: scratch() });
    await dir.appendRecords({ id: 2, strategy: 'seed' }, [{ t: 'step', step: 'insmod', status: 0, output: '' }], { end: 'stalled', boot: 1, command: 'run', console: true });
    await dir.appendRecords({ id: 1, strategy: 'checked' }, [], { end: 'connection-lost', boot: 1, command: 'run', console: false });
    expect(await dir.readJobs()).toEqual([
      { id: 2, strategy: 'seed', records: [{ t: 'step', step: 'insmod', status: 0, output: '' }], ending: { end: 'stalled', boot: 1, command: 'run', console: true } },
      { id: 1, strategy: 'checked', records: [], ending: { end: 'connection-lost', boot: 1, command: 'run', console: false } },
    ]);
  });

  it('reads records of earlier versions, which kept no ending', () => {
    expect(splitJobs(fixture('consoles', 'seed-earlier.records.jsonl')).map((j) => [j.id, j.strategy, j.ending])).toEqual([[1, 'seed', undefined]]);
  });
});

describe('mmaplab parse of a run whose machine was lost', () => {
  it('gives a job the machine never began no console of its own: its checks did not run, and the earlier job\'s problems stay with it', async () => {
    const d = scratch();
    const dir = await RunDir.create({ outputDir: d });
    writeFileSync(dir.consoleLog, fixture('consoles', 'seed.console.log'));
    const seed = splitJobs(fixture('consoles', 'seed.records.jsonl'))[0]!;
    await dir.appendRecords({ id: 1, strategy: 'seed' }, seed.records, { end: 'done', boot: 1, command: 'run', console: true });
    await dir.appendRecords({ id: 2, strategy: 'checked' }, [], { end: 'connection-lost', boot: 1, command: 'run', console: false });
    const r = await parseSaved(d);
    expect(r.kind).toBe('run');
    if (r.kind !== 'run') return;
    const checked = r.report.results.filter((x) => x.strategy === 'checked');
    expect(new Set(checked.map((x) => JSON.stringify(x.outcome)))).toEqual(new Set([JSON.stringify({ kind: 'not-run', reason: 'the connection to the target was lost before this job' })]));
    expect(r.report.strategies.find((s) => s.strategy === 'checked')!.problems).toEqual([]);
  });
});

describe('a job console', () => {
  it('is its own part of console.log where guests were restored, else the console of its boot', async () => {
    const d = scratch();
    writeFileSync(join(d, 'console.log'), '===== mmaplab: the boot that made the snapshot =====\nboot\n===== mmaplab: job 1 (seed), in a guest restored =====\none\n===== mmaplab: job 2 (checked), in a guest restored =====\ntwo\n');
    const dir = RunDir.at(d);
    expect(await dir.consoleOf({ id: 2, boot: 1 })).toBe('===== mmaplab: job 2 (checked), in a guest restored =====\ntwo\n');
    const booted = scratch();
    writeFileSync(join(booted, 'console.log'), 'first boot\n');
    writeFileSync(join(booted, 'console-boot2.log'), 'second boot\n');
    expect(await RunDir.at(booted).consoleOf({ id: 3, boot: 2 })).toBe('second boot\n');
    expect(await RunDir.at(booted).consoleOf({ id: 1, boot: 1 })).toBe('first boot\n');
  });

  it('finds a job in the part of a guest that served several (its heading names them all)', async () => {
    const d = scratch();
    const label = jobConsoleLabel([{ id: 1, strategy: 'seed' }, { id: 3, strategy: 'no-maywrite' }, { id: 13, strategy: 'x' }], 'in a guest restored from snapshot abc');
    expect(label).toBe('jobs 1 (seed), 3 (no-maywrite), 13 (x), in a guest restored from snapshot abc');
    writeFileSync(join(d, 'console.log'), `===== mmaplab: ${label} =====\nshared\n===== mmaplab: ${jobConsoleLabel([{ id: 2, strategy: 'checked' }], 'in a guest restored')} =====\ntwo\n`);
    const dir = RunDir.at(d);
    for (const id of [1, 3, 13]) expect(await dir.consoleOf({ id, boot: 1 })).toMatch(/^===== mmaplab: jobs 1 .*\nshared\n$/);
    expect(await dir.consoleOf({ id: 2, boot: 2 })).toMatch(/\ntwo\n$/);
    // Job 31 is in neither: not found by the 1 or the 3 of others' numbers.
    expect(await dir.consoleOf({ id: 31, boot: 1 })).toMatch(/shared[\s\S]*two/);
  });
});

describe('mmaplab parse of a check directory', () => {
  it('gives back the report the check wrote, from its records and consoles, wherever the directory now is', async () => {
    const moved = join(scratch(), 'check');
    cpSync(CHECK_DIR, moved, { recursive: true });
    const saved = JSON.parse(fixture('runs', 'check-null-deref-mmap', 'results.json')) as CheckReport;
    const r = await parseSaved(moved);
    expect(r.kind).toBe('check');
    if (r.kind !== 'check') return;
    // Source lines are named relative to where mmaplab runs; the module was built in another checkout.
    const sources = (doc: unknown) => JSON.parse(JSON.stringify(doc).replace(/(?:\.\.\/|\/)[^"() ]*?(test\/fixtures\/drivers\/)/g, '$1')) as unknown;
    expect(sources(r.report)).toEqual(sources(saved));
    // The four passes each crashed at the driver's own line, resolved with the module kept beside the records.
    expect(r.report.items.find((i) => i.id === 'kernel')!.details![0]).toMatch(/at broken_mmap\+0x11 \((?:\.\.\/|\/)?[^()]*test\/fixtures\/drivers\/null-deref-mmap\/null_deref\.c:19\) \(5×, during the shared, private, shared-write, oversize and readonly checks\)$/);
  });

  it('without its results.json (a killed check) still reassesses every pass', async () => {
    const d = join(scratch(), 'killed');
    cpSync(CHECK_DIR, d, { recursive: true });
    rmSync(join(d, 'results.json'));
    const r = await parseSaved(d);
    expect(r.kind).toBe('check');
    if (r.kind !== 'check') return;
    expect(r.report.results.map((x) => x.outcome.kind)).toEqual(['crash', 'crash', 'crash', 'crash', 'crash']);
    expect(r.report.notes[0]).toMatch(/results\.json is missing/);
  });

  it('with a results.json cut short (a run killed while writing it) reads the records and says why', async () => {
    const d = join(scratch(), 'torn');
    cpSync(CHECK_DIR, d, { recursive: true });
    writeFileSync(join(d, 'results.json'), fixture('runs', 'check-null-deref-mmap', 'results.json').slice(0, 500));
    const r = await parseSaved(d);
    expect(r.kind).toBe('check');
    if (r.kind !== 'check') return;
    expect(r.report.results.map((x) => x.outcome.kind)).toEqual(['crash', 'crash', 'crash', 'crash', 'crash']);
    expect(r.report.notes[0]).toMatch(/^results\.json was passed over \(.*results\.json is not JSON\): what the kernel and machine were is unknown$/);
  });

  it('says in one line when a directory is not one mmaplab wrote', async () => {
    await expect(parseSaved(scratch())).rejects.toThrow(/is not a directory mmaplab wrote: it has no console\.log, records\.jsonl or results\.json$/);
  });
});

describe('a module whose kernel thread outlives rmmod', () => {
  it('is named from the real run where rmmod succeeded and a thread then ran the freed code: stop it in exit, not a bad pointer', async () => {
    const r = await parseSaved(join(FIXTURES, 'runs', 'check-kthread-bomb-freed-text'));
    expect(r.kind).toBe('check');
    if (r.kind !== 'check') return;
    expect(r.report.items.find((i) => i.id === 'unloads')).toMatchObject({
      verdict: 'fail',
      reason: expect.stringMatching(/^the module's code ran after rmmod had freed it: BUG: unable to handle page fault for address: ffffffffc0238091 at 0xffffffffc0238091/),
      hint: expect.stringContaining('kthread_stop()'),
    });
  });
});

describe('a job whose script could not start a command', () => {
  it("is said from the console's own words (a real check of the kthread bomb in which rmmod still ran): the guest ran out of processes", async () => {
    const r = await parseSaved(join(FIXTURES, 'runs', 'check-kthread-bomb-fork'));
    expect(r.kind).toBe('check');
    if (r.kind !== 'check') return;
    expect(r.report.items.find((i) => i.id === 'unloads')!.verdict).toBe('pass');
    expect(r.report.notes).toEqual([
      "the guest ran out of processes during the job: its script could not start a command (can't fork: Resource temporarily unavailable), so what it would have reported then is missing; something the driver started (kernel threads, say) used them up",
    ]);
  });
});
