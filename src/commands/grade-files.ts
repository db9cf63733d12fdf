/**
 * What a graded class leaves for people: one feedback file per student and
 * the summary page in the grade's directory (always, so nothing is lost),
 * and on request the CSV roster and filled-in copies of the Moodle worksheet
 * and the Canvas gradebook. The renderers decide the contents; this writes.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Chalk } from 'chalk';
import type { GradeReport } from '../model/grade.js';
import type { CheckReport } from '../model/report.js';
import { canvasColumns, fillCanvasGradebook, fillMoodleWorksheet, moodleColumns, renderRoster, type Filled } from '../report/grade-csv.js';
import { renderGradeHtml } from '../report/grade-html.js';
import { renderFeedback } from '../report/grade-text.js';
import { parseResults } from '../rundir/run-dir.js';
import { MmaplabError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsx.js';

export interface GradeFileOptions {
  csv?: string | undefined;
  moodle?: string | undefined;
  canvas?: string | undefined;
  canvasAssignment?: string | undefined;
}

export interface SheetWritten {
  platform: 'moodle' | 'canvas';
  path: string;
  filled: Omit<Filled, 'text'>;
}

const PLAIN = new Chalk({ level: 0 });

async function checkOf(path: string | undefined): Promise<CheckReport | undefined> {
  if (!path) return undefined;
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const doc = parseResults(text, path);
  return doc.kind === 'check' ? doc.report : undefined;
}

async function readSheetFile(path: string, what: string): Promise<string> {
  return readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new MmaplabError('usage', `${what} ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
}

/** The sheets as they will be filled, checked before a class is graded: a worksheet that is missing or not the platform's is a usage error at once, not after the class. */
export async function checkSheets(o: GradeFileOptions): Promise<void> {
  if (o.moodle) moodleColumns(await readSheetFile(o.moodle, 'the Moodle worksheet'));
  if (o.canvas) canvasColumns(await readSheetFile(o.canvas, 'the Canvas gradebook'), o.canvasAssignment);
}

/** The sheets first: a worksheet that cannot be read is a usage error before any file is written. */
export async function fillSheets(g: GradeReport, o: GradeFileOptions): Promise<Array<SheetWritten & { text: string }>> {
  const out: Array<SheetWritten & { text: string }> = [];
  if (o.moodle) {
    const { text, ...filled } = fillMoodleWorksheet(await readSheetFile(o.moodle, 'the Moodle worksheet'), g);
    out.push({ platform: 'moodle', path: join(g.artifacts.dir, 'moodle-grades.csv'), filled, text });
  }
  if (o.canvas) {
    const { text, ...filled } = fillCanvasGradebook(await readSheetFile(o.canvas, 'the Canvas gradebook'), g, o.canvasAssignment);
    out.push({ platform: 'canvas', path: join(g.artifacts.dir, 'canvas-grades.csv'), filled, text });
  }
  return out;
}

/**
 * Where each student's feedback comes from: rendered from the check's report
 * (a grade), or copied from the folder of the shard that graded it (merge:
 * the shards' check reports stayed on their machines).
 */
export type FeedbackSource = { kind: 'render' } | { kind: 'copy'; shardDir: (slug: string) => string | undefined };

/** Writes the files and returns the report with their paths, and the sheets filled. */
export async function writeGradeFiles(g: GradeReport, o: GradeFileOptions, feedback: FeedbackSource = { kind: 'render' }): Promise<{ report: GradeReport; sheets: SheetWritten[] }> {
  const filled = await fillSheets(g, o);
  const feedbackDir = join(g.artifacts.dir, 'feedback');
  await mkdir(feedbackDir, { recursive: true });
  for (const r of g.submissions) {
    const to = join(feedbackDir, `${r.slug}.txt`);
    if (feedback.kind === 'render') await writeFile(to, renderFeedback(r, await checkOf(r.check?.resultsJson), g, PLAIN));
    else {
      const from = feedback.shardDir(r.slug);
      // A shard folder without its feedback (only its results.json was kept) leaves the student's file out, not the class.
      if (from) await copyFile(join(from, 'feedback', `${r.slug}.txt`), to).catch(() => undefined);
    }
  }
  const page = join(g.artifacts.dir, 'index.html');
  const report: GradeReport = { ...g, artifacts: { ...g.artifacts, feedbackDir, page } };
  await writeFileAtomic(page, renderGradeHtml(report));
  await writeFileAtomic(join(g.artifacts.dir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  if (o.csv) await writeFile(o.csv, renderRoster(report));
  for (const s of filled) await writeFile(s.path, s.text);
  return { report, sheets: filled.map(({ text: _t, ...s }) => s) };
}
