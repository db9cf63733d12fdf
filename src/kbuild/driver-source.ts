/**
 * What to build for a driver the user points at: a directory with its own
 * Kbuild/Makefile, a directory of .c files, or a single .c file. Student
 * drivers often include headers from a sibling folder (the memory-mapping lab's
 * drivers include "../test/mmap-test.h"), so when a driver reaches outside its
 * folder the folder above is copied too and the driver built in place there,
 * unchanged.
 */
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { MmaplabError } from '../util/errors.js';
import { isInside } from '../util/paths.js';

export interface DriverSource {
  /** The tree copied into the build area. */
  root: string;
  /** The driver's folder inside root ('' when root is the driver's folder). */
  subdir: string;
  /** Files to copy, relative to root. */
  files: string[];
  /** A Kbuild to write into the driver's folder when it has none. */
  generatedKbuild: string | undefined;
}

const SOURCE_LIKE = /\.(c|h|S|s|inc)$|^(Kbuild|Makefile|Kconfig)$|\.(mk|mak)$/;
const SKIP_DIR = /^(\.git|node_modules|\.cache|dist|build)$/;
const ARTEFACT = /(\.(o|ko|mod|mod\.c|cmd|order|symvers|d|a|tmp)$)|^Module\.symvers$|^modules\.order$/;
const MAX_FILES = 500;
const MAX_FILE_BYTES = 1 << 20;

/** Every symlink met while listing: where it is, and the real path it leads to (undefined: it leads nowhere). */
type Links = Map<string, string | undefined>;

/**
 * The submission's source files under dir. A symlink counts as the file it
 * names; whether that file is inside the submission is decided once the
 * submission's root is known (see refuseEscapes).
 */
async function listSources(dir: string, recurse: boolean, links: Links = new Map()): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name.startsWith('.') || ARTEFACT.test(e.name)) continue;
      const p = join(d, e.name);
      if (e.isSymbolicLink()) {
        // A source file or a folder by another name: kept to be judged (a folder is never walked through its link).
        const target = await realpath(p).catch(() => undefined);
        const info = target ? await stat(target) : undefined;
        if (!SOURCE_LIKE.test(e.name) && !info?.isDirectory()) continue;
        links.set(p, target);
        if (info?.isFile() && SOURCE_LIKE.test(e.name)) out.push(relative(dir, p));
        continue;
      }
      if (e.isDirectory()) {
        if (recurse && !SKIP_DIR.test(e.name)) await walk(p);
      } else if (e.isFile() && SOURCE_LIKE.test(e.name) && (await stat(p)).size <= MAX_FILE_BYTES) {
        out.push(relative(dir, p));
        if (out.length > MAX_FILES) throw new MmaplabError('usage', `${dir} holds more than ${MAX_FILES} source files; point mmaplab at the driver's own folder`);
      }
    }
  }
  await walk(dir);
  return out.sort();
}

/** A symlink that leaves the submission (or leads nowhere) is a build failure: no host file is copied in, built or quoted. */
async function refuseEscapes(root: string, links: Links): Promise<void> {
  const inside = await realpath(root);
  for (const [link, target] of links) {
    if (target && isInside(target, inside) && !target.startsWith(`${inside}${sep}.`)) continue;
    throw new MmaplabError('build', `${relative(root, link)} is a symlink that leads ${target ? 'outside the submission' : 'nowhere'}`, {
      hint: "the build sees only the submission's own files, the kernel's headers and the compiler: put the file itself in the driver's folder",
    });
  }
}

/** How many folders up the driver's sources reach with "../" includes or -I$(src)/../ flags. */
export function reachUp(texts: readonly string[]): number {
  let up = 0;
  for (const t of texts) {
    for (const m of t.matchAll(/#\s*include\s*"((?:\.\.\/)+)/g)) up = Math.max(up, m[1]!.length / 3);
    for (const m of t.matchAll(/-I\s*\$\((?:src|srctree|M|PWD)\)\/((?:\.\.\/?)+)/g)) up = Math.max(up, m[1]!.split('..').length - 1);
  }
  return Math.min(up, 2);
}

/**
 * What the "../" includes and -I$(src)/../ flags name, relative to the root
 * (the folder `subdir` is in): the first folder of each path, or the file.
 */
export function reachedPaths(texts: readonly string[], subdir: string): string[] {
  const chain = subdir.split('/').filter(Boolean);
  const out = new Set<string>();
  const add = (ups: number, rest: string) => {
    if (ups < 1 || ups > chain.length) return;
    // "../x" from the driver's folder is the folder one up: root plus the chain's first (length - 1) parts.
    const first = rest.split('/').filter(Boolean)[0];
    if (first && first !== '..' && !SKIP_DIR.test(first)) out.add(join(...chain.slice(0, chain.length - ups), first));
  };
  for (const t of texts) {
    for (const m of t.matchAll(/#\s*include\s*"((?:\.\.\/)+)([^"]+)"/g)) add(m[1]!.length / 3, m[2]!);
    for (const m of t.matchAll(/-I\s*\$\((?:src|srctree|M|PWD)\)\/((?:\.\.\/?)+)([\w./-]*)/g)) add(m[1]!.split('..').length - 1, m[2]!);
  }
  return [...out].sort();
}

/** A named file or folder (and what is below it) inside `root`, relative to root; a symlink on the way is judged, not followed. */
async function listNamed(root: string, name: string, links: Links): Promise<string[]> {
  const p = join(root, name);
  const info = await lstat(p).catch(() => undefined);
  if (!info) return [];
  if (info.isSymbolicLink()) {
    links.set(p, await realpath(p).catch(() => undefined));
    return [];
  }
  if (info.isDirectory()) return (await listSources(p, true, links)).map((f) => join(name, f));
  return info.isFile() && SOURCE_LIKE.test(basename(name)) && info.size <= MAX_FILE_BYTES ? [name] : [];
}

/** Folders below the driver's that its includes name ("test" of #include "test/mmap-test.h"). */
export function includedSubdirs(texts: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const t of texts) for (const m of t.matchAll(/#\s*include\s*"((?!\.\.\/)[^"/]+)\/[^"]+"/g)) dirs.add(m[1]!);
  return [...dirs].filter((d) => d !== '.' && !SKIP_DIR.test(d));
}

/** The module name Kbuild will give a single-file driver. */
export function moduleNameOf(file: string): string {
  return basename(file).replace(/\.c$/, '').replace(/-/g, '_');
}

export async function resolveDriverSource(path: string): Promise<DriverSource> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new MmaplabError('usage', `${path} does not exist`);
  const single = info.isFile() ? path : undefined;
  if (single && !single.endsWith('.c')) throw new MmaplabError('usage', `${path} is not a .c file or a driver folder`);
  const dir = single ? dirname(path) : path;

  const links: Links = new Map();
  if (single && (await lstat(single)).isSymbolicLink()) links.set(single, await realpath(single).catch(() => undefined));
  const own = await listSources(dir, false, links);
  const hasKbuild = own.includes('Kbuild') || own.includes('Makefile');
  let driverFiles: string[];
  let generatedKbuild: string | undefined;
  if (single) {
    // One file named: build just it (and the folder's headers), whatever else the folder holds.
    driverFiles = [basename(single), ...own.filter((f) => f.endsWith('.h'))];
    generatedKbuild = `obj-m := ${basename(single, '.c')}.o\n`;
  } else if (hasKbuild) {
    driverFiles = own;
  } else {
    const cs = own.filter((f) => f.endsWith('.c'));
    if (cs.length === 0) throw new MmaplabError('usage', `${dir} has no Kbuild, Makefile or .c file`);
    driverFiles = own;
    if (cs.length === 1) {
      generatedKbuild = `obj-m := ${basename(cs[0]!, '.c')}.o\n`;
    } else {
      // Several files make one module, named after the folder.
      const name = moduleNameOf(`${basename(dir)}.c`);
      if (cs.includes(`${name}.c`)) throw new MmaplabError('usage', `${dir}: cannot make one module of ${cs.join(', ')}: add a Kbuild`);
      generatedKbuild = `obj-m := ${name}.o\n${name}-y := ${cs.map((c) => c.replace(/\.c$/, '.o')).join(' ')}\n`;
    }
  }

  const texts = await Promise.all(driverFiles.map((f) => readFile(join(dir, f), 'utf8')));
  // The lab's own layout keeps its header in test/ below the driver: #include "test/mmap-test.h".
  for (const sub of includedSubdirs(texts)) {
    const files = await listNamed(dir, sub, links);
    driverFiles.push(...files.filter((f) => !driverFiles.includes(f)));
  }
  const up = reachUp(texts);
  if (up === 0) {
    await refuseEscapes(dir, links);
    return { root: dir, subdir: '', files: driverFiles, generatedKbuild };
  }
  let root = dir;
  for (let i = 0; i < up; i++) root = dirname(root);
  const subdir = relative(root, dir);
  // Only what the includes name comes in from above (the lab's test/), not the whole folder: it may hold other people's work.
  const siblings: string[] = [];
  for (const p of reachedPaths(texts, subdir)) siblings.push(...(await listNamed(root, p, links)).filter((f) => !f.startsWith(`${subdir}/`) && !siblings.includes(f)));
  await refuseEscapes(root, links);
  return { root, subdir, files: [...driverFiles.map((f) => join(subdir, f)), ...siblings].sort(), generatedKbuild };
}

/** The submission's sources, or undefined when it is refused as it is read (a symlink out of it): a failed build, reported as such once the kernel is known. */
export async function driverSourceOrRefused(path: string): Promise<DriverSource | undefined> {
  return resolveDriverSource(path).catch((e: unknown) => {
    if (e instanceof MmaplabError && e.kind === 'build') return undefined;
    throw e;
  });
}
