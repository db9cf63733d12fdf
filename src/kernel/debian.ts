/**
 * Debian kernels: resolve the newest kernel of a suite through its flavour's
 * meta-package, download image + headers with a private apt, extract them with
 * dpkg-deb, and fix the headers up so Kbuild works from the cache.
 */
import { lstat, mkdir, readdir, readFile, readlink, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { MmaplabError } from '../util/errors.js';
import { runChecked } from '../util/exec.js';
import { exists, installDirAtomic, sweepStaging, writeFileAtomic } from '../util/fsx.js';
import { findDebianArchives, readHostSources, type DebianArchives } from './apt-sources.js';
import { PrivateApt, type AptLine } from './apt.js';
import { archOfFlavour, hostArch, type Arch } from './arch.js';
import type { KernelSpec } from './spec.js';
import type { Kernel } from './types.js';
import type { ByteCount } from '../model/progress.js';

export interface DebianFetchOptions {
  cacheDir: string;
  /** Archive URIs given by the user; otherwise taken from the host's apt sources. */
  archiveUri?: string | undefined;
  securityUri?: string | undefined;
  /** Re-resolve "newest" even when a kernel for this suite is cached. */
  refresh?: boolean;
  /** A line of progress; bytes while a download runs. */
  onProgress?: (msg: string, bytes?: ByteCount) => void;
}

type DebianSpec = Extract<KernelSpec, { kind: 'debian' }>;

const KERNEL_JSON = 'kernel.json';

export function debianArchives(opts: Pick<DebianFetchOptions, 'archiveUri' | 'securityUri'>, env = process.env): DebianArchives {
  const host = findDebianArchives(readHostSources());
  const fallbackKeyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
  return {
    archive: opts.archiveUri ?? env.MMAPLAB_DEBIAN_ARCHIVE ?? host.archive,
    security: opts.securityUri ?? env.MMAPLAB_DEBIAN_SECURITY_ARCHIVE ?? host.security,
    signedBy: host.signedBy ?? fallbackKeyring,
  };
}

/** The suites to list for a spec: a stable release also has -updates and -security. */
export function aptLinesFor(suite: string, a: DebianArchives): AptLine[] {
  if (!a.archive) return [];
  const line = (uri: string, s: string): AptLine => ({ uri, suite: s, components: ['main'], signedBy: a.signedBy });
  if (suite === 'sid' || suite === 'unstable' || suite.endsWith('-backports') || suite === 'experimental') {
    return [line(a.archive, suite)];
  }
  const lines = [line(a.archive, suite), line(a.archive, `${suite}-updates`)];
  if (a.security) lines.push(line(a.security, `${suite}-security`));
  return lines;
}

/** A private apt of a suite's lists, for packages of arches (the first the native one). */
export function privateAptFor(dir: string, suite: string, archives: DebianArchives, arches: readonly Arch[]): Promise<PrivateApt> {
  // Sid's Release file may be past its Valid-Until by the time it is read.
  const rolling = ['sid', 'unstable', 'experimental'].includes(suite);
  return PrivateApt.create(dir, aptLinesFor(suite, archives), rolling ? ['-o', 'Acquire::Check-Valid-Until=false'] : [], arches);
}

function kernelsDir(cacheDir: string): string {
  return join(cacheDir, 'kernels', 'debian');
}

function aliasPath(cacheDir: string, spec: Pick<DebianSpec, 'suite' | 'flavour'>): string {
  return join(kernelsDir(cacheDir), 'aliases', `${spec.suite}_${spec.flavour}.json`);
}

/** Which release each cached suite and flavour resolved to; `path` is the alias file (remove it to forget). */
export async function readAliases(cacheDir: string): Promise<Array<{ suite: string; flavour: string; release: string; path: string }>> {
  const dir = join(kernelsDir(cacheDir), 'aliases');
  const out = [];
  for (const f of (await readdir(dir).catch(() => [] as string[])).sort()) {
    const m = /^(.+)_([^_]+)\.json$/.exec(f);
    if (!m) continue;
    try {
      const { release } = JSON.parse(await readFile(join(dir, f), 'utf8')) as { release: string };
      out.push({ suite: m[1]!, flavour: m[2]!, release, path: join(dir, f) });
    } catch {
      /* a torn alias is rewritten by the next fetch */
    }
  }
  return out;
}

export async function loadCachedKernel(dir: string): Promise<Kernel | undefined> {
  try {
    const k = JSON.parse(await readFile(join(dir, KERNEL_JSON), 'utf8')) as Omit<Kernel, 'arch'> & { arch?: Arch };
    // Kernels cached before mmaplab knew other architectures say none: their flavour does.
    return (await exists(k.image)) && (await exists(k.headersDir)) ? { ...k, arch: k.arch ?? archOfFlavour(k.flavour) ?? 'amd64' } : undefined;
  } catch {
    return undefined;
  }
}

/** A release not cached yet: its image, headers and their parts downloaded, extracted and fixed up into the cache. */
async function fetchRelease(apt: PrivateApt, release: string, version: string, spec: DebianSpec, at: { final: string; work: string; progress: (m: string, bytes?: ByteCount) => void }): Promise<Kernel> {
  const { final, work, progress } = at;
  const signed = `linux-image-${release}`;
  const unsigned = `${signed}-unsigned`;
  const image = (await apt.has(unsigned)) ? unsigned : signed;
  // Sid splits the image: the kernel is in linux-binary-*, its modules in linux-modules-*.
  const imageParts = (await apt.depends(image)).filter((d) => d.startsWith(`linux-binary-${release}`) || d.startsWith(`linux-modules-${release}`));
  const headers = `linux-headers-${release}`;
  // Kbuild's tools (fixdep, modpost) run here: for a kernel of another architecture, the host's build of them.
  const host = hostArch();
  const headerDeps = (await apt.depends(headers)).filter((d) => /^linux-(headers-.*-common|kbuild-)/.test(d)).map((d) => (d.startsWith('linux-kbuild-') && spec.arch !== host ? `${d}:${host}` : d));
  const rest = [...imageParts, headers, ...headerDeps];
  const debs = join(work, 'debs');
  const what = `downloading ${[image, ...rest].join(', ')}`;
  progress(what);
  try {
    await apt.download([image, ...rest], debs, (b) => progress(what, b));
  } catch (e) {
    // An archive may list the -unsigned package and not serve it (bullseye-security answers 404):
    // the signed image holds the same files.
    if (image !== unsigned) throw e;
    progress(`${unsigned} is listed but not served; downloading ${signed} instead`);
    await rm(debs, { recursive: true, force: true });
    await apt.download([signed, ...rest], debs, (b) => progress(`downloading ${signed}`, b));
  }
  await installDirAtomic(final, async (staging) => {
    progress(`extracting kernel ${release}`);
    const rootfs = join(staging, 'root');
    for (const deb of (await readdir(debs)).filter((f) => f.endsWith('.deb'))) {
      await runChecked('fetch', 'dpkg-deb -x', 'dpkg-deb', ['-x', join(debs, deb), rootfs]);
    }
    await relativiseSymlinks(rootfs);
    const k = await describeExtracted(rootfs, final, release, version, spec);
    await fixHeaders(join(staging, relative(final, k.headersDir)));
    await writeFile(join(staging, KERNEL_JSON), `${JSON.stringify(k, null, 2)}\n`);
  });
  const kernel = await loadCachedKernel(final);
  if (!kernel) throw new MmaplabError('fetch', `kernel ${release} was extracted but is incomplete`, { hint: `remove ${final} and retry` });
  return kernel;
}

export async function acquireDebianKernel(spec: DebianSpec, opts: DebianFetchOptions): Promise<Kernel> {
  const progress = opts.onProgress ?? (() => {});
  const root = kernelsDir(opts.cacheDir);
  await sweepStaging(root);
  const alias = aliasPath(opts.cacheDir, spec);
  const name = `debian:${spec.suite}${spec.version ? `@${spec.version}` : ''}`;
  // A pinned version is whichever cached kernel has it (one imported from another machine too).
  if (spec.version) {
    const pinned = await cachedVersion(root, spec);
    if (pinned) return { ...pinned, spec: name };
  }

  if (!opts.refresh && !spec.version) {
    try {
      const { release } = JSON.parse(await readFile(alias, 'utf8')) as { release: string };
      const k = await loadCachedKernel(join(root, release));
      if (k) return { ...k, spec: `debian:${spec.suite}` };
    } catch {
      /* not cached yet */
    }
  }

  const archives = debianArchives(opts);
  if (!archives.archive) {
    throw new MmaplabError('fetch', "no Debian archive found in this host's apt sources", {
      hint: 'give one with --archive-uri URI (or MMAPLAB_DEBIAN_ARCHIVE=URI), and --security-uri for the security suite',
    });
  }

  await mkdir(root, { recursive: true });
  let kernel: Kernel | undefined;
  // All downloads happen in a private staging area that is removed afterwards
  // (or swept by a later run if this one is killed), so apt state is never
  // shared between concurrent runs, nor between the kernels of one matrix.
  const work = join(root, `.staging-${process.pid}-apt-${randomBytes(4).toString('hex')}`);
  try {
    progress(`resolving the newest ${spec.flavour} kernel of ${spec.suite}`);
    const arches = spec.arch === hostArch() ? [spec.arch] : [spec.arch, hostArch()];
    const apt = await privateAptFor(join(work, 'apt'), spec.suite, archives, arches);
    await apt.update();
    const meta = `linux-image-${spec.flavour}`;
    const version = await apt.candidate(meta);
    if (!version) {
      throw new MmaplabError('fetch', `no package ${meta} in debian:${spec.suite}`, {
        hint: `is '${spec.suite}' a Debian suite, and '${spec.flavour}' a flavour it ships for ${spec.arch}?`,
      });
    }
    if (spec.version && version !== spec.version) {
      throw new MmaplabError('fetch', `debian:${spec.suite} no longer serves ${meta} ${spec.version} (it serves ${version}), and no cached kernel has that version`, {
        hint: `copy the cache of a machine that has it (mmaplab kernels export there, mmaplab kernels import here), or grade on debian:${spec.suite}@${version}`,
      });
    }
    const imageMetaDeps = await apt.depends(meta, version);
    const imagePkg = imageMetaDeps.find((d) => d.startsWith('linux-image-') && d !== meta);
    const release = imagePkg?.replace(/^linux-image-/, '').replace(/-unsigned$/, '');
    if (!release) throw new MmaplabError('fetch', `cannot tell which kernel ${meta} ${version} depends on`);

    const final = join(root, release);
    kernel = (await loadCachedKernel(final)) ?? (await fetchRelease(apt, release, version, spec, { final, work, progress }));
    await writeFileAtomic(alias, `${JSON.stringify({ release, packageVersion: version, resolvedAt: new Date().toISOString() })}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { ...kernel, spec: name };
}

/** The cached kernel of a suite and flavour at exactly the pinned package version. */
async function cachedVersion(root: string, spec: DebianSpec): Promise<Kernel | undefined> {
  const dirs = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const d of dirs) {
    if (!d.isDirectory() || d.name.startsWith('.')) continue;
    const k = await loadCachedKernel(join(root, d.name));
    if (k && k.packageVersion === spec.version && k.flavour === spec.flavour && k.suite === spec.suite) return k;
  }
  return undefined;
}

/** Packages link into /usr/src and /usr/lib by absolute paths; inside the cache they must be relative. */
async function relativiseSymlinks(rootfs: string): Promise<void> {
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isSymbolicLink()) {
        const target = await readlink(p);
        if (target.startsWith('/')) {
          await unlink(p);
          await symlink(relative(dirname(p), join(rootfs, target)) || '.', p);
        }
      } else if (e.isDirectory()) {
        await walk(p);
      }
    }
  }
  await walk(rootfs);
}

/**
 * The flavour's Makefile includes the common tree by an absolute /usr/src path;
 * sid's also sets KBUILD_OUTPUT to its /usr/src path. Both become relative to the Makefile.
 */
export function fixHeadersMakefile(text: string): string {
  return text
    .replace(/^KBUILD_OUTPUT\s*:?=\s*\/usr\/src\/\S+$/gm, 'KBUILD_OUTPUT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))')
    .replace(/^(\s*include\s+)\/usr\/src\/(\S+)/gm, (_m, inc: string, rest: string) => `${inc}$(dir $(lastword $(MAKEFILE_LIST)))../${rest}`);
}

async function fixHeaders(headersDir: string): Promise<void> {
  const mk = join(headersDir, 'Makefile');
  const text = await readFile(mk, 'utf8');
  const fixed = fixHeadersMakefile(text);
  if (fixed !== text) await writeFile(mk, fixed);
}

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const p of paths) if (await exists(p)) return p;
  return undefined;
}

async function describeExtracted(rootfs: string, final: string, release: string, version: string, spec: DebianSpec): Promise<Kernel> {
  // Paths are recorded as they will be after the staging directory is renamed.
  const inFinal = (p: string) => join(final, 'root', relative(rootfs, p));
  const image = await firstExisting([join(rootfs, 'boot', `vmlinuz-${release}`), join(rootfs, 'usr/lib/modules', release, 'vmlinuz')]);
  const headersDir = join(rootfs, 'usr/src', `linux-headers-${release}`);
  // Sid ships no /boot/config-*; the headers' .config is the same file.
  const config = await firstExisting([join(rootfs, 'boot', `config-${release}`), join(rootfs, 'usr/lib/modules', release, 'config'), join(headersDir, '.config')]);
  const modulesDir = await firstExisting([join(rootfs, 'lib/modules', release), join(rootfs, 'usr/lib/modules', release)]);
  if (!image || !config || !modulesDir || !(await lstat(headersDir).catch(() => undefined))) {
    throw new MmaplabError('fetch', `the packages of kernel ${release} do not contain an image, config, modules and headers as expected`);
  }
  const systemMap = await firstExisting([join(rootfs, 'boot', `System.map-${release}`), join(rootfs, 'usr/lib/modules', release, 'System.map')]);
  const configText = await readFile(config, 'utf8');
  const compilerText = /^CONFIG_CC_VERSION_TEXT="(.*)"$/m.exec(configText)?.[1] ?? 'unknown';
  return {
    spec: `debian:${spec.suite}`,
    release,
    packageVersion: version,
    suite: spec.suite,
    flavour: spec.flavour,
    arch: spec.arch,
    dir: final,
    image: inFinal(image),
    config: inFinal(config),
    systemMap: systemMap ? inFinal(systemMap) : undefined,
    modulesDir: inFinal(modulesDir),
    headersDir: inFinal(headersDir),
    compilerText,
  };
}
