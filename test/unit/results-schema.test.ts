/**
 * The JSON contract (schema/results.schema.json): generated from the model,
 * so it cannot drift from it; every captured document and every document
 * the model assembles from captured runs matches it; and it is strict enough
 * to be worth relying on: a wrong kind, a missing field, a wrong type or a
 * field the model does not name is rejected.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resultsSchemaText } from '../schema/schema.js';
import { DEFAULT_RUBRIC_TEXT, parseRubric, stampOf } from '../../src/grade/rubric.js';
import { scoreNothing, scoreReport } from '../../src/grade/score.js';
import { assembleGrade, mergeGrades } from '../../src/grade/summary.js';
import { mergeDocuments } from '../../src/matrix/merge.js';
import { assembleMatrix, kernelError } from '../../src/matrix/model.js';
import type { GradeReport, SubmissionResult } from '../../src/model/grade.js';
import type { CheckReport, MatrixReport, RunReport } from '../../src/model/report.js';
import { MmaplabError } from '../../src/util/errors.js';
import { FIXTURES } from '../helpers.js';
import { definitionOf, expectValidResults, rootAccepts, schemaErrors, SCHEMA_PATH } from '../support/schema.js';
import { fixtureReport } from './fixture-runs.js';

/** Every JSON file under test/fixtures that is an mmaplab document (tool.name 'mmaplab'). */
function capturedDocuments(dir = FIXTURES): Array<{ path: string; doc: unknown }> {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return capturedDocuments(path);
    if (!e.name.endsWith('.json')) return [];
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { tool?: { name?: unknown } };
    return doc.tool?.name === 'mmaplab' ? [{ path: relative(FIXTURES, path), doc }] : [];
  });
}

const load = <T>(...parts: string[]) => JSON.parse(readFileSync(join(FIXTURES, ...parts), 'utf8')) as T;

const STAMP = stampOf(parseRubric(DEFAULT_RUBRIC_TEXT, 'default'));

function submission(slug: string, report: CheckReport | undefined, more: Partial<SubmissionResult> = {}): SubmissionResult {
  const s = report ? scoreReport(report, STAMP) : scoreNothing(STAMP, 'no driver');
  return {
    slug, name: slug, id: '', naming: 'plain', sources: [slug], status: s.status, score: s.score, maxScore: STAMP.maxScore, checks: s.checks, findings: s.findings,
    notes: [], contentHash: slug, trust: [], graded: { mmaplab: 't', kernel: '6.1.0-57-cloud-amd64', kernelPackage: '6.1.192-3', rubricHash: STAMP.hash }, durationMs: 1, ...more,
  };
}

/** A class graded from the captured check reports of test/fixtures/grade, as `grade` assembles it. */
function gradedClass(shard?: { index: number; count: number }): GradeReport {
  const subs = [
    submission('ada', load('grade', 'check-ada-lovelace-1001.json'), { name: 'Ada Lovelace', id: '1001', naming: 'moodle', similarityHash: 'h1', check: { resultsJson: '/x/ada/results.json', cached: false, module: 'vmmap' } }),
    submission('hedy', load('grade', 'check-lamarrhedy-2003.json'), { name: 'lamarrhedy', id: '2003', naming: 'canvas', trust: [{ what: 'writes to the console', evidence: 'printk' }] }),
    submission('typo', load('grade', 'check-typo.json')),
    submission('margaret', undefined, { status: 'error', error: { kind: 'boot', message: 'the guest did not boot' } }),
  ];
  const g = assembleGrade({ version: 't', rubric: STAMP, kernel: { spec: 'debian:bookworm', release: '6.1.0-57-cloud-amd64', packageVersion: '6.1.192-3' }, submissions: subs, artifacts: { dir: '/x', feedbackDir: '/x/feedback', page: '/x/index.html' }, timings: { totalMs: 1 } });
  return shard ? { ...g, shard } : g;
}

describe('the schema is the model', () => {
  it('schema/results.schema.json is what ts-json-schema-generator makes of src/model/documents.ts today (else: npm run schema)', () => {
    expect(readFileSync(SCHEMA_PATH, 'utf8'), 'the committed schema differs from the model: run `npm run schema` and commit it').toBe(resultsSchemaText());
  }, 60_000);

  it('has a definition for each document, chosen by its kind or command; tagged unions as consts; no field the model does not name', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as { $schema: string; definitions: Record<string, { anyOf?: Array<{ properties: { kind: { const: string } }; required: string[] }>; additionalProperties?: unknown }> };
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    for (const d of ['RunReport', 'CheckReport', 'MatrixReport', 'GradeReport']) expect(schema.definitions[d]?.additionalProperties).toBe(false);
    // The root picks the definition by the document's tag, one for each document of the model's union.
    type Branch = { then: { $ref: string }; else: Branch | false };
    const chosen: string[] = [];
    for (let at: Branch | false = schema as unknown as Branch; at; at = at.else) chosen.push(at.then.$ref);
    expect(chosen).toEqual(['#/definitions/MatrixReport', '#/definitions/RunReport', '#/definitions/CheckReport', '#/definitions/GradeReport']);
    const outcomes = schema.definitions.Outcome!.anyOf!;
    expect(outcomes.every((o) => o.required.includes('kind') && typeof o.properties.kind.const === 'string')).toBe(true);
    expect(outcomes.map((o) => o.properties.kind.const)).toEqual(expect.arrayContaining(['ok', 'sigbus', 'crash', 'hang', 'not-run', 'skipped']));
  });
});

describe('documents match it', () => {
  it('every captured document in test/fixtures (real runs, checks and matrices)', () => {
    const docs = capturedDocuments();
    expect(new Set(docs.map((d) => definitionOf(d.doc)))).toEqual(new Set(['RunReport', 'CheckReport', 'MatrixReport']));
    for (const d of docs) expect(schemaErrors(d.doc), d.path).toEqual([]);
  });

  it('run reports assembled from captured consoles, as `run` prints them', () => {
    for (const name of ['seed', 'grid', 'null-deref-mmap', 'warn-mmap']) expectValidResults(JSON.parse(JSON.stringify(fixtureReport(name))));
    expectValidResults(JSON.parse(JSON.stringify(fixtureReport('null-deref-mmap', 'guest-died'))));
  });

  it('matrices: merged from captured runs, and with a kernel that could not be tried', () => {
    const merged = mergeDocuments([{ path: 'a', doc: load('matrix', 'run-bookworm.json') }, { path: 'b', doc: load('matrix', 'run-sid.json') }], { dir: '/m', resultsJson: '/m/results.json' });
    expectValidResults(JSON.parse(JSON.stringify(merged)));
    const check = load<MatrixReport>('matrix', 'check-old-vm-flags.json');
    const failed = [kernelError(new MmaplabError('fetch', 'no such kernel', { hint: 'see mmaplab kernels list' })), kernelError(new Error('boom'))];
    const withErrors = assembleMatrix({ command: 'check', kernels: [...check.kernels, ...failed.map((error, i) => ({ spec: `debian:x${i}`, kind: 'error' as const, error }))], dir: '', resultsJson: '', totalMs: 0 });
    expectValidResults(JSON.parse(JSON.stringify(withErrors)));
  });

  it('a graded class, a shard of one and shards merged', () => {
    for (const g of [gradedClass(), gradedClass({ index: 1, count: 2 }), mergeGrades([gradedClass({ index: 1, count: 1 })], '/y')]) expectValidResults(JSON.parse(JSON.stringify(g)));
  });
});

describe('it rejects what is not the contract', () => {
  const run = () => load<RunReport>('matrix', 'run-bookworm.json');
  const check = () => load<CheckReport>('runs', 'check-null-deref-mmap', 'results.json');
  const matrix = () => load<MatrixReport>('matrix', 'check-old-vm-flags.json');
  const broken: Array<[string, () => unknown, RegExp]> = [
    ['an outcome of a kind there is none of', () => { const r = run(); (r.results[0]!.outcome as { kind: string }).kind = 'exploded'; return r; }, /results\/0\/outcome/],
    ['a run without its status', () => { const r: Partial<RunReport> = run(); delete r.status; return r; }, /must have required property 'status'/],
    ['an exit code as a string', () => ({ ...run(), exitCode: '0' }), /\/exitCode must be (number|equal to one of the allowed values)/],
    ['a field the model does not name', () => ({ ...run(), extra: true }), /must NOT have additional properties.*extra/],
    ['another schemaVersion', () => ({ ...run(), schemaVersion: 3 }), /\/schemaVersion must be equal to constant/],
    ['a check item with a verdict there is none of', () => { const c = check(); (c.items[0] as { verdict: string }).verdict = 'maybe'; return c; }, /items\/0\/verdict/],
    ['a kernel log line without its text', () => { const c = check(); delete (c.kernelLog.lines[0] as Partial<CheckReport['kernelLog']['lines'][0]>).text; return c; }, /kernelLog\/lines\/0 must have required property 'text'/],
    ['a matrix entry of an unknown kind', () => { const m = matrix(); (m.kernels[0] as { kind: string }).kind = 'oops'; return m; }, /kernels\/0/],
    ['a matrix whose report is not a run or check', () => { const m = matrix(); (m.kernels[0] as { report: unknown }).report = { hello: 1 }; return m; }, /kernels\/0/],
    ['a grade whose score is missing', () => { const g: GradeReport = JSON.parse(JSON.stringify(gradedClass())) as GradeReport; delete (g.submissions[0] as Partial<SubmissionResult>).score; return g; }, /submissions\/0 must have required property 'score'/],
    ['a grade with a status there is none of', () => { const g = JSON.parse(JSON.stringify(gradedClass())) as GradeReport; (g.submissions[0] as { status: string }).status = 'late'; return g; }, /submissions\/0\/status/],
    ['a document of no known command', () => ({ ...run(), command: 'lint' }), /neither a run, a check, a matrix nor a grade/],
  ];
  for (const [what, make, why] of broken) {
    it(what, () => {
      const doc = make();
      expect(schemaErrors(doc).join('\n')).toMatch(why);
      // The schema's root, as a CI user validates with it, refuses it too.
      expect(rootAccepts(doc)).toBe(false);
    });
  }
});
