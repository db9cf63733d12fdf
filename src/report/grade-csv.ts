/**
 * A graded class as the spreadsheets course platforms read: mmaplab's own
 * roster, and filled-in copies of the sheets the teacher downloaded — Moodle's
 * grading worksheet (matched by its "Participant N" identifier, else by full
 * name; Grade and Feedback comments filled, every other column, "Last
 * modified (grade)" included, kept as the importer compares it) and a Canvas
 * gradebook export (matched by its ID, else by name; the assignment's column
 * filled, the rest as exported). CSV is read and written by csv-parse and
 * csv-stringify, which know quoting, BOMs and embedded newlines.
 */
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import type { GradeReport, SubmissionResult } from '../model/grade.js';
import { MmaplabError } from '../util/errors.js';

export function renderRoster(g: GradeReport): string {
  const header = ['name', 'id', 'score', 'maxScore', 'status', ...g.rubric.points.map((p) => p.id), 'findings', 'notes'];
  const rows = g.submissions.map((r) => [
    r.name,
    r.id,
    r.score,
    r.maxScore,
    r.status,
    ...g.rubric.points.map((p) => r.checks.find((c) => c.id === p.id)?.points ?? 0),
    r.findings.map((f) => f.gist).join('; '),
    [...r.notes, ...(r.error ? [`not graded: ${r.error.message}`] : [])].join('; '),
  ]);
  // Names and reasons are the students' text: a cell starting = + - @ would be a formula in a spreadsheet.
  return stringify([header, ...rows], { escape_formulas: true });
}

/** The score out of the sheet's own maximum, where it has one ("Maximum Grade", "Points Possible"). */
function scaled(r: SubmissionResult, max: number | undefined): string {
  const v = max && max > 0 && r.maxScore > 0 ? (r.score / r.maxScore) * max : r.score;
  return String(Math.round(v * 100) / 100);
}

/** A short feedback text: the score, then each check lost with its fix; HTML-escaped, as Moodle shows the column as HTML. */
export function feedbackComment(r: SubmissionResult): string {
  if (r.status === 'error') return '';
  const lost = r.checks.filter((c) => c.points < c.maxPoints && c.maxPoints > 0);
  const parts = lost.map((c) => `${c.title}: ${c.reason}${c.hint && c.verdict === 'fail' ? ` (fix: ${c.hint})` : ''}`);
  const text = [`mmaplab: ${r.score}/${r.maxScore}.`, ...parts, ...r.notes.filter((n) => /no driver|refused|damaged|not a zip/.test(n))].join(' ');
  return text.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
}

/** A name as compared: accents, case, spaces and punctuation aside, letters of every script kept. */
const nameKey = (s: string) => s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');

/**
 * The submission a sheet's row is: by the platform's ID when the download
 * carried one; else by name, but only a submission that has no ID, whose
 * name is that row's and no other row's (two students of one name, or a row
 * whose ID matches nobody, get nothing rather than someone else's grade).
 */
function matcher(g: GradeReport, naming: 'moodle' | 'canvas', names: readonly string[]) {
  const rowsPerName = new Map<string, number>();
  for (const n of names.map(nameKey)) rowsPerName.set(n, (rowsPerName.get(n) ?? 0) + 1);
  const withoutId = g.submissions.filter((s) => s.id === '');
  return (id: string | undefined, name: string): SubmissionResult | undefined => {
    const byId = id ? g.submissions.find((s) => s.naming === naming && s.id === id) : undefined;
    if (byId) return byId;
    const key = nameKey(name);
    if (!key || rowsPerName.get(key) !== 1) return undefined;
    const same = withoutId.filter((s) => nameKey(s.name) === key || nameKey(s.name) === nameKey(name.split(',').reverse().join(' ')));
    return same.length === 1 ? same[0] : undefined;
  };
}

interface Sheet {
  bom: boolean;
  rows: string[][];
}

function readSheet(text: string, what: string): Sheet {
  try {
    const rows: string[][] = parse(text, { bom: true, relax_column_count: true, skip_empty_lines: true });
    if (rows.length === 0) throw new Error('it is empty');
    return { bom: text.charCodeAt(0) === 0xfeff, rows };
  } catch (e) {
    throw new MmaplabError('usage', `${what} is not a CSV file mmaplab can read: ${(e as Error).message}`);
  }
}

const writeSheet = (s: Sheet) => `${s.bom ? '\ufeff' : ''}${stringify(s.rows)}`;

export interface Filled {
  text: string;
  /** Slugs of the submissions written into the sheet, and those the sheet has no row for. */
  matched: string[];
  unmatched: string[];
}

function column(header: readonly string[], name: string, what: string): number {
  const i = header.findIndex((h) => h.trim().toLowerCase() === name.toLowerCase());
  if (i < 0) throw new MmaplabError('usage', `${what} has no "${name}" column`, { hint: `download it again from the platform: its columns are ${header.slice(0, 8).join(', ')}…` });
  return i;
}

/** Moodle's offline grading worksheet ("Download grading worksheet"), filled in. */
/** The worksheet's columns, or a usage error naming the one missing: read before any submission is graded, and again to fill it. */
export function moodleColumns(text: string, what = 'the Moodle worksheet') {
  const sheet = readSheet(text, what);
  const header = sheet.rows[0]!;
  return {
    sheet,
    ident: column(header, 'Identifier', what),
    fullName: column(header, 'Full name', what),
    grade: column(header, 'Grade', what),
    feedback: header.findIndex((h) => h.trim().toLowerCase() === 'feedback comments'),
    maxCol: header.findIndex((h) => h.trim().toLowerCase() === 'maximum grade'),
  };
}

export function fillMoodleWorksheet(text: string, g: GradeReport, what = 'the Moodle worksheet'): Filled {
  const { sheet, ident, fullName, grade, feedback, maxCol } = moodleColumns(text, what);
  const header = sheet.rows[0]!;
  const matched = new Set<string>();
  const find = matcher(g, 'moodle', sheet.rows.slice(1).map((r) => r[fullName] ?? ''));
  for (const row of sheet.rows.slice(1)) {
    const r = find(/(\d+)\s*$/.exec(row[ident] ?? '')?.[1], row[fullName] ?? '');
    if (!r || r.status === 'error' || matched.has(r.slug)) continue;
    matched.add(r.slug);
    while (row.length < header.length) row.push('');
    row[grade] = scaled(r, maxCol >= 0 ? Number(row[maxCol]) : undefined);
    if (feedback >= 0) row[feedback] = feedbackComment(r);
  }
  return { text: writeSheet(sheet), matched: [...matched], unmatched: g.submissions.filter((s) => !matched.has(s.slug)).map((s) => s.slug) };
}

/** The columns of a Canvas export that are assignments: "Lab 5 (12345)". */
export function canvasAssignments(header: readonly string[]): string[] {
  return header.filter((h) => /\(\d+\)\s*$/.test(h));
}

/** A Canvas gradebook export ("Export Entire Gradebook"), the assignment's column filled. */
/** The export's columns and the assignment's, or a usage error: read before any submission is graded, and again to fill it. */
export function canvasColumns(text: string, assignment: string | undefined, what = 'the Canvas gradebook') {
  const sheet = readSheet(text, what);
  const header = sheet.rows[0]!;
  const student = column(header, 'Student', what);
  const id = column(header, 'ID', what);
  for (const c of ['SIS User ID', 'SIS Login ID', 'Section']) column(header, c, what);
  const choices = canvasAssignments(header);
  const name = assignment ?? (choices.length === 1 ? choices[0] : undefined);
  if (!name) throw new MmaplabError('usage', `${what} has ${choices.length ? `${choices.length} assignment columns` : 'no assignment column'}: say which with --canvas-assignment`, { hint: choices.length ? `one of: ${choices.join('; ')}` : 'add the assignment in Canvas and export the gradebook again' });
  const col = header.findIndex((h) => h === name || h.replace(/\s*\(\d+\)\s*$/, '') === name);
  if (col < 0) throw new MmaplabError('usage', `${what} has no assignment column "${name}"`, { hint: `its assignments: ${choices.join('; ')}` });
  return { sheet, student, id, col };
}

export function fillCanvasGradebook(text: string, g: GradeReport, assignment: string | undefined, what = 'the Canvas gradebook'): Filled {
  const { sheet, student, id, col } = canvasColumns(text, assignment, what);
  const header = sheet.rows[0]!;
  // The row Canvas puts under the header: "    Points Possible", the assignment's maximum.
  const possibleRow = sheet.rows.find((r) => (r[student] ?? '').trim() === 'Points Possible');
  const possible = possibleRow ? Number(possibleRow[col]) : undefined;
  const matched = new Set<string>();
  const students = sheet.rows.slice(1).filter((r) => r !== possibleRow);
  const find = matcher(g, 'canvas', students.map((r) => r[student] ?? ''));
  for (const row of students) {
    const r = find((row[id] ?? '').trim(), row[student] ?? '');
    if (!r || r.status === 'error' || matched.has(r.slug)) continue;
    matched.add(r.slug);
    while (row.length < header.length) row.push('');
    row[col] = scaled(r, possible);
  }
  return { text: writeSheet(sheet), matched: [...matched], unmatched: g.submissions.filter((s) => !matched.has(s.slug)).map((s) => s.slug) };
}
