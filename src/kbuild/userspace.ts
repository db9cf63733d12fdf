/** Building the static programs that run inside the guest: the test program and the agent's guest-sync. */
import { existsSync } from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MmaplabError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { exists, Hasher, installDirAtomic } from '../util/fsx.js';
import { parseDiagnostics } from './diagnostics.js';
import { formatDiagnostic } from '../model/diagnostic.js';
import { ARCH_INFO, crossPackageSuffix, hostArch, type Arch } from '../kernel/arch.js';
import { which } from '../util/tools.js';

export interface ProgramBuild {
  path: string;
  cached: boolean;
}

export const TEST_PROGRAM_CFLAGS = ['-static', '-O2', '-Wall', '-Wextra', '-Werror'] as const;

/**
 * gcc's words for a missing static C library: no -lc at link time, or (-m32
 * without libc6-dev-i386 or gcc-multilib's asm link) no 32-bit headers.
 */
export function lacksStaticLibc(gccOutput: string): boolean {
  return /cannot find -lc\b|fatal error: (?:bits\/libc-header-start\.h|gnu\/stubs-32\.h|asm\/errno\.h): No such file or directory/.test(gccOutput);
}

/**
 * The compiler of a static program for arch on this host, and the packages
 * that bring it (with its C library): the host's gcc for its own; Debian's
 * cross gcc for another (i686-linux-gnu-gcc, aarch64-linux-gnu-gcc), which
 * for i386 on amd64 may also be the host's gcc -m32 where gcc-multilib is
 * installed instead (it conflicts with every cross gcc, so both cannot be).
 */
export function userCompiler(arch: Arch, onPath: (cmd: string) => boolean = (c) => which(c) !== undefined): { cc: string; flags: readonly string[]; packages: string } {
  const info = ARCH_INFO[arch];
  if (arch === hostArch()) return { cc: 'gcc', flags: [], packages: 'libc6-dev' };
  // Userspace needs a cross C library even where Kbuild needs no cross prefix (i386 on amd64): the triplet's, always.
  const cross = { cc: `${info.gnuTriplet}-gcc`, flags: [], packages: `gcc-${crossPackageSuffix(arch)} libc6-dev-${arch}-cross` };
  if (arch === 'i386' && hostArch() === 'amd64' && !onPath(cross.cc) && existsSync('/usr/include/asm') && existsSync('/usr/include/x86_64-linux-gnu/gnu/stubs-32.h')) return { cc: 'gcc', flags: info.userCflags, packages: 'gcc-multilib' };
  return cross;
}

/** One C file into a static program for arch named after it (mmap-test.c -> mmap-test), cached by compiler, flags and source. */
export async function buildStaticProgram(sourceFile: string, cacheDir: string, arch: Arch = 'amd64'): Promise<ProgramBuild> {
  const name = basename(sourceFile, '.c');
  const { cc, flags: archFlags, packages } = userCompiler(arch);
  const flags = [...TEST_PROGRAM_CFLAGS, ...archFlags];
  if (!which(cc)) throw new MmaplabError('missing-tool', `${cc} not found: it builds the ${arch} guest's programs`, { hint: `install the Debian/Ubuntu package ${packages}` });
  const gccVersion = await run(cc, ['-dumpfullversion']);
  const key = (await new Hasher().add('gcc', gccVersion.stdout).add('cc', cc).add('flags', flags.join(' ')).addFile('src', sourceFile)).digest();
  const entry = join(cacheDir, 'builds', `${name}-${arch === 'amd64' ? '' : `${arch}-`}${key}`);
  const path = join(entry, name);
  if (await exists(path)) return { path, cached: true };
  await installDirAtomic(entry, async (staging) => {
    const src = join(staging, `${name}.c`);
    await copyFile(sourceFile, src);
    const r = await run(cc, [...flags, '-o', join(staging, name), src], { timeoutMs: 120_000 });
    const out = r.all.split(src).join(sourceFile);
    await writeFile(join(staging, 'build.log'), `$ ${r.command}\n${out}`);
    if (!r.ok) {
      const noLibc = lacksStaticLibc(out);
      throw new MmaplabError(noLibc ? 'missing-tool' : 'build', noLibc ? `static ${arch} C library not found (${[cc, ...archFlags, '-static'].join(' ')})` : `${name}.c does not compile`, {
        details: parseDiagnostics(out).map(formatDiagnostic),
        hint: noLibc ? `install the Debian/Ubuntu package ${packages}` : undefined,
      });
    }
  });
  if (!(await exists(path))) throw new MmaplabError('build', `${name} missing from ${entry}`);
  return { path, cached: false };
}
