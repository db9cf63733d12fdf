/**
 * The matrix model, merge and the CI renderers (JUnit, Markdown, text), on
 * results captured from real guests (test/capture-fixtures.sh): a check of a
 * pre-6.3 driver on 5.10 and 7.2, and the seed and remap_vmalloc_range
 * strategies run on 6.1 and 7.2 as separate jobs.
 */
import { Chalk } from 'chalk';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { mergeDocuments } from '../../src/matrix/merge.js';
import { assembleMatrix, differences, matrixRows } from '../../src/matrix/model.js';
import { matrixStatus } from '../../src/model/exit.js';
import { type KernelEntry, type MatrixReport } from '../../src/model/report.js';
import type { RunReport } from '../../src/model/report.js';
import { renderJunit } from '../../src/report/junit.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import { renderMatrixText } from '../../src/report/matrix-text.js';
import { matrixAnnotations } from '../../src/report/annotations.js';
import { fixture } from '../helpers.js';
import { expectValidResults } from '../support/schema.js';

const load = (name: string) => JSON.parse(fixture('matrix', name)) as unknown;
const out = { dir: '/tmp/merged', resultsJson: '' };
const plain = new Chalk({ level: 0 });

function runs(): MatrixReport {
  return mergeDocuments([{ path: 'run-bookworm.json', doc: load('run-bookworm.json') }, { path: 'run-sid.json', doc: load('run-sid.json') }], out);
}

describe('merge', () => {
  it('puts single-kernel results side by side, in the order given', () => {
    const m = expectValidResults<MatrixReport>(JSON.parse(JSON.stringify(runs())));
    expect(m.kind).toBe('matrix');
    expect(m.command).toBe('run');
    expect(m.kernels.map((k) => k.spec)).toEqual(['debian:bookworm', 'debian:sid']);
    expect(m.kernels.map((k) => (k.kind === 'run' ? k.report.kernel.release : ''))).toEqual([expect.stringMatching(/^6\.1\./), expect.stringMatching(/^7\.2\./)]);
    expect(m.status).toBe('pass');
    expect(m.exitCode).toBe(0);
    expect(m.differences).toEqual([]);
  });

  it('merges a matrix with more results, and refuses a kernel twice or run mixed with check', () => {
    const m = runs();
    const check = load('check-old-vm-flags.json');
    expect(() => mergeDocuments([{ path: 'a', doc: m }, { path: 'b', doc: load('run-sid.json') }], out)).toThrowError(/kernel debian:sid is in both a and b/);
    expect(() => mergeDocuments([{ path: 'a', doc: m }, { path: 'c', doc: check }], out)).toThrowError(/holds 'check' results/);
    expect(() => mergeDocuments([{ path: 'x.json', doc: { hello: 1 } }], out)).toThrowError(/x\.json is not an mmaplab result/);
    const again = mergeDocuments([{ path: 'c', doc: check }], out);
    expect(again.kernels.map((k) => k.spec)).toEqual(['debian:bullseye', 'debian:sid']);
  });

  it('names the entries <spec>/<arch> when separate jobs ran one kernel on several architectures, and still refuses one twice', () => {
    const on = (arch: string) => {
      const doc = structuredClone(load('run-bookworm.json')) as { kernel: { arch?: string } };
      doc.kernel.arch = arch;
      return doc;
    };
    const m = mergeDocuments([{ path: 'amd64.json', doc: on('amd64') }, { path: 'i386.json', doc: on('i386') }, { path: 'arm64.json', doc: on('arm64') }], out);
    expect(m.kernels.map((k) => k.spec)).toEqual(['debian:bookworm/amd64', 'debian:bookworm/i386', 'debian:bookworm/arm64']);
    expectValidResults<MatrixReport>(JSON.parse(JSON.stringify(m)));
    // Merged again with one more arm64 job of the same kernel: the name it would get is taken.
    expect(() => mergeDocuments([{ path: 'm.json', doc: m }, { path: 'again.json', doc: on('arm64') }], out)).toThrowError(/kernel debian:bookworm\/arm64 is in both m\.json and again\.json/);
    // One architecture only: the names stay the kernels'.
    // Results from before mmaplab knew other architectures are amd64's.
    expect(mergeDocuments([{ path: 'old.json', doc: load('run-bookworm.json') }, { path: 'i386.json', doc: on('i386') }], out).kernels.map((k) => k.spec)).toEqual(['debian:bookworm/amd64', 'debian:bookworm/i386']);
    // A kernel an arm64 job could not try takes the architecture of its file's other entries.
    const failed = assembleMatrix({ command: 'run', kernels: [{ spec: 'debian:bookworm', kind: 'error', error: { kind: 'boot', message: 'the guest did not boot', details: [], hint: undefined, locations: [], apiChanges: [], artifacts: {} } }, { spec: 'debian:sid', kind: 'run', report: on('arm64') as unknown as RunReport }], dir: '', resultsJson: '', totalMs: 0 });
    expect(mergeDocuments([{ path: 'amd64.json', doc: on('amd64') }, { path: 'arm64.json', doc: JSON.parse(JSON.stringify(failed)) as unknown }], out).kernels.map((k) => k.spec)).toEqual(['debian:bookworm/amd64', 'debian:bookworm/arm64', 'debian:sid/arm64']);
    const sid = structuredClone(load('run-sid.json')) as { kernel: { arch?: string } };
    sid.kernel.arch = 'i386';
    expect(mergeDocuments([{ path: 'a', doc: on('i386') }, { path: 'b', doc: sid }], out).kernels.map((k) => k.spec)).toEqual(['debian:bookworm', 'debian:sid']);
  });
});

describe('differences between kernels', () => {
  it('finds the check rows that changed: the driver builds on 5.10, not on 7.2', () => {
    const m = load('check-old-vm-flags.json') as MatrixReport;
    expect(m.differences.map((d) => d.key)).toEqual(['builds', 'loads', 'device']);
    expect(m.differences[0]!.cells).toEqual([
      { spec: 'debian:bullseye', value: 'pass', ok: true },
      { spec: 'debian:sid', value: 'fail', ok: false },
    ]);
    // Recomputed from the kernels, the saved differences are the same.
    expect(differences(matrixRows(m.kernels, m.command), m.command)).toEqual(m.differences);
  });

  it('marks a cell whose outcome changed, and fails the matrix', () => {
    const m = runs();
    const sid = structuredClone(m.kernels[1]!) as Extract<KernelEntry, { kind: 'run' }>;
    const cell = sid.report.results.find((r) => r.strategy === 'seed' && r.check === 'private')!;
    cell.outcome = { kind: 'ok', pagesOk: 16, pages: 16 };
    cell.matchesExpected = false;
    sid.report.status = 'fail';
    const changed = assembleMatrix({ command: 'run', kernels: [m.kernels[0]!, sid], dir: '', resultsJson: '', totalMs: 0 });
    expect(changed.differences).toEqual([{ key: 'seed / private', cells: [{ spec: 'debian:bookworm', value: 'SIGBUS@0', ok: true }, { spec: 'debian:sid', value: 'ok!', ok: false }] }]);
    expect(changed.status).toBe('fail');
  });

  it('is an error (exit 3) when a kernel could not be tried, a failure (exit 1) when the driver did not build', () => {
    const ok = runs().kernels[0]!;
    const err = (kind: 'build' | 'fetch'): KernelEntry => ({ spec: 'debian:sid', kind: 'error', error: { kind, message: 'm', details: [], hint: undefined, locations: [], apiChanges: [], artifacts: {} } });
    expect(matrixStatus([ok, err('build')])).toEqual({ status: 'fail', exitCode: 1 });
    expect(matrixStatus([ok, err('fetch')])).toEqual({ status: 'error', exitCode: 3 });
    expect(matrixStatus([ok])).toEqual({ status: 'pass', exitCode: 0 });
  });
});

/** JUnit as a CI server reads it: well-formed XML, suites and cases with their attributes. */
function parseJunit(xml: string) {
  expect(XMLValidator.validate(xml)).toBe(true);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => ['testsuite', 'testcase', 'property'].includes(name) }).parse(xml) as {
    testsuites: { tests: string; failures: string; testsuite: Array<{ name: string; tests: string; testcase: Array<{ classname: string; name: string; failure?: { message: string; '#text'?: string }; skipped?: { message: string }; 'system-out'?: string }> }> };
  };
  return doc.testsuites;
}

describe('JUnit', () => {
  it('is well-formed, and its counts agree with its cases', () => {
    for (const m of [runs(), load('check-old-vm-flags.json') as MatrixReport]) {
      const t = parseJunit(renderJunit(m));
      const cases = t.testsuite.flatMap((s) => s.testcase);
      expect(Number(t.tests)).toBe(cases.length);
      expect(Number(t.failures)).toBe(cases.filter((c) => c.failure).length);
      for (const s of t.testsuite) expect(Number(s.tests)).toBe(s.testcase.length);
    }
    const check = parseJunit(renderJunit(load('check-old-vm-flags.json') as MatrixReport));
    expect(check.testsuite.map((s) => s.name)).toEqual(['debian:bullseye', 'debian:sid']);
    const sidBuild = check.testsuite[1]!.testcase.find((c) => c.name === 'builds');
    expect(sidBuild?.failure?.message).toMatch(/does not compile for 7\.2/);
    expect(sidBuild?.failure?.['#text']).toMatch(/vma->vm_flags is read-only since Linux 6\.3/);
  });

  it('has a suite per kernel and a case per strategy x check, with the console lines of each', () => {
    const m = runs();
    const xml = renderJunit(m);
    const r0 = (m.kernels[0] as { report: RunReport }).report;
    expect(xml.match(/<testsuite /g)).toHaveLength(2);
    expect(xml.match(/<testcase /g)).toHaveLength(2 * (1 + r0.results.length));
    expect(xml).toMatch(/<testsuites name="mmaplab run" tests="38" failures="0" errors="0" skipped="0"/);
    expect(xml).toMatch(/<testcase classname="mmaplab\.sid\.seed" name="private \(MAP_PRIVATE\)">\s*<system-out>Bus error \(exit status 135, SIGBUS\)\nmmaplab: mmap seed: 16 pages at pgoff 0, MAP_PRIVATE, copy-on-write/);
    expect(xml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
  });

  it("carries a failure's verdict and explanation, and a driver that does not build", () => {
    const xml = renderJunit(load('check-old-vm-flags.json') as MatrixReport);
    expect(xml).toMatch(/<testcase classname="mmaplab\.sid\.check" name="builds">\s*<failure type="builds" message="the driver in test\/fixtures\/drivers\/old-vm-flags does not compile for 7\.2[^"]*">[^<]*assignment of read-only member[^<]*vma-&gt;vm_flags is read-only since Linux 6\.3/);
    expect(xml).toMatch(/<testcase classname="mmaplab\.sid\.check" name="loads">\s*<skipped message="the driver did not build"\/>/);
    expect(xml).toMatch(/<testsuite name="debian:bullseye" tests="15" failures="0"/);
  });
});

describe('Markdown summary and annotations', () => {
  it('tabulates kernels, the rows that differ and what failed', () => {
    const md = renderMarkdown(load('check-old-vm-flags.json') as MatrixReport);
    expect(md).toMatch(/^## mmaplab check: ❌ FAIL$/m);
    expect(md).toMatch(/^\| `debian:bullseye` \| 5\.10\.\S+ \| ✅ PASS 15 checks \|$/m);
    expect(md).toMatch(/^\| `debian:sid` \| 7\.2\.\S+ \| ❌ FAIL 1 of 3 checks \|$/m);
    expect(md).toMatch(/^\| builds \| pass \| ❌ fail \|$/m);
    expect(md).toMatch(/<summary><code>debian:sid<\/code>: builds: the driver in test\/fixtures\/drivers\/old-vm-flags does not compile/);
    expect(md).toMatch(/vm_flags_set/);
  });

  it('annotates the line that does not compile, once, naming the kernels', () => {
    expect(matrixAnnotations(load('check-old-vm-flags.json') as MatrixReport)).toEqual([
      expect.stringMatching(/^::error file=test\/fixtures\/drivers\/old-vm-flags\/old_vm_flags\.c,line=22,col=23::assignment of read-only member ‘vm_flags’ \(on debian:sid\)$/),
    ]);
  });

  it("says what the tool did on a kernel's behalf, such as retrying a boot that panicked before init", () => {
    const m = runs();
    const sid = structuredClone(m.kernels[1]!) as Extract<KernelEntry, { kind: 'run' }>;
    sid.report.notes = ['the kernel panicked before init on boot attempt 1 (an infrastructure flake, not the driver); retried (console-attempt1.log)'];
    const noted = assembleMatrix({ command: 'run', kernels: [m.kernels[0]!, sid], dir: '', resultsJson: '', totalMs: 0 });
    expect(renderMatrixText(noted, plain)).toMatch(/^debian:sid:\n {2}note: the kernel panicked before init on boot attempt 1 \(an infrastructure flake/m);
    expect(renderMarkdown(noted)).toMatch(/^- `debian:sid`: the kernel panicked before init on boot attempt 1/m);
  });

  it('shows every row by kernel in the terminal, the differing ones marked', () => {
    const text = renderMatrixText(load('check-old-vm-flags.json') as MatrixReport, plain);
    expect(text).toMatch(/^≠ builds +pass +fail$/m);
    expect(text).toMatch(/^ {2}shared +pass +-$/m);
    expect(text).toMatch(/API change|vm_flags_set/);
    expect(text).toMatch(/^FAIL: 1 of 2 kernels as expected$/m);
  });
});

describe('the build row', () => {
  const fetchError: KernelEntry = { spec: 'debian:trixie', kind: 'error', error: { kind: 'fetch', message: 'no archive', details: [], hint: undefined, locations: [], apiChanges: [], artifacts: {} } };

  it('is `builds` in a check matrix, as its items name it, also for a kernel that could not be tried', () => {
    const m = load('check-old-vm-flags.json') as MatrixReport;
    const withError = assembleMatrix({ command: 'check', kernels: [...m.kernels, fetchError], dir: '', resultsJson: '', totalMs: 0 });
    const rows = matrixRows(withError.kernels, 'check');
    expect(rows.map((r) => r.key)).not.toContain('build');
    expect(rows.find((r) => r.key === 'builds')!.cells.map((c) => c.value)).toEqual(['pass', 'fail', 'fetch error']);
    expect(withError.differences.map((d) => d.key)[0]).toBe('builds');
  });

  it('is `build` in a run matrix', () => {
    const m = runs();
    const withError = assembleMatrix({ command: 'run', kernels: [...m.kernels, fetchError], dir: '', resultsJson: '', totalMs: 0 });
    expect(withError.differences.map((d) => d.key)).toEqual(['build']);
    expect(withError.differences[0]!.cells.map((c) => c.value)).toEqual(['ok', 'ok', 'fetch error']);
  });
});

describe('the matrix of several kernels, run', () => {
  it('writes its results.json and leaves no empty directory for a kernel that failed before its run', async () => {
    const { mkdtempSync, mkdirSync, readdirSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { RunDir } = await import('../../src/rundir/run-dir.js');
    const { runMatrix } = await import('../../src/matrix/run-matrix.js');
    const { MmaplabError } = await import('../../src/util/errors.js');
    const root = mkdtempSync(join(tmpdir(), 'mmaplab-matrix-'));
    const report = (runs().kernels[0] as Extract<KernelEntry, { kind: 'run' }>).report;
    const m = await runMatrix({ command: 'run', specs: ['debian:bookworm', 'debian:sid', 'debian:trixie'], jobs: 1, dir: await RunDir.create({ outputDir: root }) }, async (spec, ctx) => {
      // As a run makes its directory before anything can fail.
      mkdirSync(ctx.outputDir, { recursive: true });
      if (spec === 'debian:sid') throw new MmaplabError('fetch', 'the archive did not answer');
      if (spec === 'debian:trixie') {
        writeFileSync(join(ctx.outputDir, 'build.log'), 'error: ...\n');
        throw new MmaplabError('build', 'the driver did not build');
      }
      return report;
    });
    expect(m.kernels.map((k) => k.kind)).toEqual(['run', 'error', 'error']);
    // sid kept nothing; trixie kept its build log.
    expect(readdirSync(root).sort()).toEqual(['bookworm', 'results.json', 'trixie']);
    expect((await RunDir.at(root).readResults())?.kind).toBe('matrix');
  });
});
