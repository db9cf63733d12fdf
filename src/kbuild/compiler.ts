/**
 * Choosing the compiler for a kernel module: the one the kernel was built with
 * (CONFIG_CC_VERSION_TEXT), found on the host as gcc-N or as gcc of version N,
 * or in a build root of the release that ships it.
 */
import { MmaplabError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { which } from '../util/tools.js';
import type { Kernel } from '../kernel/types.js';
import { ARCH_INFO, crossPackageSuffix, crossPrefix } from '../kernel/arch.js';
import { buildRootSuite, ensureBuildRoot, type BuildRoot } from './build-root.js';

export interface Toolchain extends Compiler {
  /** Set when the module is built inside a build root rather than on the host. */
  root: BuildRoot | undefined;
  /** e.g. "gcc-14 14.2.0 (trixie build root)". */
  describe: string;
}

export interface Compiler {
  /** What to pass as CC=. */
  cc: string;
  version: string;
}

export function compilerMajor(ccVersionText: string): { name: string; major: number } | undefined {
  // "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", "gcc-10 (Debian 10.2.1-6) 10.2.1 20210110",
  // "x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0" (newer kernels name the cross prefix)
  const m = /^(?:[\w.]+-linux-gnu-)?(gcc|clang)(?:-(\d+))?\s+(?:\([^)]*\)\s+)?(\d+)\./.exec(ccVersionText.trim());
  if (!m) return undefined;
  return { name: m[1]!, major: Number(m[2] ?? m[3]) };
}

async function versionOf(cc: string): Promise<string | undefined> {
  const r = await run(cc, ['-dumpfullversion', '-dumpversion']).catch(() => undefined);
  return r?.ok ? r.stdout.trim() : undefined;
}

/** gcc-N or gcc of major version N on the host (with a cross prefix: aarch64-linux-gnu-gcc-N), if there is one. */
export async function hostCompiler(major: number, prefix = ''): Promise<Compiler | undefined> {
  for (const cc of [`${prefix}gcc-${major}`, `${prefix}gcc`]) {
    if (!which(cc)) continue;
    const v = await versionOf(cc);
    if (v && Number(v.split('.')[0]) === major) return { cc, version: v };
  }
  return undefined;
}

export interface ToolchainOptions {
  cacheDir: string;
  /** Debian archive for build roots; where undefined, a host compiler must match. */
  archive: string | undefined;
  keyring: string | undefined;
  onProgress?: (msg: string) => void;
}

/**
 * The compiler a kernel's modules are built with: the one the kernel was built
 * with, from the host where it matches, else from a build root of the release
 * that ships it.
 */
export async function toolchainFor(kernel: Pick<Kernel, 'compilerText' | 'suite' | 'arch'>, opts: ToolchainOptions): Promise<Toolchain> {
  const want = compilerMajor(kernel.compilerText);
  if (!want || want.name !== 'gcc') {
    throw new MmaplabError('build', `the kernel was built with '${kernel.compilerText}', which mmaplab cannot match yet`);
  }
  // A kernel of another architecture (arm64 on an x86 host) takes Debian's cross gcc of the same version.
  const prefix = crossPrefix(kernel.arch);
  const host = await hostCompiler(want.major, prefix);
  if (host) return { ...host, root: undefined, describe: `${host.cc} ${host.version}` };
  const suite = buildRootSuite(kernel.suite || undefined, want.major);
  const pkg = prefix ? `gcc-${want.major}-${crossPackageSuffix(kernel.arch)}` : `gcc-${want.major}`;
  if (!suite || !opts.archive) {
    throw new MmaplabError('missing-tool', `${prefix}gcc ${want.major} not found: the kernel was built with ${kernel.compilerText}`, {
      hint: `install the package ${pkg}${opts.archive ? '' : ', or give a Debian archive (--archive-uri) so mmaplab can make a build root with it'}`,
    });
  }
  const root = await ensureBuildRoot(suite, want.major, { cacheDir: opts.cacheDir, archive: opts.archive, keyring: opts.keyring, onProgress: opts.onProgress, cross: prefix ? { triplet: ARCH_INFO[kernel.arch].gnuTriplet, package: crossPackageSuffix(kernel.arch) } : undefined });
  return { cc: root.cc, version: root.version, root, describe: `${root.cc} ${root.version} (${root.suite} build root)` };
}
