/**
 * `mmaplab grade`'s documents: the rubric, one submission's score with the
 * verdicts behind it, and the class. The terminal table, the CSV roster, the
 * Moodle and Canvas sheets, the feedback files, the summary page, Gradescope's
 * file and `--json` all render this model; `merge` joins shards of it.
 */
import type { ErrorKind } from '../util/errors.js';
import type { Verdict } from './report.js';

/** Points per check of `check` (its item ids), and the score that passes. */
export interface Rubric {
  name: string;
  /** In the order the rubric lists them, which is the order of the columns. */
  points: ReadonlyArray<{ id: string; points: number }>;
  /** A submission passes at this score (default: every point). */
  passScore: number;
}

/** A rubric as scores record it: its hash says which rubric gave the score. */
export interface RubricStamp {
  name: string;
  hash: string;
  maxScore: number;
  passScore: number;
  points: ReadonlyArray<{ id: string; title: string; points: number }>;
}

/** Who handed a submission in, as the platform's download names them. */
export interface Student {
  name: string;
  /** Moodle's participant number, Canvas's user id; '' when the name carries none. */
  id: string;
  /** How the name was read: Moodle's "Full Name_ID_assignsubmission_file_", Canvas's "name_userid_attachmentid_file", or the entry's own name. */
  naming: 'moodle' | 'canvas' | 'plain';
}

/** One check's share of the score. */
export interface ScoredCheck {
  id: string;
  title: string;
  /** missing: the check report has no such item (its step was never reached). */
  verdict: Verdict | 'missing';
  points: number;
  maxPoints: number;
  reason: string;
  hint?: string;
}

/** An explanation a submission's failures share with others: the summary counts students per finding. */
export interface Finding {
  /** Stable: "explain:cow-remap-ignored", "build:int-read-write", "check:leaks". */
  key: string;
  /** What it means in a phrase that reads after "N of M": "ignore remap_pfn_range()'s return value". */
  gist: string;
}

/** A sign that the module might not let the guest report truthfully (the trust model). */
export interface TrustSign {
  what: string;
  /** The undefined symbol or the channel behind it. */
  evidence: string;
}

/**
 * pass / fail: graded (fail is any score below the rubric's pass score, a
 * submission with no driver, a bad archive); error: mmaplab could not grade it.
 */
export type GradeStatus = 'pass' | 'fail' | 'error';

export interface SubmissionResult {
  /** File-name-safe and unique in the class: feedback files and the page's anchors use it. */
  slug: string;
  name: string;
  id: string;
  naming: Student['naming'];
  /** The entries of the class folder it was made of. */
  sources: string[];
  status: GradeStatus;
  score: number;
  maxScore: number;
  checks: ScoredCheck[];
  findings: Finding[];
  /** Why nothing was checked (no driver, an archive refused) or what the grading noticed (two submissions merged). */
  notes: string[];
  /** status error: what failed in mmaplab. */
  error?: { kind: ErrorKind | 'internal'; message: string };
  /** sha256 of the files checked; equal hashes are the same submission. */
  contentHash: string;
  /** Hash of the sources with comments, whitespace and the skeleton's lines removed. */
  similarityHash?: string;
  trust: TrustSign[];
  /** The check's own results.json, and the report was taken from the cache of an earlier grade. */
  check?: { resultsJson: string; cached: boolean; module: string | undefined };
  /** The version of mmaplab, the kernel's exact package and the rubric behind the score. */
  graded: { mmaplab: string; kernel: string; kernelPackage: string; rubricHash: string };
  durationMs: number;
}

export interface ClassSummary {
  submissions: number;
  pass: number;
  fail: number;
  error: number;
  meanScore: number;
  medianScore: number;
  /** Scores in tenths of the maximum: bucket i holds scores in [i/10, (i+1)/10) of it, the last includes the maximum. */
  distribution: Array<{ from: number; to: number; count: number }>;
  /** How many graded submissions passed each check. */
  checks: Array<{ id: string; title: string; passed: number; of: number }>;
  /** The explanations behind the failures, most students first. */
  findings: Array<{ key: string; gist: string; slugs: string[] }>;
  /** Submissions whose sources are the same once comments, whitespace and the skeleton are removed. */
  identical: string[][];
}

export interface GradeReport {
  schemaVersion: 1;
  tool: { name: 'mmaplab'; version: string };
  command: 'grade';
  /** 0: every submission graded, whatever the scores; 3: mmaplab could not grade at least one. */
  exitCode: 0 | 3;
  rubric: RubricStamp;
  kernel: { spec: string; release: string; packageVersion: string };
  /** --shard i/n; a merged class has none. */
  shard?: { index: number; count: number };
  submissions: SubmissionResult[];
  summary: ClassSummary;
  artifacts: { dir: string; feedbackDir?: string; page?: string };
  timings: { totalMs: number };
}
