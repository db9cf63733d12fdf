/**
 * Gradescope's autograder results file (/autograder/results/results.json):
 * the score, one test per rubric check with its points and what the check
 * said, and the text `check` prints as the overall output, so mmaplab runs as
 * a Gradescope autograder. The fields are those Gradescope documents for the
 * file: score, output, output_format, visibility, stdout_visibility, and per
 * test score, max_score, status, name, number, output and visibility.
 */
import type { SubmissionResult } from '../model/grade.js';

export interface GradescopeResults {
  score: number;
  execution_time: number;
  output: string;
  output_format: 'text';
  visibility: 'visible';
  stdout_visibility: 'visible' | 'hidden';
  tests: Array<{ score: number; max_score: number; status: 'passed' | 'failed'; name: string; number: string; output: string; output_format: 'text'; visibility: 'visible' }>;
}

export function renderGradescope(r: SubmissionResult, feedback: string): GradescopeResults {
  return {
    score: r.score,
    execution_time: Math.round(r.durationMs / 1000),
    output: feedback,
    output_format: 'text',
    visibility: 'visible',
    stdout_visibility: 'hidden',
    tests: r.checks
      .filter((c) => c.maxPoints > 0)
      .map((c, i) => ({
        score: c.points,
        max_score: c.maxPoints,
        status: c.verdict === 'pass' ? 'passed' : 'failed',
        name: c.title,
        number: String(i + 1),
        output: [c.reason, c.verdict === 'fail' && c.hint ? `Fix: ${c.hint}` : ''].filter(Boolean).join('\n'),
        output_format: 'text',
        visibility: 'visible',
      })),
  };
}
