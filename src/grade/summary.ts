/**
 * The class in numbers, from its submissions' results: the score
 * distribution, each check's pass rate, the findings most students share and
 * the identical submissions. The same for one grade and for shards merged.
 */
import type { ClassSummary, GradeReport, RubricStamp, SubmissionResult } from '../model/grade.js';
import { MmaplabError } from '../util/errors.js';
import { byCodeUnits } from './names.js';

function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round = (x: number) => Math.round(x * 100) / 100;

export function summarize(subs: readonly SubmissionResult[], rubric: RubricStamp): ClassSummary {
  const graded = subs.filter((s) => s.status !== 'error');
  const scores = graded.map((s) => s.score);
  const max = rubric.maxScore;
  const distribution = Array.from({ length: 10 }, (_, i) => ({ from: round((i * max) / 10), to: round(((i + 1) * max) / 10), count: 0 }));
  for (const x of scores) distribution[max > 0 ? Math.min(9, Math.floor((x / max) * 10)) : 9]!.count++;
  const findings = new Map<string, { key: string; gist: string; slugs: string[] }>();
  for (const s of graded) for (const f of s.findings) {
    const e = findings.get(f.key) ?? { key: f.key, gist: f.gist, slugs: [] };
    e.slugs.push(s.slug);
    findings.set(f.key, e);
  }
  const bySimilar = new Map<string, string[]>();
  for (const s of subs) if (s.similarityHash) bySimilar.set(s.similarityHash, [...(bySimilar.get(s.similarityHash) ?? []), s.slug]);
  return {
    submissions: subs.length,
    pass: subs.filter((s) => s.status === 'pass').length,
    fail: subs.filter((s) => s.status === 'fail').length,
    error: subs.filter((s) => s.status === 'error').length,
    meanScore: scores.length ? round(scores.reduce((a, b) => a + b, 0) / scores.length) : 0,
    medianScore: median(scores),
    distribution,
    checks: rubric.points.map((p) => ({ id: p.id, title: p.title, passed: graded.filter((s) => s.checks.find((c) => c.id === p.id)?.verdict === 'pass').length, of: graded.length })),
    findings: [...findings.values()].sort((a, b) => b.slugs.length - a.slugs.length || byCodeUnits(a.key, b.key)),
    identical: [...bySimilar.values()].filter((g) => g.length > 1),
  };
}

export function assembleGrade(parts: Omit<GradeReport, 'schemaVersion' | 'tool' | 'command' | 'exitCode' | 'summary'> & { version: string }): GradeReport {
  const { version, ...rest } = parts;
  const submissions = [...rest.submissions].sort((a, b) => byCodeUnits(a.slug, b.slug));
  return {
    schemaVersion: 1,
    tool: { name: 'mmaplab', version },
    command: 'grade',
    exitCode: submissions.some((s) => s.status === 'error') ? 3 : 0,
    ...rest,
    submissions,
    summary: summarize(submissions, rest.rubric),
  };
}

/** Shards of one class (`grade --shard i/n`) as one grade: the same rubric and kernel, every submission once. */
export function mergeGrades(shards: readonly GradeReport[], dir: string): GradeReport {
  const first = shards[0];
  if (!first) throw new MmaplabError('usage', 'nothing to merge');
  for (const s of shards) {
    if (s.rubric.hash !== first.rubric.hash) throw new MmaplabError('usage', `the shards were graded with different rubrics (${first.rubric.hash} and ${s.rubric.hash})`, { hint: 'grade every shard with the same --rubric' });
    if (s.kernel.packageVersion !== first.kernel.packageVersion || s.kernel.release !== first.kernel.release) throw new MmaplabError('usage', `the shards were graded on different kernels (${first.kernel.release} ${first.kernel.packageVersion} and ${s.kernel.release} ${s.kernel.packageVersion})`, { hint: 'pin the kernel: --kernel debian:<suite>@<version>' });
  }
  // Every slice of one --shard i/n series, each once: a class with a slice missing is not the class.
  const sharded = shards.filter((s) => s.shard);
  if (sharded.length) {
    const count = sharded[0]!.shard!.count;
    if (sharded.length !== shards.length || sharded.some((s) => s.shard!.count !== count)) throw new MmaplabError('usage', 'these are not the shards of one --shard i/n series (their n differ, or a whole grade is among them)');
    const have = sharded.map((s) => s.shard!.index);
    const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !have.includes(i));
    const twice = have.filter((x, i) => have.indexOf(x) !== i);
    if (missing.length || twice.length) {
      throw new MmaplabError('usage', `${missing.length ? `shard${missing.length === 1 ? '' : 's'} ${missing.map((i) => `${i}/${count}`).join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing` : `shard ${twice[0]}/${count} is given twice`}: the class would be incomplete`, { hint: 'grade the missing shards (mmaplab grade --shard i/n) and merge them all' });
    }
  }
  const bySlug = new Map<string, SubmissionResult>();
  for (const s of shards.flatMap((x) => x.submissions)) {
    if (bySlug.has(s.slug)) throw new MmaplabError('usage', `submission ${s.slug} is in more than one shard`, { hint: 'merge the shards of one --shard i/n series, each once' });
    bySlug.set(s.slug, s);
  }
  return assembleGrade({
    version: first.tool.version,
    rubric: first.rubric,
    kernel: first.kernel,
    submissions: [...bySlug.values()],
    artifacts: { dir },
    timings: { totalMs: Math.max(...shards.map((s) => s.timings.totalMs)) },
  });
}

/** A grade's results.json (or `grade --json`), checked before it is trusted. */
export function parseGrade(text: string, path: string): GradeReport {
  const bad = (why: string) => new MmaplabError('usage', `${path} is not a grade of mmaplab's: ${why}`, { hint: 'give the results.json each `mmaplab grade --shard i/n` wrote (or its --json)' });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const d = doc as Partial<GradeReport> | null;
  if (!d || typeof d !== 'object' || d.tool?.name !== 'mmaplab' || d.command !== 'grade') throw bad('no mmaplab grade document');
  if (d.schemaVersion !== 1) throw bad(`schemaVersion ${String(d.schemaVersion)}; this mmaplab reads 1`);
  if (!Array.isArray(d.submissions) || typeof d.rubric?.hash !== 'string' || typeof d.kernel?.release !== 'string') throw bad('no submissions, rubric or kernel');
  return d as GradeReport;
}
