/**
 * `mmaplab kernels export | import`: the kernels, build roots, initramfs and
 * snapshots of one machine's cache as one .tar.gz, for another machine (a
 * TA's, an offline CI). A pinned kernel (debian:<suite>@<version>) that the
 * archive no longer serves is then found there, and its snapshot restores
 * where that machine's QEMU is the same (else it is made again, as ever).
 * Builds and the KVM verdict are left out: they are this machine's.
 */
import { lstat, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { exists, writeFileAtomic } from '../util/fsx.js';
import { MmaplabError } from '../util/errors.js';
import { packTrees, unpackTrees } from '../util/tree-archive.js';
import type { Kernel } from '../kernel/index.js';
import { keyHash, type SnapshotKey, type SnapshotMeta } from '../vm/snapshot.js';

const PARTS = ['kernels', 'build-roots', 'initramfs', 'snapshots'] as const;
/** Where a symlink may first stand in each part: inside a kernel's folder (kernels/debian/<release>/...), inside a build root; never among the initramfs and snapshots. */
const LINK_DEPTH = { kernels: 4, 'build-roots': 3, initramfs: 99, snapshots: 99 } as const;

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
  for (const part of ['initramfs', 'snapshots']) {
    for (const r of await readdir(join(cacheDir, part)).catch(() => [] as string[])) if (r.startsWith(`${k.release}-`) && !r.includes('.staging-')) out.push(join(part, r));
  }
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
  /** Snapshots made ready for this cache. */
  snapshots: string[];
}

/** The cache folder of the machine that exported: a kernel.json's dir is <root>/kernels/debian/<release>. */
async function exportingRoot(staging: string): Promise<string | undefined> {
  for (const rel of await releases(staging)) {
    try {
      const k = JSON.parse(await readFile(join(staging, 'kernels', 'debian', rel, 'kernel.json'), 'utf8')) as { dir?: unknown };
      const suffix = `/kernels/debian/${rel}`;
      if (typeof k.dir === 'string' && k.dir.endsWith(suffix)) return k.dir.slice(0, -suffix.length);
    } catch {
      /* the next */
    }
  }
  return undefined;
}

/**
 * A snapshot's key names the files it was made from by their paths in the
 * exporting cache, and their times to the millisecond, which tar keeps to the
 * second. Re-keyed to this cache's copies when each is the file the key
 * names (the same size, the same second); otherwise false: not used. The
 * QEMU binary stays as the key says, so another QEMU makes it stale here.
 */
async function rekeySnapshot(dir: string, oldRoot: string, newRoot: string): Promise<boolean> {
  try {
    const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as SnapshotMeta;
    const moved = (p: string) => (p.startsWith(`${oldRoot}/`) ? newRoot + p.slice(oldRoot.length) : p);
    const restamp = async (f: SnapshotKey['kernel']): Promise<SnapshotKey['kernel'] | undefined> => {
      const path = moved(f.path);
      const st = await stat(path);
      return st.size === f.size && Math.floor(st.mtimeMs / 1000) === Math.floor(f.mtimeMs / 1000) ? { path, size: st.size, mtimeMs: st.mtimeMs } : undefined;
    };
    const kernel = await restamp(meta.key.kernel);
    const initrd = await restamp(meta.key.initrd);
    const ram = await stat(join(dir, 'ram'));
    if (!kernel || !initrd || ram.size !== meta.ram.size) return false;
    const key: SnapshotKey = { ...meta.key, kernel, initrd, args: meta.key.args.map((a) => a.split(`${oldRoot}/`).join(`${newRoot}/`)) };
    await writeFileAtomic(join(dir, 'meta.json'), `${JSON.stringify({ ...meta, key, hash: keyHash(key), ram: { size: ram.size, mtimeMs: ram.mtimeMs } }, null, 2)}\n`);
    return true;
  } catch {
    return false;
  }
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
    const out: Imported = { kernels: [], kept: [], snapshots: [] };
    const oldRoot = await exportingRoot(staging);
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
    for (const f of await readdir(join(staging, 'initramfs')).catch(() => [] as string[])) {
      const to = join(cacheDir, 'initramfs', f);
      if ((await exists(to)) || !(await lstat(join(staging, 'initramfs', f))).isFile()) continue;
      await mkdir(join(cacheDir, 'initramfs'), { recursive: true });
      await rename(join(staging, 'initramfs', f), to);
    }
    if (oldRoot) {
      for (const slot of await readdir(join(staging, 'snapshots')).catch(() => [] as string[])) {
        const to = join(cacheDir, 'snapshots', slot);
        if (await exists(to)) continue;
        await mkdir(join(cacheDir, 'snapshots'), { recursive: true });
        await moveFolder(join(staging, 'snapshots', slot), to);
        if (await rekeySnapshot(to, oldRoot, cacheDir)) out.snapshots.push(slot);
        else await rm(to, { recursive: true, force: true });
      }
    }
    return out;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
