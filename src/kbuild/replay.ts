/**
 * Rebuilding a driver after a one-file change without Kbuild's make (check
 * --watch): most of a module rebuild is make reading the kernel's Makefiles,
 * not the compiler. Kbuild records the exact command of every target it made
 * in a .<target>.cmd file beside it; for the one .c file of a one-object
 * module those are replayed in order (the object, modpost, the .mod.o only if
 * modpost wrote a different .mod.c, the link), in the same sandbox as the
 * build. What the build wrote is the untrusted driver's: every file read from
 * the tree must be a plain file of bounded size, and the record of what the
 * tree was built from lives beside it, where the build cannot write.
 *
 * Anything Kbuild would do beyond those commands sends the build to Kbuild: a
 * module of several objects, a header, the Kbuild or Makefile, a file added or
 * removed, EXPORT_SYMBOL (symbol versions, the local-export check), kernels
 * that run record_mcount or trim exports after the compile, a record missing,
 * commands not relative to the kernel's headers; and the build after a failed one.
 */
import { lstat, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { MmaplabError } from '../util/errors.js';

/** What the last build in a kept tree was made from: each source file's hash. */
export interface TreeRecord {
  files: Record<string, string>;
  /** The module's file name (lab.ko). */
  ko: string;
}

/** The record: beside the tree (<keptTree>/src), outside what the build can write. */
const recordPath = (keptTree: string) => join(keptTree, 'record.json');

const MODULE_FILE = /^[A-Za-z0-9_-]{1,64}\.ko$/;
/** Kbuild's .cmd files are some KiB (the dependency list); a bigger one is not Kbuild's. */
const MAX_RECORDED = 1 << 20;

export async function readTreeRecord(keptTree: string): Promise<TreeRecord | undefined> {
  const text = await readFile(recordPath(keptTree), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as TreeRecord;
    return r && typeof r.files === 'object' && typeof r.ko === 'string' && MODULE_FILE.test(r.ko) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Forget the tree's last build (before any build in it: one that fails leaves a tree the next build starts afresh). */
export async function forgetTreeRecord(keptTree: string): Promise<void> {
  await rm(recordPath(keptTree), { force: true });
}

export async function writeTreeRecord(keptTree: string, record: TreeRecord): Promise<void> {
  await writeFile(recordPath(keptTree), `${JSON.stringify(record)}\n`);
}

/** The one file that changed since the tree's last build, if one .c file is all that changed. */
export function oneChangedC(before: Record<string, string>, now: Record<string, string>): string | undefined {
  const names = new Set([...Object.keys(before), ...Object.keys(now)]);
  const changed = [...names].filter((n) => before[n] !== now[n]);
  if (changed.length !== 1) return undefined;
  const [file] = changed;
  return file && before[file] !== undefined && now[file] !== undefined && file.endsWith('.c') ? file : undefined;
}

/** A .cmd file's command, as make would run it: its first line's value with make's escapes undone. */
export function recordedCommand(cmdFile: string, target: string): string | undefined {
  const line = cmdFile.split('\n', 1)[0] ?? '';
  const m = /^(?:saved)?cmd_(\S+) := (.*)$/.exec(line);
  // Only a command for this very target, named by its absolute path (run from the kernel's headers, as make -C does).
  if (!m || m[1] !== target || !target.startsWith('/')) return undefined;
  return m[2]!.replace(/\$\(pound\)/g, '#').replace(/\$\$/g, '$');
}

/** A file the build wrote, read only if it is a plain file of a sane size (a link could name any host file, a FIFO would hang). */
async function readPlain(path: string): Promise<string | undefined> {
  const info = await lstat(path).catch(() => undefined);
  if (!info?.isFile() || info.size > MAX_RECORDED) return undefined;
  return readFile(path, 'utf8').catch(() => undefined);
}

async function commandFor(dir: string, file: string): Promise<{ command: string; text: string } | undefined> {
  const text = await readPlain(join(dir, `.${file}.cmd`));
  const command = text === undefined ? undefined : recordedCommand(text, join(dir, file));
  return command === undefined ? undefined : { command, text: text! };
}

/** Kernel options under which Kbuild does more after the compile than its recorded command (record_mcount, trimmed exports). */
export function kernelAllowsReplay(autoConf: string): boolean {
  return !/^CONFIG_(FTRACE_MCOUNT_USE_RECORDMCOUNT|TRIM_UNUSED_KSYMS)=y$/m.test(autoConf);
}

/**
 * The shell script that rebuilds the module after `changed` (relative to the
 * tree's root; `source` its new text) changed, run from the kernel's headers;
 * undefined where Kbuild must build it.
 */
export async function replayScript(tree: string, subdir: string, changed: string, source: string, ko: string): Promise<string | undefined> {
  if (/\bEXPORT_SYMBOL/.test(source) || !MODULE_FILE.test(ko)) return undefined;
  const build = join(tree, subdir);
  const mod = ko.replace(/\.ko$/, '');
  // A one-object module: its object is <mod>.o, made from this file, and the only one Kbuild listed.
  if (join(tree, changed.replace(/\.c$/, '.o')) !== join(build, `${mod}.o`)) return undefined;
  const objects = (await readPlain(join(build, `${mod}.mod`)))?.split(/\s+/).filter(Boolean);
  if (objects?.length !== 1 || objects[0] !== join(build, `${mod}.o`)) return undefined;
  const compile = await commandFor(build, `${mod}.o`);
  const modpost = await commandFor(build, 'Module.symvers');
  const modO = await commandFor(build, `${mod}.mod.o`);
  const link = await commandFor(build, ko);
  // Symbol versions Kbuild appended to the object's record: the object exported something once.
  if (!compile || !modpost || !modO || !link || compile.text.includes('#SYMVER')) return undefined;
  const modC = join(build, `${mod}.mod.c`);
  return [
    'set -e',
    compile.command,
    `cp ${quote(modC)} ${quote(`${modC}.before`)}`,
    modpost.command,
    // modpost rewrites the .mod.c; the same text (no new symbol used) needs no new .mod.o.
    `cmp -s ${quote(modC)} ${quote(`${modC}.before`)} || { ${modO.command}; }`,
    link.command,
  ].join('\n');
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A source file written into a kept tree the build has written to: through real folders only, never through a link it left. */
export async function writeIntoTree(tree: string, file: string, data: Buffer): Promise<void> {
  let dir = tree;
  for (const part of ['', ...file.split('/').slice(0, -1)]) {
    dir = join(dir, part);
    const info = await lstat(dir).catch(() => undefined);
    if (!info?.isDirectory()) throw new MmaplabError('build', `the build replaced its own folder ${relative(tree, dir) || '.'} with something other than a folder; nothing it made is used`);
  }
  await rm(join(tree, file), { force: true });
  await writeFile(join(tree, file), data, { flag: 'wx' });
}
