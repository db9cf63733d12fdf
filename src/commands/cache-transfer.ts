/**
 * `mmaplab kernels export | import`: the kernels and build roots of one
 * machine's cache as one .tar.gz, for another machine (a TA's, an offline
 * CI). A pinned kernel (debian:<suite>@<version>) that the archive no longer
 * serves is then found there. Snapshots, builds and the KVM verdict are left
 * out: they belong to one machine's QEMU and are made again on first use.
 */
import { lstat, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { exists, writeFileAtomic } from '../util/fsx.js';
import { MmaplabError } from '../util/errors.js';
import { packTrees, unpackTrees } from '../util/tree-archive.js';
import type { Kernel } from '../kernel/index.js';

const PARTS = ['kernels', 'build-roots'] as const;
/** Where a symlink may first stand in each part: inside a kernel's folder (kernels/debian/<release>/...), inside a build root. */
const LINK_DEPTH = { kernels: 4, 'build-roots': 3 } as const;

export interface Exported {
  file: string;
  bytes: number;
  files: number;
  kernels: string[];
}

async function releases(cacheDir: string): Promise<string[]> {
  const dir = join(cacheDir, 'kernels', 'debian');
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => n !== 'aliases' && !n.startsWith('.')).sort();
}

/** The cache's paths one kernel needs: its folder, its suite's alias, the build roots of its suite. */
async function pathsOf(cacheDir: string, k: Pick<Kernel, 'release' | 'suite' | 'flavour'>): Promise<string[]> {
  const out = [join('kernels', 'debian', k.release)];
  const alias = join('kernels', 'debian', 'aliases', `${k.suite}_${k.flavour}.json`);
  if (await exists(join(cacheDir, alias))) out.push(alias);
  for (const r of await readdir(join(cacheDir, 'build-roots')).catch(() => [] as string[])) if (r.startsWith(`${k.suite}-gcc`)) out.push(join('build-roots', r));
  return out;
}

/** Every cached kernel, or only those given (each with its build root). */
export async function exportCache(cacheDir: string, file: string, only?: ReadonlyArray<Pick<Kernel, 'release' | 'suite' | 'flavour'>>): Promise<Exported> {
  const kernels = only ? only.map((k) => k.release) : await releases(cacheDir);
  if (kernels.length === 0) throw new MmaplabError('usage', `the cache ${cacheDir} holds no kernel to export`, { hint: 'fetch them first: mmaplab kernels fetch debian:<suite>' });
  const roots: string[] = [];
  if (only) for (const k of only) roots.push(...(await pathsOf(cacheDir, k)));
  else for (const p of PARTS) if (await exists(join(cacheDir, p))) roots.push(p);
  const { files } = await packTrees(cacheDir, roots, file, (rel) => rel.split('/').some((x) => x.startsWith('.staging-')));
  return { file, bytes: (await stat(file)).size, files, kernels };
}

/** A kernel.json names its files by absolute paths in the cache that wrote it: rewritten for this one. */
async function rebase(kernelDir: string): Promise<void> {
  const path = join(kernelDir, 'kernel.json');
  const k = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown> & { dir: string };
  const old = k.dir;
  const moved = Object.fromEntries(Object.entries(k).map(([key, v]) => [key, typeof v === 'string' && v.startsWith(old) ? kernelDir + v.slice(old.length) : v]));
  await writeFileAtomic(path, `${JSON.stringify(moved, null, 2)}\n`);
}

export interface Imported {
  kernels: string[];
  /** Already in this cache: kept as they were. */
  kept: string[];
}

/** Only real folders are moved into the cache (unpackTrees refuses links there already; this says it twice). */
async function moveFolder(from: string, to: string): Promise<void> {
  if (!(await lstat(from)).isDirectory()) throw new MmaplabError('usage', `${from} in the archive is not a folder: refused`);
  await rename(from, to);
}

export async function importCache(cacheDir: string, file: string): Promise<Imported> {
  if (!(await exists(file))) throw new MmaplabError('usage', `${file}: no such file`);
  await mkdir(cacheDir, { recursive: true });
  const staging = join(cacheDir, `.staging-import-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(staging);
  try {
    await unpackTrees(file, staging, LINK_DEPTH);
    const out: Imported = { kernels: [], kept: [] };
    for (const rel of await releases(staging)) {
      const to = join(cacheDir, 'kernels', 'debian', rel);
      if (await exists(to)) {
        out.kept.push(rel);
        continue;
      }
      await mkdir(join(cacheDir, 'kernels', 'debian'), { recursive: true });
      await moveFolder(join(staging, 'kernels', 'debian', rel), to);
      await rebase(to);
      out.kernels.push(rel);
    }
    // Aliases (which release a suite resolved to) only where this cache has none.
    const aliases = join(staging, 'kernels', 'debian', 'aliases');
    for (const a of await readdir(aliases).catch(() => [] as string[])) {
      const to = join(cacheDir, 'kernels', 'debian', 'aliases', a);
      // An alias is a small file, never a link.
      if (!(await lstat(join(aliases, a))).isFile()) continue;
      if (!(await exists(to))) {
        await mkdir(join(cacheDir, 'kernels', 'debian', 'aliases'), { recursive: true });
        await rename(join(aliases, a), to);
      }
    }
    for (const root of await readdir(join(staging, 'build-roots')).catch(() => [] as string[])) {
      const to = join(cacheDir, 'build-roots', root);
      if (await exists(to)) continue;
      await mkdir(join(cacheDir, 'build-roots'), { recursive: true });
      await moveFolder(join(staging, 'build-roots', root), to);
    }
    return out;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
