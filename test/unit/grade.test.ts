/**
 * grade's parts without a guest: names as Moodle and Canvas write them, a
 * class folder grouped and staged (archives unpacked, escapes refused), the
 * rubric, scores of real check reports (test/fixtures/grade), the class
 * summary, shards merged, the sheets filled as the platforms read them, and
 * Gradescope's file.
 */
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { parseEntryName, uniqueSlugs } from '../../src/grade/names.js';
import { DEFAULT_RUBRIC_TEXT, parseRubric, stampOf } from '../../src/grade/rubric.js';
import { scoreNothing, scoreReport } from '../../src/grade/score.js';
import { normalizedLines, similarityHash, stripComments } from '../../src/grade/similar.js';
import { discoverClass, stageSubmission, type Submission } from '../../src/grade/submissions.js';
import { assembleGrade, mergeGrades, parseGrade } from '../../src/grade/summary.js';
import { channelSigns, trustSigns } from '../../src/grade/trust.js';
import { unpackArchive } from '../../src/grade/unpack.js';
import type { GradeReport, SubmissionResult } from '../../src/model/grade.js';
import type { CheckReport } from '../../src/model/report.js';
import { canvasAssignments, fillCanvasGradebook, fillMoodleWorksheet, renderRoster } from '../../src/report/grade-csv.js';
import { renderGradeHtml } from '../../src/report/grade-html.js';
import { renderGradescope } from '../../src/report/gradescope.js';
import { FIXTURES } from '../helpers.js';
import { tarOf, zipOf } from '../support/archives.js';
import { CLASS, makeClassFolder } from '../support/class-folder.js';
import { expectValidResults } from '../support/schema.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mmaplab-grade-'));
const STAMP = stampOf(parseRubric(DEFAULT_RUBRIC_TEXT, 'default'));
const checkFixture = (name: string) => JSON.parse(readFileSync(join(FIXTURES, 'grade', `check-${name}.json`), 'utf8')) as CheckReport;




describe('names as the platforms write them', () => {
  it("Moodle's folder and flat files, Canvas's files (late ones too), anything else by its own name", () => {
    expect(parseEntryName('Ada Lovelace_1001_assignsubmission_file_')).toEqual({ student: { name: 'Ada Lovelace', id: '1001', naming: 'moodle' }, rest: '' });
    expect(parseEntryName('Ada Lovelace_1001_assignsubmission_file_vmmap.c').rest).toBe('vmmap.c');
    expect(parseEntryName('José Ruiz_77_assignsubmission_file_lab_5.tar.gz')).toMatchObject({ student: { name: 'José Ruiz', id: '77' }, rest: 'lab_5.tar.gz' });
    expect(parseEntryName('lamarrhedy_2003_7004_vmpages.c')).toEqual({ student: { name: 'lamarrhedy', id: '2003', naming: 'canvas' }, rest: 'vmpages.c', attachment: 7004 });
    expect(parseEntryName('hamiltonmargaret_LATE_2002_7010_pfnmap.c')).toMatchObject({ student: { id: '2002', naming: 'canvas' }, late: true, attachment: 7010 });
    expect(parseEntryName('same-page.tar.gz')).toEqual({ student: { name: 'same-page', id: '', naming: 'plain' }, rest: 'same-page.tar.gz' });
    expect(parseEntryName('typo.c').student.name).toBe('typo');
  });

  it('slugs are file-name-safe and unique in the class, a suffix never taking another student\'s own', () => {
    expect(uniqueSlugs([{ name: 'José Ruiz', id: '77', naming: 'moodle' }, { name: 'x/../y', id: '', naming: 'plain' }, { name: 'X  Y', id: '', naming: 'plain' }])).toEqual(['jose-ruiz-77', 'x-y', 'x-y-2']);
    const plain = (name: string) => ({ name, id: '', naming: 'plain' as const });
    expect(uniqueSlugs([plain('李雷'), plain('韩梅梅'), plain('submission-2')])).toEqual(['submission', 'submission-3', 'submission-2']);
  });

  it('a folder keeps its dots; only a .c or an archive loses its extension', () => {
    expect([parseEntryName('john.li', true), parseEntryName('john.wu', true)].map((e) => e.student.name)).toEqual(['john.li', 'john.wu']);
    expect(parseEntryName('john.li.zip').student.name).toBe('john.li');
    expect(parseEntryName('lab.tar.gz').student.name).toBe('lab');
  });
});

describe('a class folder, grouped and staged', () => {
  const dir = tmp();
  const folder = join(dir, 'class');
  const stage = async (subs: Submission[], slug: string) => stageSubmission(folder, subs.find((s) => s.slug === slug)!, join(dir, 'staged', slug));

  it('one submission per student, named as the platform named them', async () => {
    await makeClassFolder(folder);
    const subs = await discoverClass(folder);
    expect(subs.map((s) => [s.slug, s.student.naming])).toEqual([
      // In code-unit order of the entries (capitals first), the same on every machine.
      ['ada-lovelace-1001', 'moodle'], ['alan-turing-1002', 'moodle'], ['edsger-dijkstra-1004', 'moodle'], ['grace-hopper-1003', 'moodle'],
      ['babbagecharles-2001', 'canvas'], ['broken', 'plain'], ['copycat', 'plain'], ['empty-handed', 'plain'], ['escape', 'plain'], ['hamiltonmargaret-2002', 'canvas'],
      ['lamarrhedy-2003', 'canvas'], ['same-page', 'plain'], ['typo', 'plain'],
    ]);
    expect(subs).toHaveLength(Object.keys(CLASS).length);
    const margaret = subs.find((s) => s.slug === 'hamiltonmargaret-2002')!;
    expect(margaret.entries.map((e) => e.name)).toEqual(['hamiltonmargaret_LATE_2002_7010_Makefile', 'hamiltonmargaret_LATE_2002_7010_pfnmap.c']);
    expect(margaret.notes).toEqual(['two uploads named pfnmap.c: the later one (hamiltonmargaret_LATE_2002_7010_pfnmap.c) is graded, hamiltonmargaret_2002_7002_pfnmap.c is not']);
  });

  it('archives unpacked, wrapper folders stripped, the lab layout found; what cannot be read says why', async () => {
    const subs = await discoverClass(folder);
    const alan = await stage(subs, 'alan-turing-1002');
    expect(alan).toMatchObject({ kind: 'ok', files: ['Kbuild', 'test/Makefile', 'test/mmap-test.c', 'test/mmap-test.h', 'vmmap.c'] });
    const edsger = await stage(subs, 'edsger-dijkstra-1004');
    expect(edsger.kind === 'ok' && edsger.root.endsWith('/kernel')).toBe(true);
    expect(await stage(subs, 'grace-hopper-1003')).toMatchObject({ kind: 'ok', files: ['leaky.c'] });
    expect(await stage(subs, 'broken')).toMatchObject({ kind: 'no-driver', why: expect.stringMatching(/^broken\.zip: it is damaged \(/) });
    expect(await stage(subs, 'escape')).toMatchObject({ kind: 'no-driver', why: 'escape.tar: an entry whose path escapes the archive (../evil.c): refused' });
    expect(await stage(subs, 'empty-handed')).toMatchObject({ kind: 'no-driver', why: 'no driver: no .c file in the submission (it holds README.md)' });
  });

  it('a link in a folder or an archive is left out, never followed', async () => {
    const d = join(dir, 'links');
    mkdirSync(join(d, 'sym'), { recursive: true });
    writeFileSync(join(d, 'sym', 'a.c'), 'int a;\n');
    symlinkSync('/etc/passwd', join(d, 'sym', 'secret.c'));
    writeFileSync(join(d, 'lnk.tar'), await tarOf([{ name: 'b.c', data: 'int b;\n' }, { name: 'shadow.c', type: 'symlink', linkname: '/etc/shadow' }]));
    const subs = await discoverClass(d);
    const sym = await stageSubmission(d, subs.find((s) => s.slug === 'sym')!, join(dir, 'st-sym'));
    expect(sym).toMatchObject({ kind: 'ok', files: ['a.c'], notes: ['left out: secret.c (a symbolic link)'] });
    const lnk = await stageSubmission(d, subs.find((s) => s.slug === 'lnk')!, join(dir, 'st-lnk'));
    expect(lnk).toMatchObject({ kind: 'ok', files: ['b.c'], notes: ['left out: shadow.c (a symlink entry)'] });
  });
});

function patched(bytes: Buffer, from: string, to: string): Buffer {
  return Buffer.from(bytes.toString('latin1').split(from).join(to), 'latin1');
}

describe("a submission's budget", () => {
  it('is one for all its archives and folders: three zips of 25 MiB each in a Moodle folder are refused, a folder with 65 MiB too', async () => {
    const d = tmp();
    const big = await zipOf((z) => z.addBuffer(Buffer.alloc(25 << 20), 'part.h'));
    const moodle = join(d, 'Eve_1_assignsubmission_file_');
    mkdirSync(moodle);
    for (const n of [1, 2, 3]) writeFileSync(join(moodle, `p${n}.zip`), big);
    mkdirSync(join(d, 'hoard'));
    writeFileSync(join(d, 'hoard', 'x.c'), Buffer.alloc(65 << 20));
    const subs = await discoverClass(d);
    expect(await stageSubmission(d, subs.find((s) => s.slug === 'eve-1')!, join(d, 'st-eve'))).toMatchObject({ kind: 'no-driver', why: "p3.zip: more than 64 MiB unpacked: not a driver's sources" });
    expect(await stageSubmission(d, subs.find((s) => s.slug === 'hoard')!, join(d, 'st-hoard'))).toMatchObject({ kind: 'no-driver', why: "more than 64 MiB unpacked: not a driver's sources" });
  });

  it("an archive beside a folder of the name mmaplab would unpack it to is unpacked all the same; a zip's symlink is left out", async () => {
    const d = tmp();
    const inner = await zipOf((z) => {
      z.addBuffer(Buffer.from('int x;\n'), 'drv/x.c');
      z.addBuffer(Buffer.from('/etc/passwd'), 'drv/secret.c', { mode: 0o120777 });
    });
    writeFileSync(join(d, 'odd.tar'), await tarOf([{ name: 'a.zip', data: inner }, { name: 'a.zip.d/readme', data: Buffer.from('x') }]));
    const subs = await discoverClass(d);
    const st = await stageSubmission(d, subs[0]!, join(d, 'st'));
    expect(st).toMatchObject({ kind: 'ok', notes: ['left out of a.zip: drv/secret.c (a symbolic link)'] });
    expect(st.kind === 'ok' && st.files.map((f) => f.replace(/^unpacked-0-[0-9a-f]{8}\//, '<a.zip>/')).sort()).toEqual(['<a.zip>/drv/x.c', 'a.zip.d/readme']);
  });
});

describe('archives', () => {
  it('absolute paths, a zip with ../, a zip of too many bytes and a file that is no archive are refused', async () => {
    const d = tmp();
    const cases: Array<[string, Buffer]> = [
      ['abs.tar', await tarOf([{ name: '/etc/cron.d/x', data: 'x' }])],
      // yazl will not write such a name: written as another of its length, then patched in.
      ['dots.zip', patched(await zipOf((z) => z.addBuffer(Buffer.from('x'), 'aaaaaaa.c')), 'aaaaaaa.c', '../../x.c')],
      ['bomb.zip', await zipOf((z) => z.addBuffer(Buffer.alloc(65 << 20), 'big.c'))],
      ['empty.zip', Buffer.alloc(0)],
    ];
    const why: string[] = [];
    for (const [name, bytes] of cases) {
      writeFileSync(join(d, name), bytes);
      mkdirSync(join(d, `${name}.out`));
      const r = await unpackArchive(join(d, name), join(d, `${name}.out`));
      why.push(r.kind === 'refused' ? r.why : 'unpacked');
    }
    expect(why[0]).toBe('an entry with an absolute path (/etc/cron.d/x): refused');
    expect(why[1]).toBe('an entry whose path escapes the archive (../../x.c): refused');
    expect(why[2]).toMatch(/^an entry of \d+ bytes: not a driver's sources$|more than 64 MiB/);
    expect(why[3]).toBe('it is not a zip, tar or tar.gz archive (or is empty)');
  });
});

describe('the rubric', () => {
  it('the default gives 100 points over the checks and passes at 100; its hash is over points alone', () => {
    expect(STAMP.maxScore).toBe(100);
    expect(STAMP.passScore).toBe(100);
    expect(STAMP.points.map((p) => p.id)).toEqual(['builds', 'loads', 'device', 'shared', 'distinct-pages', 'private', 'write', 'read', 'oversize', 'readonly', 'unloads', 'kernel', 'reserved', 'leaks']);
    const renamed = stampOf(parseRubric(DEFAULT_RUBRIC_TEXT.replace('name: memory-mapping lab (mmaplab default)', 'name: OS 2026'), 'x'));
    expect(renamed.hash).toBe(STAMP.hash);
    expect(stampOf(parseRubric(DEFAULT_RUBRIC_TEXT.replace('builds: 10', 'builds: 11').replace('passScore: 100', 'passScore: 90'), 'x')).hash).not.toBe(STAMP.hash);
  });

  it('JSON works as well as YAML; unknown checks, bad points and an impossible pass score are refused by name', () => {
    expect(stampOf(parseRubric('{"points": {"builds": 1, "shared": 3}, "passScore": 3}', 'r.json'))).toMatchObject({ maxScore: 4, passScore: 3 });
    expect(() => parseRubric('points: {mapping: 5}', 'r.yaml')).toThrow("rubric r.yaml: unknown check 'mapping'");
    expect(() => parseRubric('points: {builds: -1}', 'r.yaml')).toThrow('builds: points must be a number of 0 or more, not -1');
    expect(() => parseRubric('points: {builds: 5}\npassScore: 6', 'r.yaml')).toThrow('passScore must be a number from 0 to 5');
    expect(() => parseRubric('[1, 2', 'r.yaml')).toThrow(/^rubric r\.yaml: not YAML or JSON/);
  });
});

describe("scores of real checks", () => {
  it('a correct driver scores every point', () => {
    expect(scoreReport(checkFixture('ada-lovelace-1001'), STAMP)).toMatchObject({ score: 100, status: 'pass', findings: [] });
  });

  it("SIGBUS under MAP_PRIVATE loses MAP_PRIVATE's points, found as the ignored return value", () => {
    const s = scoreReport(checkFixture('lamarrhedy-2003'), STAMP);
    expect(s).toMatchObject({ score: 90, status: 'fail' });
    expect(s.checks.find((c) => c.id === 'private')).toMatchObject({ verdict: 'fail', points: 0, maxPoints: 10, reason: expect.stringMatching(/^SIGBUS at page 0/) });
    expect(s.findings).toEqual([{ key: 'explain:cow-remap-ignored', gist: "ignore remap_pfn_range()'s return value (SIGBUS under MAP_PRIVATE)" }]);
  });

  it("the wrong byte order loses MAP_SHARED's points, found as such (not as the seed's printf note)", () => {
    const s = scoreReport(checkFixture('edsger-dijkstra-1004'), STAMP);
    expect(s.score).toBe(80);
    expect(s.findings).toEqual([{ key: 'check:byte-order', gist: 'store the pattern in the wrong byte order' }]);
  });

  it('a compile error scores nothing, the checks never reached count as such', () => {
    const s = scoreReport(checkFixture('typo'), STAMP);
    expect(s.score).toBe(0);
    expect(s.checks.filter((c) => c.verdict === 'missing').map((c) => c.id)).toEqual(['shared', 'distinct-pages', 'private', 'write', 'read', 'oversize', 'readonly', 'unloads', 'kernel', 'reserved', 'leaks']);
    expect(s.findings.map((f) => f.key)).toEqual(['check:builds']);
  });

  it('an oops in mmap(): what loaded scores, the crash is found once', () => {
    const s = scoreReport(checkFixture('babbagecharles-2001'), STAMP);
    expect(s.score).toBe(25);
    expect(s.findings.map((f) => f.key)).toContain('explain:crash');
  });
});

function result(slug: string, report: CheckReport | undefined, more: Partial<SubmissionResult> = {}): SubmissionResult {
  const s = report ? scoreReport(report, STAMP) : scoreNothing(STAMP, 'no driver');
  return {
    slug, name: slug, id: '', naming: 'plain', sources: [slug], status: s.status, score: s.score, maxScore: 100, checks: s.checks, findings: s.findings,
    notes: [], contentHash: slug, trust: [], graded: { mmaplab: 't', kernel: '6.1.0-57-cloud-amd64', kernelPackage: '6.1.192-3', rubricHash: STAMP.hash }, durationMs: 1, ...more,
  };
}

function grade(subs: SubmissionResult[]): GradeReport {
  return assembleGrade({ version: 't', rubric: STAMP, kernel: { spec: 'debian:bookworm', release: '6.1.0-57-cloud-amd64', packageVersion: '6.1.192-3' }, submissions: subs, artifacts: { dir: '/x' }, timings: { totalMs: 1 } });
}

const CLASS_OF_FIVE = () => [
  result('ada', checkFixture('ada-lovelace-1001'), { name: 'Ada Lovelace', id: '1001', naming: 'moodle', similarityHash: 'h1' }),
  result('copy', checkFixture('ada-lovelace-1001'), { similarityHash: 'h1' }),
  result('hedy', checkFixture('lamarrhedy-2003'), { name: 'lamarrhedy', id: '2003', naming: 'canvas' }),
  result('typo', checkFixture('typo')),
  result('margaret', undefined, { name: 'hamiltonmargaret', id: '2002', naming: 'canvas', status: 'error', error: { kind: 'boot', message: 'the guest did not boot' } }),
];

describe('the class', () => {
  it('summary: counts, distribution, pass rates, findings by students, identical code; an error makes the exit 3', () => {
    const g = grade(CLASS_OF_FIVE());
    expectValidResults(JSON.parse(JSON.stringify(g)));
    expect(g.exitCode).toBe(3);
    expect(g.summary).toMatchObject({ submissions: 5, pass: 2, fail: 2, error: 1, meanScore: 72.5, medianScore: 95, identical: [['ada', 'copy']] });
    expect(g.summary.distribution.map((d) => d.count)).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
    expect(g.summary.checks.find((c) => c.id === 'private')).toEqual({ id: 'private', title: 'MAP_PRIVATE works or fails cleanly at mmap()', passed: 2, of: 4 });
    expect(g.summary.findings.map((f) => [f.key, f.slugs])).toEqual([['check:builds', ['typo']], ['explain:cow-remap-ignored', ['hedy']]]);
    expect(grade(CLASS_OF_FIVE().slice(0, 4)).exitCode).toBe(0);
  });

  it('shards merge to the whole; another rubric or a submission twice is refused', () => {
    const all = CLASS_OF_FIVE();
    const whole = grade(all);
    const merged = mergeGrades([grade(all.slice(0, 2)), grade(all.slice(2))], '/x');
    expectValidResults(JSON.parse(JSON.stringify(merged)));
    expect({ ...merged, timings: whole.timings }).toEqual(whole);
    expect(() => mergeGrades([grade(all.slice(0, 2)), grade(all.slice(1))], '/x')).toThrow('submission copy is in more than one shard');
    const other = { ...grade(all.slice(2)), rubric: { ...STAMP, hash: 'other' } };
    expect(() => mergeGrades([grade(all.slice(0, 2)), other], '/x')).toThrow(/different rubrics/);
    const shard = (subs: SubmissionResult[], index: number, count: number): GradeReport => ({ ...grade(subs), shard: { index, count } });
    expect(mergeGrades([shard(all.slice(0, 2), 1, 3), shard(all.slice(2, 4), 2, 3), shard(all.slice(4), 3, 3)], '/x').summary).toEqual(whole.summary);
    expect(() => mergeGrades([shard(all.slice(0, 2), 1, 3), shard(all.slice(4), 3, 3)], '/x')).toThrow('shard 2/3 is missing: the class would be incomplete');
    expect(() => mergeGrades([shard(all.slice(0, 2), 1, 2), shard(all.slice(2), 1, 2)], '/x')).toThrow('shard 2/2 is missing');
    expect(() => mergeGrades([shard(all.slice(0, 2), 1, 2), grade(all.slice(2))], '/x')).toThrow(/not the shards of one --shard i\/n series/);
    expect(parseGrade(JSON.stringify(whole), 'g.json')).toEqual(whole);
    expect(() => parseGrade('{"tool":{"name":"mmaplab"},"command":"check"}', 'c.json')).toThrow('c.json is not a grade of mmaplab\'s: no mmaplab grade document');
  });
});

describe('the sheets', () => {
  it('the roster has a row per student and a column per check', () => {
    const rows: string[][] = parse(renderRoster(grade(CLASS_OF_FIVE())));
    expect(rows[0]!.slice(0, 7)).toEqual(['name', 'id', 'score', 'maxScore', 'status', 'builds', 'loads']);
    expect(rows.find((r) => r[0] === 'lamarrhedy')!.slice(0, 5)).toEqual(['lamarrhedy', '2003', '90', '100', 'fail']);
    expect(rows.find((r) => r[0] === 'hamiltonmargaret')!.at(-1)).toBe('not graded: the guest did not boot');
  });

  it('a name in a cell is never a formula; a sheet row gets no one else\'s grade', () => {
    const evil = result('evil', checkFixture('typo'), { name: '=HYPERLINK("http://x","y")' });
    const rows: string[][] = parse(renderRoster(grade([evil])));
    expect(rows[1]![0]).toBe('\'=HYPERLINK("http://x","y")');
    const sheet = ['"Identifier","Full name","Grade","Feedback comments"', '"Participant 5","Ada Lovelace",,', '"Participant 6","",,', '"Participant 7","Sam Lee",,', '"Participant 8","Sam Lee",,', '"Participant 9","李雷",,'].join('\n');
    const subs = [
      result('ada-1001', checkFixture('ada-lovelace-1001'), { name: 'Ada Lovelace', id: '1001', naming: 'moodle' }),
      result('blank', checkFixture('typo'), { name: '' }),
      result('sam', checkFixture('typo'), { name: 'Sam Lee' }),
      result('lei', checkFixture('ada-lovelace-1001'), { name: '李雷' }),
    ];
    const filled = fillMoodleWorksheet(sheet, grade(subs));
    // Ada has an ID (1001) the sheet has not: no row by name. Two rows of Sam Lee: neither. The blank name: nobody. 李雷 by name.
    expect(filled.matched).toEqual(['lei']);
    const cells: string[][] = parse(filled.text);
    expect(cells.map((r) => r[2])).toEqual(['Grade', '', '', '', '', '100']);
  });

  it("Moodle's worksheet: Grade out of its maximum and the feedback filled for the students graded, every other cell and the BOM as they were", () => {
    const text = readFileSync(join(FIXTURES, 'grade', 'moodle-worksheet.csv'), 'utf8');
    const filled = fillMoodleWorksheet(text, grade(CLASS_OF_FIVE()));
    expect(filled.text.charCodeAt(0)).toBe(0xfeff);
    const before: string[][] = parse(text, { bom: true });
    const after: string[][] = parse(filled.text, { bom: true });
    expect(after[0]).toEqual(before[0]);
    expect(after.map((r) => r[4])).toEqual(['Grade', '50', '', '', '']);
    expect(after[1]![9]).toBe('mmaplab: 100/100.');
    // Everything but Grade and Feedback comments is kept, "Last modified (grade)" included.
    for (const [i, row] of after.entries()) expect(row.filter((_, c) => c !== 4 && c !== 9)).toEqual(before[i]!.filter((_, c) => c !== 4 && c !== 9));
    expect(after[4]![9]).toBe('Seen in the lab, "good start", see me');
    expect(filled.matched).toEqual(['ada']);
  });

  it('Canvas: matched by its ID, out of Points Possible, in the assignment column; with several assignments one must be named', () => {
    const text = readFileSync(join(FIXTURES, 'grade', 'canvas-gradebook.csv'), 'utf8');
    const rows: string[][] = parse(text);
    expect(canvasAssignments(rows[0]!)).toEqual(['Lab 5: memory mapping (48213)', 'Quiz 2 (48190)']);
    expect(() => fillCanvasGradebook(text, grade(CLASS_OF_FIVE()), undefined)).toThrow('the Canvas gradebook has 2 assignment columns: say which with --canvas-assignment');
    const filled = fillCanvasGradebook(text, grade(CLASS_OF_FIVE()), 'Lab 5: memory mapping');
    const after: string[][] = parse(filled.text);
    expect(after.map((r) => r[5])).toEqual(['Lab 5: memory mapping (48213)', '20', '', '', '18', '']);
    expect(after.map((r) => r.filter((_, c) => c !== 5))).toEqual(rows.map((r) => r.filter((_, c) => c !== 5)));
    expect(filled.matched).toEqual(['hedy']);
  });
});

describe('what else a grade tells', () => {
  it("Gradescope's file: the score and a test per check that has points", () => {
    const r = result('hedy', checkFixture('lamarrhedy-2003'));
    const gs = renderGradescope(r, 'feedback');
    expect(gs).toMatchObject({ score: 90, output: 'feedback', output_format: 'text', visibility: 'visible' });
    expect(gs.tests).toHaveLength(14);
    expect(gs.tests.find((t) => t.name === 'MAP_PRIVATE works or fails cleanly at mmap()')).toMatchObject({ score: 0, max_score: 10, status: 'failed', output: expect.stringMatching(/^SIGBUS at page 0[^\n]*\nFix: /) });
    expect(gs.tests.reduce((s, t) => s + t.max_score, 0)).toBe(100);
  });

  it('comments, whitespace and the skeleton do not make code different; string literals stay', async () => {
    expect(stripComments('a = "//x"; // c\n/* b\n c */ d;')).toBe('a = "//x"; \n\n d;');
    expect(normalizedLines('int  a ;\n\n  // x\nint b;')).toEqual(['inta;', 'intb;']);
    const [a, b, c] = [tmp(), tmp(), tmp()];
    writeFileSync(join(a, 'x.c'), '/* mine */\nint main(void) { return 0; }\nint shared_skeleton;\n');
    writeFileSync(join(b, 'other-name.c'), 'int main(void)\n{\n  return 0; // honest\n}\nint shared_skeleton;\n');
    writeFileSync(join(c, 'skel.c'), 'int shared_skeleton;\n');
    const none = new Set<string>();
    expect(await similarityHash(a, none)).not.toBe(await similarityHash(b, none));
    writeFileSync(join(b, 'other-name.c'), 'int main(void) { return 0; }  // honest\nint shared_skeleton;\n');
    expect(await similarityHash(a, none)).toBe(await similarityHash(b, none));
    expect(await similarityHash(c, new Set(['intshared_skeleton;']))).toBeUndefined();
  });

  it('trust: a module linking kprobes or printing record-shaped text is flagged', async () => {
    const d = tmp();
    writeFileSync(join(d, 'm.ko'), Buffer.concat([Buffer.from('\x7fELF\0vmalloc\0register_kprobe\0'), Buffer.from('{"t":"check"}\0')]));
    writeFileSync(join(d, 'ok.ko'), Buffer.from('\x7fELF\0vmalloc\0remap_pfn_range\0'));
    expect((await trustSigns(join(d, 'm.ko'))).map((t) => t.evidence)).toEqual(['register_kprobe', '{"t":']);
    expect(await trustSigns(join(d, 'ok.ko'))).toEqual([]);
  });

  it('the page escapes what students named', () => {
    const html = renderGradeHtml(grade([result('x', checkFixture('typo'), { name: '<script>alert(1)</script>' })]));
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });
});

describe("the guest's two channels", () => {
  const run = (name: string, file: string) => readFileSync(join(FIXTURES, 'runs', name, file), 'utf8');
  it('agree in real checks (a crash in every pass, a kthread bomb): no sign', () => {
    for (const name of ['check-null-deref-mmap', 'check-kthread-bomb-fork']) expect(channelSigns(run(name, 'records.jsonl'), run(name, 'console.log'))).toEqual([]);
  });

  it('a record the kernel log does not bear out, or records out of order, are signs; a cut console is not judged', () => {
    const records = run('check-kthread-bomb-fork', 'records.jsonl');
    const console = run('check-kthread-bomb-fork', 'console.log');
    const forged = records.replace('"t":"exit","check":"oversize","status":135', '"t":"exit","check":"oversize","status":0');
    expect(forged).not.toBe(records);
    expect(channelSigns(forged, console)).toEqual([{ what: "reported results the kernel's own log does not bear out (the records say oversize exited 0; the kernel log has no such end)", evidence: 'records against the kernel log' }]);
    const lines = records.split('\n');
    const start = lines.findIndex((l) => l.includes('"t":"start","check":"readonly"'));
    const moved = [...lines.slice(0, start), ...lines.slice(start + 1), lines[start]].join('\n');
    expect(channelSigns(moved, console).map((s) => s.evidence)).toEqual(['the order of the records']);
    expect(channelSigns(forged, `${console}[mmaplab: 9000 lines (1.2 MiB) the guest printed here are not kept]\n`)).toEqual([]);
  });
});
