/**
 * `mmaplab kernels list | fetch | prune`: the kernel cache as a user sees it.
 * list: each cached kernel (which specs resolve to it), its size, the build
 * roots and what else the cache holds. fetch: everything a spec needs offline
 * (kernel, build root, initramfs, test program). prune: kernels no spec
 * resolves to any more (or the ones named), with their builds and initramfs.
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { toolchainFor } from '../kbuild/compiler.js';
import { buildInitramfs } from '../guest/initramfs.js';
import { acquireKernel, parseKernelSpec, type Kernel } from '../kernel/index.js';
import type { Arch } from '../kernel/arch.js';
import { loadCachedKernel, readAliases } from '../kernel/debian.js';
import type { ByteCount, Progress } from '../model/progress.js';
import { buildArchive, snapshotAhead } from '../machines/setup.js';
import type { CachedKernel, CacheListing, PruneResult } from '../model/cache.js';
import type { SnapshotUse } from '../model/report.js';
import type { AccelRequest } from '../vm/accel.js';

/** Disk use of a tree, counting each file once (hard links aside) and symlinks as themselves. */
export async function diskUsage(path: string): Promise<number> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return 0;
  }
  // A snapshot's RAM file is sparse: count what it occupies, not its length.
  if (!st.isDirectory()) return Math.min(st.size, st.blocks * 512);
  let total = st.size;
  for (const n of await readdir(path).catch(() => [] as string[])) total += await diskUsage(join(path, n));
  return total;
}

async function names(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
}

async function aliases(cacheDir: string): Promise<Map<string, string[]>> {
  const byRelease = new Map<string, string[]>();
  for (const a of await readAliases(cacheDir)) byRelease.set(a.release, [...(byRelease.get(a.release) ?? []), `debian:${a.suite} (${a.flavour})`]);
  return byRelease;
}

export async function listCache(cacheDir: string): Promise<CacheListing> {
  const root = join(cacheDir, 'kernels', 'debian');
  const specs = await aliases(cacheDir);
  const kernels: CachedKernel[] = [];
  for (const release of await names(root)) {
    if (release === 'aliases') continue;
    const dir = join(root, release);
    const k = await loadCachedKernel(dir);
    kernels.push({ release, packageVersion: k?.packageVersion ?? '(incomplete)', specs: specs.get(release) ?? [], bytes: await diskUsage(dir), dir });
  }
  const buildRoots = [];
  for (const n of await names(join(cacheDir, 'build-roots'))) {
    if (n.endsWith('.log')) continue;
    buildRoots.push({ name: n, bytes: await diskUsage(join(cacheDir, 'build-roots', n)), dir: join(cacheDir, 'build-roots', n) });
  }
  const other = [
    { name: 'module and test-program builds', bytes: await diskUsage(join(cacheDir, 'builds')) },
    { name: 'initramfs images', bytes: await diskUsage(join(cacheDir, 'initramfs')) },
    { name: 'snapshots of booted guests', bytes: await diskUsage(join(cacheDir, 'snapshots')) },
    { name: 'unpacked local kernels (PVH boot)', bytes: await diskUsage(join(cacheDir, 'vmlinux')) },
  ];
  const totalBytes = [...kernels, ...buildRoots, ...other].reduce((a, x) => a + x.bytes, 0);
  return { cacheDir, kernels, buildRoots, other, totalBytes };
}

export interface FetchOptions {
  cacheDir: string;
  flavour: string;
  arch?: Arch | undefined;
  archiveUri: string | undefined;
  securityUri: string | undefined;
  /** Make the kernel's snapshot too (the guest memory and accelerator of the runs to come); false: --no-snapshot. */
  snapshot: false | { memoryMb: number; accel: AccelRequest };
  onProgress?: Progress;
}

/**
 * Everything a later run on this spec needs without a network, and its
 * snapshot, so the first run after it is as fast as any: the newest kernel, its
 * build root, initramfs and test program, and the booted guest saved.
 */
export async function fetchAhead(spec: string, opts: FetchOptions): Promise<{ kernel: Kernel; compiler: string; snapshot: SnapshotUse | undefined }> {
  const progress: Progress = opts.onProgress ?? (() => {});
  const onFetch = (m: string, bytes?: ByteCount) => progress('fetch', m, bytes ? { bytes } : undefined);
  const kernel = await acquireKernel(parseKernelSpec(spec, opts.flavour, opts.arch), { cacheDir: opts.cacheDir, archiveUri: opts.archiveUri, securityUri: opts.securityUri, refresh: true, onProgress: onFetch });
  const archive = buildArchive(opts);
  const snapshot = opts.snapshot;
  const [tc, snap] = await Promise.all([
    toolchainFor(kernel, { cacheDir: opts.cacheDir, archive: archive.uri, keyring: archive.keyring, onProgress: (m) => progress('build', m) }),
    // The initramfs (with the test program in it) is built on the way.
    snapshot ? snapshotAhead(kernel, { cacheDir: opts.cacheDir, ...snapshot, progress, archiveUri: opts.archiveUri, securityUri: opts.securityUri }) : buildInitramfs(kernel, opts.cacheDir, opts).then(() => undefined),
  ]);
  return { kernel, compiler: tc.describe, snapshot: snap };
}

/**
 * Remove cached kernels: the named releases or specs, or else every kernel no
 * spec resolves to (superseded by a newer one), with the module builds and
 * initramfs and snapshots made for them. `all` empties the cache.
 */
export async function pruneCache(cacheDir: string, what: { specs: string[]; flavour: string; all: boolean }): Promise<PruneResult> {
  const removed: PruneResult['removed'] = [];
  const remove = async (path: string, name: string) => {
    const bytes = await diskUsage(path);
    await rm(path, { recursive: true, force: true });
    removed.push({ name, bytes });
  };
  if (what.all) {
    for (const n of await names(cacheDir)) await remove(join(cacheDir, n), n);
    return { removed, freedBytes: removed.reduce((a, r) => a + r.bytes, 0) };
  }
  const listing = await listCache(cacheDir);
  let doomed: CachedKernel[];
  if (what.specs.length) {
    const wanted = what.specs.map((s) => s.trim());
    // A suite names the kernel of --flavour only: debian:bookworm is another kernel for cloud-amd64 and for amd64.
    doomed = listing.kernels.filter((k) => wanted.includes(k.release) || k.specs.some((s) => wanted.some((w) => s === `${w} (${what.flavour})`)));
    const releases = new Set(doomed.map((k) => k.release));
    for (const a of await readAliases(cacheDir)) if (releases.has(a.release)) await rm(a.path, { force: true });
  } else {
    doomed = listing.kernels.filter((k) => k.specs.length === 0);
  }
  for (const k of doomed) {
    await remove(k.dir, `kernel ${k.release}`);
    for (const n of await names(join(cacheDir, 'builds'))) if (n.startsWith(`module-${k.release}-`) || n.startsWith(`probes-${k.release}-`)) await remove(join(cacheDir, 'builds', n), `build ${n}`);
    for (const n of await names(join(cacheDir, 'initramfs'))) if (n.startsWith(`${k.release}-`)) await remove(join(cacheDir, 'initramfs', n), `initramfs ${n}`);
    for (const n of await names(join(cacheDir, 'snapshots'))) if (n.startsWith(`${k.release}-`)) await remove(join(cacheDir, 'snapshots', n), `snapshot ${n}`);
  }
  return { removed, freedBytes: removed.reduce((a, r) => a + r.bytes, 0) };
}
