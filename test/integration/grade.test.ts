/**
 * `mmaplab grade` for real: a class folder made from the fixture drivers
 * (test/support/class-folder.ts: Moodle and Canvas downloads, archives, a
 * driver that does not compile, one that oopses, one that hangs, a bad
 * archive, an escaping one, none at all, a copy) graded in guests; every
 * student's score and status, the roster, the Moodle worksheet, the feedback
 * files, the JSON; a re-grade from the cache, an interrupted grade resumed,
 * shards merged, the summary page in headless Chromium, and check
 * --gradescope.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradeReport } from '../../src/model/grade.js';
import { execa } from 'execa';
import { FIXTURES, ROOT } from '../helpers.js';
import { makeClassFolder } from '../support/class-folder.js';
import { openPage } from '../support/browser.js';
import { parseValidResults } from '../support/schema.js';
import { qemuProcesses, runCli, startCli } from './cli.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mmaplab-test-grade-'));
const dir = tmp();
const folder = join(dir, 'class');
const out = join(dir, 'out');
const ONE_STATE = { MMAPLAB_STATE_DIR: join(dir, 'state') };

/** What every student must get: score and status, from the drivers' known mistakes. */
const EXPECTED: Record<string, [number, 'pass' | 'fail']> = {
  'ada-lovelace-1001': [100, 'pass'],
  'alan-turing-1002': [100, 'pass'],
  // oops in mmap(): it builds, loads and opens (25), every mapping check crashes.
  'babbagecharles-2001': [25, 'fail'],
  broken: [0, 'fail'],
  copycat: [100, 'pass'],
  // the wrong byte order beside the lab's own test: MAP_SHARED's 20 points.
  'edsger-dijkstra-1004': [80, 'fail'],
  'empty-handed': [0, 'fail'],
  escape: [0, 'fail'],
  // vmalloc-leak: no read() (5), its mapping runs past the buffer (oversize 5, the kernel's complaint 3), the leak (2).
  'grace-hopper-1003': [85, 'fail'],
  // the loop in init: it builds (10), never loads.
  'hamiltonmargaret-2002': [10, 'fail'],
  // SIGBUS under MAP_PRIVATE.
  'lamarrhedy-2003': [90, 'fail'],
  // every page one page: distinct-pages' 10.
  'same-page': [90, 'fail'],
  typo: [0, 'fail'],
};

const scores = (g: GradeReport) => Object.fromEntries(g.submissions.map((s) => [s.slug, [s.score, s.status]]));
const checkOf = (g: GradeReport, slug: string, id: string) => g.submissions.find((s) => s.slug === slug)!.checks.find((c) => c.id === id)!;

beforeAll(async () => {
  await makeClassFolder(folder);
});

afterAll(() => {
  expect(qemuProcesses()).toEqual([]);
});

describe('a class graded in guests', () => {
  let g: GradeReport;

  it('every submission scored as its driver deserves, the class graded whatever they do (exit 0)', async () => {
    const r = await runCli(['grade', folder, '--json', '--jobs', '2', '--out', out, '--csv', join(out, 'roster.csv'), '--moodle', join(FIXTURES, 'grade', 'moodle-worksheet.csv')], ONE_STATE);
    expect(r.exitCode, r.stderr).toBe(0);
    g = parseValidResults<GradeReport>(r.stdout);
    expect(scores(g)).toEqual(EXPECTED);
    expect(g.summary).toMatchObject({ submissions: 13, pass: 3, fail: 10, error: 0, identical: [['ada-lovelace-1001', 'copycat']] });
    expect(g.submissions.every((s) => s.check === undefined || s.check.cached === false)).toBe(true);
    expect(r.stderr).toMatch(/^\[13\/13\] /m);
    // The grade's results.json, and each submission's check report it keeps, are documents of the contract too.
    expect(parseValidResults(readFileSync(join(out, 'results.json'), 'utf8'))).toMatchObject({ command: 'grade', summary: g.summary });
    for (const s of g.submissions) if (s.check) parseValidResults(readFileSync(s.check.resultsJson, 'utf8'));
  });

  it('the verdicts behind the scores are the ones check gives, with the reasons a student can act on', () => {
    expect(checkOf(g, 'lamarrhedy-2003', 'private')).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/^SIGBUS at page 0/) });
    expect(checkOf(g, 'hamiltonmargaret-2002', 'loads').reason).toMatch(/^insmod never finished: module init never returns: the kernel reported a soft lockup in pfnmap_init/);
    expect(checkOf(g, 'typo', 'builds')).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/does not compile/) });
    expect(checkOf(g, 'edsger-dijkstra-1004', 'shared').reason).toMatch(/^byte order: 16\/16 pages start with dd cc bb aa, but the lab's test, .*mmap-test\.c:\d+ expects aa bb cc dd$/);
    const notes = (slug: string) => g.submissions.find((s) => s.slug === slug)!.notes.join('\n');
    expect(notes('broken')).toMatch(/broken\.zip: it is damaged/);
    expect(notes('escape')).toContain('escape.tar: an entry whose path escapes the archive (../evil.c): refused');
    expect(notes('hamiltonmargaret-2002')).toContain('two uploads named pfnmap.c: the later one (hamiltonmargaret_LATE_2002_7010_pfnmap.c) is graded');
    const finding = (key: string) => g.summary.findings.find((f) => f.key === key)?.slugs;
    expect(finding('explain:cow-remap-ignored')).toEqual(['lamarrhedy-2003']);
    expect(finding('check:byte-order')).toEqual(['edsger-dijkstra-1004']);
    expect(finding('submission:no-driver')).toEqual(['broken', 'empty-handed', 'escape']);
    // No driver of the class tampers with its guest: no trust sign, from its symbols or from the channels.
    expect(g.submissions.flatMap((s) => s.trust)).toEqual([]);
    expect(g.submissions.every((s) => s.graded.rubricHash === g.rubric.hash && s.graded.kernelPackage === g.kernel.packageVersion && s.graded.mmaplab.startsWith('0.'))).toBe(true);
  });

  it('the roster, the Moodle worksheet and a feedback file per student with their own lines', () => {
    const rows: string[][] = parse(readFileSync(join(out, 'roster.csv'), 'utf8'));
    expect(rows).toHaveLength(14);
    expect(rows.find((r) => r[0] === 'lamarrhedy')!.slice(0, 5)).toEqual(['lamarrhedy', '2003', '90', '100', 'fail']);
    const sheet: string[][] = parse(readFileSync(join(out, 'moodle-grades.csv'), 'utf8'), { bom: true });
    expect(sheet.map((r) => [r[0], r[4]])).toEqual([['Identifier', 'Grade'], ['Participant 1001', '50'], ['Participant 1002', '50'], ['Participant 1009', ''], ['Participant 1003', '42.5']]);
    const hedy = readFileSync(join(out, 'feedback', 'lamarrhedy-2003.txt'), 'utf8');
    expect(hedy).toMatch(/^lamarrhedy \(2003\): 90\/100, fail$/m);
    expect(hedy).toMatch(/fix: map with MAP_SHARED/);
    expect(hedy).toMatch(/vmpages\.c:\d+/);
    expect(readdirCount(join(out, 'feedback'))).toBe(13);
  });

  it('graded again: every check comes from the cache, the scores are the same', async () => {
    const r = await runCli(['grade', folder, '--json', '--jobs', '2'], ONE_STATE);
    expect(r.exitCode, r.stderr).toBe(0);
    const again = parseValidResults<GradeReport>(r.stdout);
    expect(scores(again)).toEqual(EXPECTED);
    expect(again.submissions.filter((s) => s.check).every((s) => s.check!.cached)).toBe(true);
    expect(again.summary).toEqual(g.summary);
  });

  it('in shards, merged: the same class', async () => {
    const shards = [];
    for (const i of [1, 2, 3]) {
      const r = await runCli(['grade', folder, '--shard', `${i}/3`, '--out', join(dir, `shard-${i}`), '--json'], ONE_STATE);
      expect(r.exitCode, r.stderr).toBe(0);
      shards.push(parseValidResults<GradeReport>(r.stdout));
    }
    expect(shards.map((s) => s.submissions.length)).toEqual([5, 4, 4]);
    const m = await runCli(['merge', ...[1, 2, 3].map((i) => join(dir, `shard-${i}`, 'results.json')), '--json', '--out', join(dir, 'merged'), '--csv', join(dir, 'merged.csv')]);
    expect(m.exitCode, m.stderr).toBe(0);
    const merged = parseValidResults<GradeReport>(m.stdout);
    expect(scores(merged)).toEqual(EXPECTED);
    expect(merged.summary).toEqual(g.summary);
    expect(readdirCount(join(dir, 'merged', 'feedback'))).toBe(13);
    expect(parseValidResults<GradeReport>(readFileSync(join(dir, 'merged', 'results.json'), 'utf8')).summary).toEqual(g.summary);
  });

  it('graded again on the kernel the grade recorded, pinned: the same scores; a version no archive or cache has is refused by name', async () => {
    const pinned = `debian:bookworm@${g.kernel.packageVersion}`;
    const r = await runCli(['grade', folder, '--kernel', pinned, '--json'], ONE_STATE);
    expect(r.exitCode, r.stderr).toBe(0);
    const again = parseValidResults<GradeReport>(r.stdout);
    expect(scores(again)).toEqual(EXPECTED);
    expect(again.kernel).toEqual({ spec: pinned, release: g.kernel.release, packageVersion: g.kernel.packageVersion });
    expect(again.submissions.filter((s) => s.check).every((s) => s.check!.cached)).toBe(true);
    const gone = await runCli(['grade', folder, '--kernel', 'debian:bookworm@6.1.1-1'], ONE_STATE);
    expect(gone.exitCode).toBe(3);
    expect(gone.stderr).toMatch(/^mmaplab: error: debian:bookworm no longer serves linux-image-cloud-amd64 6\.1\.1-1 \(it serves [^)]+\), and no cached kernel has that version$/m);
  });

  it('the cache moved to another machine (kernels export, import into an empty cache): the pinned kernel checks there with no archive, its snapshot restored', async () => {
    const archive = join(dir, 'kernels.tar.gz');
    const ex = await runCli(['kernels', 'export', archive, `debian:bookworm@${g.kernel.packageVersion}`]);
    expect(ex.exitCode, ex.stderr).toBe(0);
    expect(ex.stdout).toContain(g.kernel.release);
    const other = { MMAPLAB_CACHE_DIR: join(dir, 'other-cache'), MMAPLAB_STATE_DIR: join(dir, 'other-state') };
    const im = await runCli(['kernels', 'import', archive], other);
    expect(im.exitCode, im.stderr).toBe(0);
    // The snapshot comes too, re-keyed to the files' new place: the check there restores it, no boot.
    expect(im.stdout).toMatch(new RegExp(`^imported: ${g.kernel.release.replace(/\./g, '\\.')}; snapshots: (${g.kernel.release.replace(/\./g, '\\.')}-(tcg|kvm)-\\d+m(, )?)+$`));
    const nowhere = ['--archive-uri', 'http://127.0.0.1:9/debian', '--security-uri', 'http://127.0.0.1:9/debian-security'];
    const r = await runCli(['check', join(FIXTURES, 'students', 'lab-vmalloc'), '--kernel', `debian:bookworm@${g.kernel.packageVersion}`, '--json', ...nowhere], other);
    expect(r.exitCode, r.stderr).toBe(0);
    const there = parseValidResults<{ kernel: { release: string }; machine: { snapshot?: { use: string } } }>(r.stdout);
    expect(there.kernel.release).toBe(g.kernel.release);
    expect(there.machine.snapshot?.use).toBe('restored');
  });

  it('the summary page in a real browser: its numbers are the class', async () => {
    const page = await openPage(join(out, 'index.html'));
    try {
      const one = async (sel: string) => (await page.all(sel))[0]!;
      expect((await one('#counts')).data).toEqual({ submissions: '13', pass: '3', fail: '10', error: '0' });
      const findings = await page.all('#findings li');
      expect(findings.map((f) => [f.data.finding, f.data.count])).toEqual(g.summary.findings.map((f) => [f.key, String(f.slugs.length)]));
      expect(findings.find((f) => f.data.finding === 'explain:cow-remap-ignored')!.text).toBe("1 of 13 ignore remap_pfn_range()'s return value (SIGBUS under MAP_PRIVATE)lamarrhedy");
      expect((await page.all('#distribution tr')).map((e) => Number(e.data.count))).toEqual(g.summary.distribution.map((d) => d.count));
      expect((await page.all('#checks tr[data-check]')).map((e) => [e.data.check, e.data.passed])).toEqual(g.summary.checks.map((c) => [c.id, String(c.passed)]));
      expect((await page.all('#students tr[data-slug]')).map((e) => Number(e.data.score))).toEqual(g.submissions.map((s) => s.score));
      // A finding links to its students' rows; a row links to the feedback file, which is there.
      expect((await one('#findings li[data-finding="check:byte-order"] a')).href).toBe('#s-edsger-dijkstra-1004');
      const feedback = (await one('#s-edsger-dijkstra-1004 a')).resolved!;
      expect(feedback).toBe(`file://${join(out, 'feedback', 'edsger-dijkstra-1004.txt')}`);
      expect(existsSync(new URL(feedback).pathname)).toBe(true);
      expect(page.requests()).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

function readdirCount(d: string): number {
  return existsSync(d) ? readdirSync(d).length : 0;
}

describe('an interrupted grade', () => {
  it('resumes: what was graded before the interruption is kept, the rest checked, the class the same', async () => {
    // Four of the class, in a state of their own: nothing cached yet.
    const small = join(dir, 'small');
    mkdirSync(small);
    for (const e of ['Ada Lovelace_1001_assignsubmission_file_', 'same-page.tar.gz', 'copycat', 'typo.c']) cpSync(join(folder, e), join(small, e), { recursive: true });
    const state = { MMAPLAB_STATE_DIR: join(dir, 'state-resume') };
    const p = startCli(['grade', small, '--jobs', '1'], state);
    let seen = '';
    await new Promise<void>((res) => {
      p.stderr.on('data', (b: Buffer) => {
        seen += String(b);
        // After the second submission, as a teacher's Ctrl-C would.
        if (/^\[2\/4\] /m.test(seen)) res();
      });
      void p.then(() => res());
    });
    p.kill('SIGINT');
    const first = await p;
    expect(first.exitCode).toBe(130);
    expect(qemuProcesses()).toEqual([]);
    const r = await runCli(['grade', small, '--json', '--jobs', '1'], state);
    expect(r.exitCode, r.stderr).toBe(0);
    const resumed = parseValidResults<GradeReport>(r.stdout);
    expect(scores(resumed)).toEqual({ 'ada-lovelace-1001': EXPECTED['ada-lovelace-1001'], copycat: EXPECTED.copycat, 'same-page': EXPECTED['same-page'], typo: EXPECTED.typo });
    expect(resumed.submissions.map((s) => s.check?.cached)).toEqual([true, true, false, false]);
  });
});

describe('one submission as a Gradescope autograder', () => {
  it("run_autograder, in Gradescope's layout: results.json with the score and a test per check, the student's explanation in the output", async () => {
    const root = join(dir, 'autograder');
    mkdirSync(join(root, 'source'), { recursive: true });
    cpSync(join(FIXTURES, 'students', 'vmalloc-per-page'), join(root, 'submission'), { recursive: true });
    const r = await execa('sh', [join(ROOT, 'bin', 'autograders', 'gradescope', 'run_autograder')], {
      reject: false,
      env: { AUTOGRADER_ROOT: root, MMAPLAB: `${process.execPath} ${join(ROOT, 'bin', 'mmaplab.js')}`, MMAPLAB_STATE_DIR: join(dir, 'state-gs') },
    });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const gs = JSON.parse(readFileSync(join(root, 'results', 'results.json'), 'utf8')) as { score: number; output: string; tests: Array<{ name: string; score: number; max_score: number; status: string; output: string }> };
    expect(gs.score).toBe(90);
    expect(gs.tests).toHaveLength(14);
    expect(gs.tests.filter((t) => t.status === 'failed').map((t) => [t.name, t.score, t.max_score])).toEqual([['MAP_PRIVATE works or fails cleanly at mmap()', 0, 10]]);
    expect(gs.output).toMatch(/: 90\/100, fail\n/);
    expect(gs.output).toMatch(/MAP_PRIVATE made the mapping copy-on-write/);
  });

  it('a check mmaplab cannot do still leaves a results file: score 0, and why', async () => {
    const file = join(dir, 'gs-error.json');
    const r = await runCli(['check', join(FIXTURES, 'students', 'lab-vmalloc'), '--gradescope', file, '--kernel', 'debian:trixie', '--archive-uri', 'http://127.0.0.1:9/debian', '--security-uri', 'http://127.0.0.1:9/debian-security'], { MMAPLAB_CACHE_DIR: join(dir, 'empty-cache-gs') });
    expect(r.exitCode).toBe(3);
    const gs = JSON.parse(readFileSync(file, 'utf8')) as { score: number; output: string; tests: unknown[] };
    expect(gs).toMatchObject({ score: 0, tests: [] });
    expect(gs.output).toMatch(/^mmaplab could not check this submission: .*\nThis is not your driver's fault; tell the course staff\.$/);
  });
});

describe('when mmaplab cannot grade', () => {
  it('a worksheet that is missing or not the platform\'s: one line and exit 2 before any submission is checked', async () => {
    const gone = await runCli(['grade', folder, '--moodle', join(dir, 'no-such-worksheet.csv')], { MMAPLAB_STATE_DIR: join(dir, 'state-sheet') });
    expect(gone.exitCode).toBe(2);
    expect(gone.stderr).toMatch(/^mmaplab: error: the Moodle worksheet .*no-such-worksheet\.csv: no such file$/m);
    expect(gone.stderr).not.toMatch(/^\[1\/13\]/m);
    const notCanvas = await runCli(['grade', folder, '--canvas', join(FIXTURES, 'grade', 'moodle-worksheet.csv')], { MMAPLAB_STATE_DIR: join(dir, 'state-sheet') });
    expect(notCanvas.exitCode).toBe(2);
    expect(notCanvas.stderr).toMatch(/^mmaplab: error: the Canvas gradebook has no "Student" column$/m);
    expect(notCanvas.stderr).not.toMatch(/^\[1\/13\]/m);
  });

  it('a kernel it cannot fetch: one line and exit 3, no submission scored', async () => {
    const r = await runCli(['grade', folder, '--kernel', 'debian:trixie', '--archive-uri', 'http://127.0.0.1:9/debian', '--security-uri', 'http://127.0.0.1:9/debian-security'], { MMAPLAB_STATE_DIR: join(dir, 'state-nofetch'), MMAPLAB_CACHE_DIR: join(dir, 'empty-cache') });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^mmaplab: error: /m);
    expect(r.stdout).toBe('');
  });
});
