/**
 * Every document mmaplab prints with --json or writes as results.json: a run,
 * a check, a matrix of kernels (several --kernel values, `merge`), a graded
 * class. schema/results.schema.json is generated from this type
 * (`npm run schema`), and a unit test fails when the two disagree.
 */
import type { GradeReport } from './grade.js';
import type { CheckReport, MatrixReport, RunReport } from './report.js';

export type ResultsDocument = RunReport | CheckReport | MatrixReport | GradeReport;
