/**
 * Choosing the compiler for a kernel module: the one the kernel was built with
 * (CONFIG_CC_VERSION_TEXT), found on the host as gcc-N or as gcc of version N.
 */
import { MmaplabError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { which } from '../util/tools.js';

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

export async function compilerFor(ccVersionText: string): Promise<Compiler> {
  const want = compilerMajor(ccVersionText);
  if (!want || want.name !== 'gcc') {
    throw new MmaplabError('build', `the kernel was built with '${ccVersionText}', which mmaplab cannot match yet`);
  }
  for (const cc of [`gcc-${want.major}`, 'gcc']) {
    if (!which(cc)) continue;
    const v = await versionOf(cc);
    if (v && Number(v.split('.')[0]) === want.major) return { cc, version: v };
  }
  throw new MmaplabError('missing-tool', `gcc ${want.major} not found: the kernel was built with ${ccVersionText}`, {
    hint: `install the package gcc-${want.major}, so the module is built by the compiler its kernel was built with`,
  });
}
