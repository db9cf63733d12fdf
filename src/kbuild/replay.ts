/**
 * Rebuilding a driver after a one-file change without Kbuild's make (check
 * --watch): most of a module rebuild is make reading the kernel's Makefiles,
 * not the compiler. Kbuild records the exact command of every target it made
 * in a .<target>.cmd file beside it; for one changed .c file those are
 * replayed in order (the object, the composite object if the module has
 * several, modpost, the .mod.o only if modpost wrote a different .mod.c,
 * the link), in the same sandbox as the build. Anything else (a header, a
 * Kbuild or Makefile, a file added or removed, two files, no record, a
 * kernel whose commands are not relative to its headers) goes to Kbuild.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverSource } from './driver-source.js';
import type { Diagnostic } from '../model/diagnostic.js';
import { Hasher } from '../util/fsx.js';

/** What the last build in a kept tree was made from: each source file's hash. */
export interface TreeRecord {
  files: Record<string, string>;
  /** The module's file name (lab.ko). */
  ko: string;
  /** The warnings of the last build: a replay compiles one file, and the others' warnings still stand. */
  warnings: Diagnostic[];
}

const RECORD = '.mmaplab-tree.json';

export async function sourceHashes(src: DriverSource): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of src.files) out[f] = new Hasher().add('file', await readFile(join(src.root, f))).digest();
  if (src.generatedKbuild) out['(generated Kbuild)'] = new Hasher().add('kbuild', src.generatedKbuild).digest();
  return out;
}

export async function readTreeRecord(tree: string): Promise<TreeRecord | undefined> {
  const text = await readFile(join(tree, RECORD), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as TreeRecord;
    return r && typeof r.files === 'object' && typeof r.ko === 'string' && Array.isArray(r.warnings) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Forget the tree's last build (before a replay that may fail: the next build then starts afresh). */
export async function forgetTreeRecord(tree: string): Promise<void> {
  await rm(join(tree, RECORD), { force: true });
}

export async function writeTreeRecord(tree: string, record: TreeRecord): Promise<void> {
  await writeFile(join(tree, RECORD), `${JSON.stringify(record)}\n`);
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

async function commandFor(dir: string, file: string): Promise<string | undefined> {
  const text = await readFile(join(dir, `.${file}.cmd`), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : recordedCommand(text, join(dir, file));
}

/**
 * The shell script that rebuilds the module after `changed` (relative to the
 * tree's root) changed, run from the kernel's headers; undefined when a
 * command it needs was not recorded.
 */
export async function replayScript(tree: string, subdir: string, changed: string, ko: string): Promise<string | undefined> {
  const build = join(tree, subdir);
  const mod = ko.replace(/\.ko$/, '');
  const obj = changed.replace(/\.c$/, '.o');
  const objDir = join(tree, obj, '..');
  const objName = obj.split('/').pop()!;
  const compile = await commandFor(objDir, objName);
  const modpost = await commandFor(build, 'Module.symvers');
  const modO = await commandFor(build, `${mod}.mod.o`);
  const link = await commandFor(build, ko);
  if (!compile || !modpost || !modO || !link) return undefined;
  // The module's objects, as Kbuild listed them: the changed file's must be one of them.
  const objects = (await readFile(join(build, `${mod}.mod`), 'utf8').catch(() => '')).split(/\s+/).filter(Boolean);
  if (!objects.includes(join(objDir, objName))) return undefined;
  // A module of several objects links them into <mod>.o first.
  const composite = join(objDir, objName) === join(build, `${mod}.o`) ? undefined : await commandFor(build, `${mod}.o`);
  if (join(objDir, objName) !== join(build, `${mod}.o`) && !composite) return undefined;
  const modC = join(build, `${mod}.mod.c`);
  return [
    'set -e',
    compile,
    ...(composite ? [composite] : []),
    `cp ${quote(modC)} ${quote(`${modC}.before`)}`,
    modpost,
    // modpost rewrites the .mod.c; the same text (no new symbol used) needs no new .mod.o.
    `cmp -s ${quote(modC)} ${quote(`${modC}.before`)} || { ${modO}; }`,
    link,
  ].join('\n');
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
