/**
 * `mmaplab grade <folder>`: every submission of a class checked as `check`
 * checks one (sandboxed build, a guest restored from the kernel's snapshot,
 * the same verdicts), in parallel guests, and scored by the rubric. A
 * submission that does not compile, crashes or hangs its guest costs only its
 * own time; one mmaplab could not grade is an error of its own, and the class
 * goes on. Checks are cached by what decides them, so grading again re-checks
 * only what changed. Returns data; never prints.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CheckCache, contentHash, type Cached, type CheckKey } from '../grade/cache.js';
import { scoreNothing, scoreReport, type Scored } from '../grade/score.js';
import { similarityHash, skeletonLines } from '../grade/similar.js';
import { discoverClass, stageSubmission, type Submission } from '../grade/submissions.js';
import { assembleGrade } from '../grade/summary.js';
import { channelSigns, trustSigns } from '../grade/trust.js';
import { acquireFor, type SetupOptions } from '../machines/setup.js';
import type { GradeReport, Rubric, RubricStamp, SubmissionResult, TrustSign } from '../model/grade.js';
import type { CheckReport } from '../model/report.js';
import { RunDir } from '../rundir/run-dir.js';
import { stampOf } from '../grade/rubric.js';
import { isMmaplabError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import { Limiter, mapConcurrent } from '../util/limiter.js';
import { cacheRoot, stateRoot } from '../util/paths.js';
import { codeId } from '../util/version.js';
import { checkDriver } from './check.js';
import { byCodeUnits } from '../grade/names.js';

export interface GradeOptions extends SetupOptions {
  folder: string;
  rubric: Rubric;
  /** Submissions checked at once (each in its own guest). */
  jobs: number;
  pages: number;
  /** --force: check again even what the cache holds. */
  force: boolean;
  /** --shard i/n: only the i-th of every n submissions (by name). */
  shard?: { index: number; count: number };
  /** --skeleton: the lab's own code, left out when submissions are compared. */
  skeleton?: string;
  /** One submission graded: for progress lines. */
  onGraded?: (r: SubmissionResult, done: number, total: number) => void;
  /** Whether the user stopped the grade (Ctrl-C): a check cut short then is not cached. */
  stopped?: () => boolean;
}

/** The i-th of every n submissions, in the order of their slugs: the same slice on every machine. */
export function inShard(subs: readonly Submission[], shard: { index: number; count: number } | undefined): Submission[] {
  const sorted = [...subs].sort((a, b) => byCodeUnits(a.slug, b.slug));
  return shard ? sorted.filter((_, i) => i % shard.count === shard.index - 1) : sorted;
}

interface Context {
  opts: GradeOptions;
  dir: RunDir;
  stamp: RubricStamp;
  cache: CheckCache;
  keyBase: Omit<CheckKey, 'content'>;
  skeleton: ReadonlySet<string>;
  guests: Limiter;
  graded: SubmissionResult['graded'];
}

/** The check of one staged submission: from the cache, or run now (and stored). */
async function checkOf(ctx: Context, sub: Submission, root: string, content: string): Promise<Cached & { cached: boolean; resultsJson: string }> {
  const key = CheckCache.key({ content, ...ctx.keyBase });
  const got = ctx.opts.force ? undefined : await ctx.cache.get(key);
  // The key names the kernel; the report says which one it ran on: they must agree.
  const hit = got && got.report.kernel.packageVersion === ctx.keyBase.kernel.packageVersion && got.report.kernel.release === ctx.keyBase.kernel.release ? got : undefined;
  if (hit) {
    // A copy in this grade's directory: the earlier grade's may be gone.
    const copy = ctx.dir.below('checks', sub.slug, 'results.json');
    await mkdir(dirname(copy), { recursive: true });
    await writeFileAtomic(copy, `${JSON.stringify(hit.report, null, 2)}\n`);
    return { ...hit, cached: true, resultsJson: copy };
  }
  const report = await checkDriver({
    ...ctx.opts,
    // The class's progress is one line per submission, not each check's steps.
    onProgress: () => {},
    source: root,
    device: undefined,
    pattern: undefined,
    pages: ctx.opts.pages,
    // A class is graded on the kernel the teacher chose.
    olderOnDrift: false,
    // The grade is mmaplab's checks; a test/ beside a submission's top folder may be another student's.
    labTest: false,
    outputDir: ctx.dir.below('checks', sub.slug),
    guestSlots: ctx.guests,
  });
  const entry = { report, trust: [...(await trustSigns(report.artifacts.module)), ...(await channelsOf(report))] };
  // A check cut short by Ctrl-C is no verdict: the next grade does it again.
  if (!ctx.opts.stopped?.()) await ctx.cache.put(key, entry);
  return { ...entry, cached: false, resultsJson: report.artifacts.resultsJson };
}

/** The consistency signs of a check's run directory (nothing when it kept no records: the driver did not build). */
async function channelsOf(report: CheckReport): Promise<TrustSign[]> {
  const records = await readFile(join(report.artifacts.dir, 'records.jsonl'), 'utf8').catch(() => undefined);
  if (records === undefined) return [];
  // Every boot's console: a booted guest after a crash keeps its own (console-boot2.log, ...).
  const logs = (await readdir(report.artifacts.dir).catch(() => [] as string[])).filter((f) => /^console.*\.log$/.test(f));
  const consoles = await Promise.all(logs.map((f) => readFile(join(report.artifacts.dir, f), 'utf8').catch(() => '')));
  return channelSigns(records, consoles.join('\n'));
}

type Given = Partial<SubmissionResult> & Pick<SubmissionResult, 'contentHash' | 'durationMs' | 'notes'>;

/** A submission's result from who handed it in, its score and what else is known: the one place one is made. */
function resultOf(who: Pick<SubmissionResult, 'slug' | 'name' | 'id' | 'naming' | 'sources'>, scored: Scored, stamp: RubricStamp, graded: SubmissionResult['graded'], more: Given): SubmissionResult {
  return { ...who, status: scored.status, score: scored.score, maxScore: stamp.maxScore, checks: scored.checks, findings: scored.findings, trust: [], graded, ...more };
}

function result(ctx: Context, sub: Submission, scored: Scored, more: Given): SubmissionResult {
  const who = { slug: sub.slug, name: sub.student.name, id: sub.student.id, naming: sub.student.naming, sources: sub.entries.map((e) => e.name) };
  return resultOf(who, scored, ctx.stamp, ctx.graded, more);
}

/**
 * One submission, whatever it does: its own mistakes (nothing to build, a
 * layout no module can be made of) score it; mmaplab's failure marks it
 * error; only a tool missing for every submission stops the class.
 */
async function gradeOne(ctx: Context, sub: Submission): Promise<SubmissionResult> {
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  let notes = [...sub.notes];
  let common: Pick<SubmissionResult, 'contentHash' | 'similarityHash'> = { contentHash: '' };
  try {
    const staged = await stageSubmission(ctx.opts.folder, sub, ctx.dir.below('submissions', sub.slug));
    notes = [...notes, ...staged.notes];
    if (staged.kind === 'no-driver') return result(ctx, sub, scoreNothing(ctx.stamp, staged.why), { contentHash: '', durationMs: ms(), notes: [...notes, staged.why] });
    // All that was handed in decides the check (the lab's test/ beside the driver names the pattern).
    const content = await contentHash(staged.top);
    const similar = await similarityHash(staged.top, ctx.skeleton);
    common = { contentHash: content, ...(similar ? { similarityHash: similar } : {}) };
    const { report, trust, cached, resultsJson } = await checkOf(ctx, sub, staged.root, content);
    const scored = scoreReport(report, ctx.stamp);
    return result(ctx, sub, scored, {
      ...common,
      notes: [...notes, ...report.notes],
      trust,
      check: { resultsJson, cached, module: report.driver.module },
      durationMs: ms(),
    });
  } catch (e) {
    // A tool missing here is missing for every submission: the grade stops.
    if (isMmaplabError(e) && e.kind === 'missing-tool') throw e;
    // A usage error from inside a check is about the submission's files (sources that make no one module, too many files).
    if (isMmaplabError(e) && e.kind === 'usage') {
      const why = `${e.message}${e.hint ? ` (${e.hint})` : ''}`;
      return result(ctx, sub, scoreNothing(ctx.stamp, why), { ...common, durationMs: ms(), notes: [...notes, why] });
    }
    const error = isMmaplabError(e) ? { kind: e.kind, message: e.message } : { kind: 'internal' as const, message: e instanceof Error ? e.message : String(e) };
    const scored = scoreNothing(ctx.stamp, `not graded: ${error.message}`);
    return { ...result(ctx, sub, scored, { ...common, notes, durationMs: ms() }), status: 'error', findings: [], error };
  }
}

export async function gradeClass(opts: GradeOptions): Promise<GradeReport> {
  const t0 = performance.now();
  const subs = inShard(await discoverClass(opts.folder), opts.shard);
  const dir = await RunDir.create(opts);
  const cacheDir = opts.cacheDir ?? cacheRoot();
  // The kernel once, up front: its exact package is part of every check's key.
  const kernel = await acquireFor(opts, cacheDir, opts.onProgress ?? (() => {}));
  const stamp = stampOf(opts.rubric);
  const mmaplab = await codeId();
  const ctx: Context = {
    opts,
    dir,
    stamp,
    cache: new CheckCache(join(opts.stateDir ?? stateRoot(), 'grade-cache')),
    keyBase: {
      kernel: { release: kernel.release, packageVersion: kernel.packageVersion, flavour: kernel.flavour },
      mmaplab,
      options: { pages: opts.pages, timeoutS: opts.timeoutS, buildTimeoutS: opts.buildTimeoutS ?? 300, memoryMb: opts.memoryMb, accel: opts.accel },
    },
    skeleton: await skeletonLines(opts.skeleton),
    guests: new Limiter(opts.jobs),
    graded: { mmaplab, kernel: kernel.release, kernelPackage: kernel.packageVersion, rubricHash: stamp.hash },
  };
  let done = 0;
  const submissions = await mapConcurrent(subs, opts.jobs, async (sub) => {
    const r = await gradeOne(ctx, sub);
    opts.onGraded?.(r, ++done, subs.length);
    return r;
  });
  const report = assembleGrade({
    version: mmaplab,
    rubric: stamp,
    kernel: { spec: opts.kernel, release: kernel.release, packageVersion: kernel.packageVersion },
    ...(opts.shard ? { shard: opts.shard } : {}),
    submissions,
    artifacts: { dir: dir.path },
    timings: { totalMs: Math.round(performance.now() - t0) },
  });
  await dir.writeResults(report);
  return report;
}

/** One `check` scored as a class of one (`check --gradescope`): the same score `grade` would give it. */
export async function scoreCheck(report: CheckReport, rubric: Rubric): Promise<{ result: SubmissionResult; rubric: RubricStamp }> {
  const stamp = stampOf(rubric);
  const scored = scoreReport(report, stamp);
  const mmaplab = await codeId();
  const who = { slug: 'submission', name: report.driver.source, id: '', naming: 'plain' as const, sources: [report.driver.source] };
  const result = resultOf(who, scored, stamp, { mmaplab, kernel: report.kernel.release, kernelPackage: report.kernel.packageVersion, rubricHash: stamp.hash }, {
    notes: report.notes,
    contentHash: '',
    trust: await trustSigns(report.artifacts.module),
    check: { resultsJson: report.artifacts.resultsJson, cached: false, module: report.driver.module },
    durationMs: report.timings?.totalMs ?? 0,
  });
  return { result, rubric: stamp };
}
