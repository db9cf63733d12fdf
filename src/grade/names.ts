/**
 * Who handed an entry of a class folder in, read from the name the course
 * platform gave it. Moodle's "Download all submissions" names a folder (or,
 * flat, each file) "Full Name_<participant>_assignsubmission_file_<file>";
 * Canvas names each file "lastnamefirstname_<userid>_<attachmentid>_<file>",
 * with "_LATE" after the name for a late one (and "-1" before the extension
 * for a second file of one name). Anything else is one submission named by
 * the entry itself.
 */
import type { Student } from '../model/grade.js';

export interface EntryName {
  student: Student;
  /** The file's own name inside the submission ('' for a Moodle folder). */
  rest: string;
  /** Canvas's attachment id: the higher of two files of one name is the later upload. */
  attachment?: number;
  late?: boolean;
}

const MOODLE = /^(.+?)_(\d+)_assign(?:submission|feedback)_[a-z]+_?(.*)$/;
const CANVAS = /^([a-z][a-z0-9-]*?)(_late)?_(\d+)_(\d+)_(.+)$/i;
const ARCHIVE = /\.(zip|tar|tar\.gz|tgz)$/i;

export function isArchiveName(name: string): boolean {
  return ARCHIVE.test(name);
}

/** The entry's name without an archive's or a C file's extension (a folder's name is its own: "john.li/"). */
function stem(name: string, isDir: boolean): string {
  return isDir ? name : name.replace(ARCHIVE, '').replace(/\.c$/i, '');
}

/** Order by code units: the same on every machine, whatever its locale (shards rely on it). */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function parseEntryName(entry: string, isDir = false): EntryName {
  const moodle = MOODLE.exec(entry);
  if (moodle) return { student: { name: moodle[1]!.trim(), id: moodle[2]!, naming: 'moodle' }, rest: moodle[3]! };
  const canvas = CANVAS.exec(entry);
  if (canvas) {
    return {
      student: { name: canvas[1]!, id: canvas[3]!, naming: 'canvas' },
      rest: canvas[5]!,
      attachment: Number(canvas[4]),
      ...(canvas[2] ? { late: true } : {}),
    };
  }
  return { student: { name: stem(entry, isDir) || entry, id: '', naming: 'plain' }, rest: entry };
}

/** The key that puts one student's entries together. */
export function studentKey(s: Student): string {
  return s.id ? `${s.naming}:${s.id}` : `${s.naming}:${s.name.toLowerCase()}`;
}

/** A name safe as a file name and an HTML anchor: "ada-lovelace-1001". */
export function slugOf(s: Student): string {
  const base = `${s.name}${s.id ? `-${s.id}` : ''}`
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return base.slice(0, 80) || 'submission';
}

/** Slugs made unique in the class ("-2", "-3" after a repeat, never one another student has). */
export function uniqueSlugs(students: readonly Student[]): string[] {
  const bases = students.map(slugOf);
  const used = new Set<string>();
  // A slug that is some student's own comes first: a suffix never takes it.
  const claimed = new Set(bases);
  return bases.map((base) => {
    let slug = base;
    if (used.has(slug)) {
      let n = 2;
      while (used.has(`${base}-${n}`) || claimed.has(`${base}-${n}`)) n++;
      slug = `${base}-${n}`;
    }
    used.add(slug);
    return slug;
  });
}
