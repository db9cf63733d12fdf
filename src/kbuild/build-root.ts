/**
 * Per-release build roots: when the host's gcc is not the compiler a kernel was
 * built with (trixie's gcc-14, sid's gcc-16, bullseye's gcc-10), the module is
 * built inside a minimal Debian root of that release holding gcc, make and
 * pahole, made by mmdebstrap without root privileges and cached. The kernel's
 * headers (extracted on the host) and the build tree are bind-mounted at their
 * own paths, so one root serves every kernel of its release, and paths in
 * diagnostics are the host's.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MmaplabError } from '../util/errors.js';
import { run, type ExecOptions, type ExecResult } from '../util/exec.js';
import { exists, installDirAtomic } from '../util/fsx.js';
import { which } from '../util/tools.js';
import { baseSuite } from '../kernel/spec.js';

export interface BuildRoot {
  dir: string;
  /** The Debian suite it was made from, e.g. trixie. */
  suite: string;
  /** gcc-N inside the root. */
  cc: string;
  /** Its full version, e.g. 14.2.0. */
  version: string;
}

/** The Debian release whose default compiler is gcc-N, for kernels that are not Debian's own. */
const SUITE_FOR_GCC: Readonly<Record<number, string>> = { 10: 'bullseye', 12: 'bookworm', 14: 'trixie' };

/** The suite to make a build root from: the kernel's own release, or the release that shipped its gcc. */
export function buildRootSuite(kernelSuite: string | undefined, gccMajor: number): string | undefined {
  const base = kernelSuite === undefined ? undefined : baseSuite(kernelSuite);
  return base || SUITE_FOR_GCC[gccMajor];
}

/** Build roots being made by this process, so kernels of one release share one mmdebstrap run. */
const making = new Map<string, Promise<BuildRoot>>();

export interface BuildRootOptions {
  cacheDir: string;
  /** Debian archive URI (from the host's sources or the user). */
  archive: string;
  keyring: string | undefined;
  onProgress?: (msg: string) => void;
  /** A root whose gcc builds for another architecture: Debian's gcc-N-<package> (x86-64-linux-gnu), whose compiler is <triplet>-gcc-N (x86_64-linux-gnu-gcc-N). */
  cross?: { triplet: string; package: string } | undefined;
}

export function buildRootDir(cacheDir: string, suite: string, gccMajor: number, crossTriplet?: string): string {
  return join(cacheDir, 'build-roots', buildRootName(suite, gccMajor, crossTriplet));
}

function buildRootName(suite: string, gccMajor: number, crossTriplet?: string): string {
  return `${suite}-gcc${gccMajor}${crossTriplet ? `-${crossTriplet}` : ''}`;
}

export async function ensureBuildRoot(suite: string, gccMajor: number, opts: BuildRootOptions): Promise<BuildRoot> {
  const final = buildRootDir(opts.cacheDir, suite, gccMajor, opts.cross?.triplet);
  let p = making.get(final);
  if (!p) {
    p = makeBuildRoot(final, suite, gccMajor, opts);
    making.set(final, p);
    p.catch(() => making.delete(final));
  }
  return p;
}

async function makeBuildRoot(final: string, suite: string, gccMajor: number, opts: BuildRootOptions): Promise<BuildRoot> {
  const infoPath = join(final, 'root.json');
  if (await exists(infoPath)) return { ...(JSON.parse(await readFile(infoPath, 'utf8')) as BuildRoot), dir: join(final, 'root') };
  if (!which('mmdebstrap')) {
    throw new MmaplabError('missing-tool', `mmdebstrap not found: the kernel was built with gcc ${gccMajor}, which this host lacks, so mmaplab builds in a ${suite} root`, {
      hint: `install the package mmdebstrap (or gcc-${gccMajor}, if this host's release has it)`,
    });
  }
  opts.onProgress?.(`making a ${suite} build root with gcc-${gccMajor} (once; about 300 MB)`);
  await installDirAtomic(final, async (staging) => {
    const tar = join(staging, 'root.tar');
    const cc = opts.cross ? `${opts.cross.triplet}-gcc-${gccMajor}` : `gcc-${gccMajor}`;
    const pkg = opts.cross ? `gcc-${gccMajor}-${opts.cross.package}` : cc;
    const args = [
      '--variant=apt',
      `--include=${pkg},make,libc6-dev,dwarves`,
      '--components=main',
      ...(opts.keyring ? [`--keyring=${opts.keyring}`] : []),
      // Sid's Release file may be past its Valid-Until date.
      '--aptopt=Acquire::Check-Valid-Until "false"',
      '--aptopt=Acquire::Languages "none"',
      suite,
      tar,
      opts.archive,
    ];
    const r = await run('mmdebstrap', args, { timeoutMs: 900_000 });
    if (!r.ok) {
      await writeFile(join(final, '..', `${buildRootName(suite, gccMajor, opts.cross?.triplet)}.log`), r.all).catch(() => {});
      throw new MmaplabError('build', `mmdebstrap could not make a ${suite} build root with ${cc}`, {
        details: r.all.trimEnd().split('\n').filter((l) => /^(E:|W:|Err:|error)/i.test(l)).slice(-8),
        hint: `does ${suite} ship ${pkg}? Is ${opts.archive} reachable? Unprivileged mmdebstrap needs user namespaces and /etc/subuid entries (package uidmap)`,
      });
    }
    // Extracted as the current user: the root's files are ours, device nodes are not needed.
    const root = join(staging, 'root');
    await mkdir(root);
    const x = await run('tar', ['-C', root, '-xf', tar, '--exclude=./dev/*', '--no-same-owner', '--delay-directory-restore']);
    await rm(tar, { force: true });
    if (!x.ok) throw new MmaplabError('build', `could not extract the ${suite} build root`, { details: x.all.trimEnd().split('\n').slice(-5) });
    const v = await runInRoot(root, [], [cc, '-dumpfullversion', '-dumpversion']);
    if (!v.ok) throw new MmaplabError('build', `the ${suite} build root's ${cc} does not run`, { details: v.all.trimEnd().split('\n').slice(-5) });
    const info = { suite, cc, version: v.stdout.trim() };
    await writeFile(join(staging, 'root.json'), `${JSON.stringify(info, null, 2)}\n`);
  });
  return { ...(JSON.parse(await readFile(infoPath, 'utf8')) as Omit<BuildRoot, 'dir'>), dir: join(final, 'root') };
}

/**
 * Run a command inside a build root: a user namespace (no root needed) with
 * its own mounts and a /proc (7.2's objtool reads it), the given host
 * directories bind-mounted at the same paths, then chroot.
 */
export async function runInRoot(root: string, binds: readonly string[], argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  for (const b of binds) await mkdir(join(root, b), { recursive: true });
  await mkdir(join(root, 'proc'), { recursive: true });
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = [
    'set -e',
    ...binds.map((b) => `mount --rbind ${q(b)} ${q(join(root, b))}`),
    `cd ${q(join(root, opts.cwd ?? '/'))} 2>/dev/null || true`,
    `exec chroot ${q(root)} /usr/bin/env PATH=/usr/local/bin:/usr/bin:/bin LC_ALL=C.UTF-8 sh -c 'cd "$0" && exec "$@"' ${q(opts.cwd ?? '/')} ${argv.map(q).join(' ')}`,
  ].join('\n');
  const { cwd: _cwd, ...rest } = opts;
  const ns = ['--mount', '--pid', '--fork', `--mount-proc=${join(root, 'proc')}`];
  const r = await run('unshare', ['--map-root-user', ...ns, 'sh', '-c', script], rest);
  // Where unprivileged user namespaces are off, root can still make the mount namespace.
  if (!r.ok && process.getuid?.() === 0 && /unshare: (unshare|write failed)/.test(r.stderr)) return run('unshare', [...ns, 'sh', '-c', script], rest);
  return r;
}
