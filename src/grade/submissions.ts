/**
 * A class folder as course platforms download it, as submissions: one per
 * student, made of every entry the student's name is on (a folder, a .c, an
 * archive, or Canvas's and Moodle's flat files), and each staged into a
 * folder of its own that `check` can read: archives unpacked (refusing what
 * escapes them), wrapper folders stripped, an archive inside a Moodle folder
 * unpacked too. Nothing of a submission is run here.
 */
import { copyFile, lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import type { Student } from '../model/grade.js';
import { listFiles } from '../util/fsx.js';
import { MmaplabError } from '../util/errors.js';
import { byCodeUnits, isArchiveName, parseEntryName, studentKey, uniqueSlugs } from './names.js';
import { Budget, Refusal, unpackArchive } from './unpack.js';

export interface Submission {
  slug: string;
  student: Student;
  /** Names in the class folder. */
  entries: Array<{ name: string; rest: string; attachment?: number }>;
  notes: string[];
}

const JUNK = /^(\.|__MACOSX$|Thumbs\.db$|desktop\.ini$)/;
/** A plain-named loose file is a submission only if it is a driver or an archive (a roster or the worksheet beside them is not). */
const PLAIN_SUBMISSION = /\.(c|zip|tar|tar\.gz|tgz)$/i;

/** The entries of one student, later uploads first where two files share a name. */
function dedupe(entries: Submission['entries'], notes: string[]): Submission['entries'] {
  const byRest = new Map<string, Submission['entries'][number]>();
  for (const e of [...entries].sort((a, b) => (b.attachment ?? 0) - (a.attachment ?? 0))) {
    const key = e.rest.toLowerCase();
    const kept = byRest.get(key);
    if (kept && e.rest) notes.push(`two uploads named ${e.rest}: the later one (${kept.name}) is graded, ${e.name} is not`);
    else byRest.set(key || e.name, e);
  }
  return [...byRest.values()].sort((a, b) => byCodeUnits(a.name, b.name));
}

export async function discoverClass(folder: string): Promise<Submission[]> {
  const info = await lstat(folder).catch(() => undefined);
  if (!info?.isDirectory()) throw new MmaplabError('usage', `${folder} is not a folder`, { hint: "give the folder the platform's download was unpacked into: one folder, .c or archive per student" });
  const groups = new Map<string, { student: Student; entries: Submission['entries'] }>();
  for (const e of (await readdir(folder, { withFileTypes: true })).sort((a, b) => byCodeUnits(a.name, b.name))) {
    if (JUNK.test(e.name) || !(e.isDirectory() || e.isFile())) continue;
    const parsed = parseEntryName(e.name, e.isDirectory());
    if (parsed.student.naming === 'plain' && e.isFile() && !PLAIN_SUBMISSION.test(e.name)) continue;
    const key = studentKey(parsed.student);
    const g = groups.get(key) ?? { student: parsed.student, entries: [] };
    g.entries.push({ name: e.name, rest: e.isDirectory() && parsed.student.naming !== 'plain' ? '' : parsed.rest, ...(parsed.attachment === undefined ? {} : { attachment: parsed.attachment }) });
    groups.set(key, g);
  }
  const list = [...groups.values()];
  const slugs = uniqueSlugs(list.map((g) => g.student));
  return list.map((g, i) => {
    const notes: string[] = [];
    const entries = dedupe(g.entries, notes);
    const folders = entries.filter((e) => e.rest === '' || !e.rest.includes('.') || isArchiveName(e.rest));
    if (folders.length > 1) notes.push(`${folders.length} submissions of one student, graded together: ${folders.map((f) => f.name).join(', ')}`);
    return { slug: slugs[i]!, student: g.student, entries, notes };
  });
}

export type Staged =
  /** top: what was handed in, unwrapped; root: the driver's folder in it. */
  | { kind: 'ok'; top: string; root: string; files: string[]; notes: string[] }
  /** The student's own problem: nothing was checked. */
  | { kind: 'no-driver'; why: string; notes: string[] };

/** Copy a folder's regular files within the submission's budget, never following a link (a link is left out, and said). */
async function copyTree(from: string, to: string, skipped: string[], budget: Budget): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const e of await readdir(from, { withFileTypes: true })) {
    budget.file();
    const src = join(from, e.name);
    if (e.isDirectory()) await copyTree(src, join(to, e.name), skipped, budget);
    else if (e.isFile()) await copyCounted(src, join(to, e.name), budget);
    else skipped.push(`${e.name} (${e.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'})`);
  }
}

async function copyCounted(from: string, to: string, budget: Budget): Promise<void> {
  budget.add((await lstat(from)).size);
  await copyFile(from, to);
}

/** The one folder a submission is wrapped in ("lab5/", "Jane Doe/"), stripped, as often as there is one. */
async function unwrap(dir: string): Promise<string> {
  for (let depth = 0; depth < 4; depth++) {
    const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => !JUNK.test(e.name));
    if (entries.length !== 1 || !entries[0]!.isDirectory()) return dir;
    dir = join(dir, entries[0]!.name);
  }
  return dir;
}

/** Archives inside what was staged (a zip in a Moodle folder), unpacked where they lie, once (an archive in those is left as it is). */
async function unpackInner(root: string, notes: string[], budget: Budget): Promise<string | undefined> {
  const files = await listFiles(root);
  if (files.some((f) => f.endsWith('.c'))) return undefined;
  for (const [i, f] of files.filter((x) => isArchiveName(x)).entries()) {
    // A name of mmaplab's own (not hidden: hidden folders are left out), which nothing the submission holds has.
    const into = join(root, `unpacked-${i}-${randomBytes(4).toString('hex')}`);
    await mkdir(into);
    const r = await unpackArchive(join(root, f), into, budget);
    if (r.kind === 'refused') return `${basename(f)}: ${r.why}`;
    if (r.skipped.length) notes.push(`left out of ${basename(f)}: ${r.skipped.join(', ')}`);
    await rm(join(root, f));
  }
  return undefined;
}

/** File-system errors a submission's own contents cause (names too long, a file where a folder goes): the student's problem, said as such. */
const CONTENT_ERRORS = new Set(['EEXIST', 'ENAMETOOLONG', 'ENOTDIR', 'EISDIR', 'ELOOP', 'EINVAL', 'EILSEQ']);

/** Stage a submission's entries into dest (created, empty) for `check`: all of it within one budget of entries and bytes. */
export async function stageSubmission(folder: string, sub: Submission, dest: string): Promise<Staged> {
  const notes: string[] = [];
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  try {
    return await stageInto(folder, sub, dest, notes);
  } catch (e) {
    if (e instanceof Refusal) return { kind: 'no-driver', why: e.message, notes };
    const code = (e as NodeJS.ErrnoException).code;
    if (code && CONTENT_ERRORS.has(code)) return { kind: 'no-driver', why: `the submission cannot be unpacked as it is (${code}: ${(e as Error).message.slice(0, 160)})`, notes };
    throw e;
  }
}

async function stageInto(folder: string, sub: Submission, dest: string, notes: string[]): Promise<Staged> {
  const budget = new Budget();
  const skipped: string[] = [];
  for (const [i, e] of sub.entries.entries()) {
    const src = join(folder, e.name);
    const st = await lstat(src);
    if (st.isDirectory()) await copyTree(src, dest, skipped, budget);
    else if (isArchiveName(e.name)) {
      const into = sub.entries.length > 1 ? join(dest, `${e.name.replace(/\.(zip|tar|tar\.gz|tgz)$/i, '')}.${i}`) : dest;
      await mkdir(into, { recursive: true });
      const r = await unpackArchive(src, into, budget);
      if (r.kind === 'refused') return { kind: 'no-driver', why: `${e.rest || e.name}: ${r.why}`, notes };
      skipped.push(...r.skipped);
    } else await copyCounted(src, join(dest, e.rest || e.name), budget);
  }
  const inner = await unpackInner(dest, notes, budget);
  if (inner) return { kind: 'no-driver', why: inner, notes };
  if (skipped.length) notes.push(`left out: ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ` and ${skipped.length - 5} more` : ''}`);
  const root = await unwrap(dest);
  const files = (await listFiles(root)).filter((f) => !f.split('/').some((p) => JUNK.test(p)));
  if (!files.some((f) => f.endsWith('.c'))) {
    const found = files.length ? `it holds ${files.slice(0, 4).map((f) => basename(f)).join(', ')}${files.length > 4 ? ', …' : ''}` : 'it is empty';
    return { kind: 'no-driver', why: `no driver: no .c file in the submission (${found})`, notes };
  }
  return { kind: 'ok', top: root, root: await driverFolder(root, files), files, notes };
}

const BUILD_FILE = /(^|\/)(Kbuild|Makefile)$/;

/**
 * Where the driver is: the submission's top folder when it has a source or
 * build file, else the one folder below it that does (the lab's layout
 * handed in whole: kernel/ beside test/; `check` copies the folder above
 * when the driver includes from it).
 */
async function driverFolder(root: string, files: readonly string[]): Promise<string> {
  if (files.some((f) => !f.includes('/') && (f.endsWith('.c') || BUILD_FILE.test(f)))) return root;
  const dirs = [...new Set(files.filter((f) => f.split('/').length === 2 && (f.endsWith('.c') || BUILD_FILE.test(f))).map((f) => f.split('/')[0]!))];
  const withC = dirs.filter((d) => files.some((f) => f.startsWith(`${d}/`) && f.split('/').length === 2 && f.endsWith('.c')));
  // The lab's test/ holds a userspace .c too; the driver is the other one.
  const drivers = withC.length > 1 ? withC.filter((d) => d !== 'test') : withC;
  return drivers.length === 1 ? join(root, drivers[0]!) : root;
}
