/** Building the static programs that run inside the guest: the test program and the agent's guest-sync. */
import { copyFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MmaplabError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { exists, Hasher, installDirAtomic } from '../util/fsx.js';
import { parseDiagnostics } from './diagnostics.js';
import { formatDiagnostic } from '../model/diagnostic.js';

export interface ProgramBuild {
  path: string;
  cached: boolean;
}

export const TEST_PROGRAM_CFLAGS = ['-static', '-O2', '-Wall', '-Wextra', '-Werror'] as const;

/** One C file into a static program named after it (mmap-test.c -> mmap-test), cached by compiler, flags and source. */
export async function buildStaticProgram(sourceFile: string, cacheDir: string): Promise<ProgramBuild> {
  const name = basename(sourceFile, '.c');
  const gccVersion = await run('gcc', ['-dumpfullversion']);
  const key = (await new Hasher().add('gcc', gccVersion.stdout).add('flags', TEST_PROGRAM_CFLAGS.join(' ')).addFile('src', sourceFile)).digest();
  const entry = join(cacheDir, 'builds', `${name}-${key}`);
  const path = join(entry, name);
  if (await exists(path)) return { path, cached: true };
  await installDirAtomic(entry, async (staging) => {
    const src = join(staging, `${name}.c`);
    await copyFile(sourceFile, src);
    const r = await run('gcc', [...TEST_PROGRAM_CFLAGS, '-o', join(staging, name), src], { timeoutMs: 120_000 });
    const out = r.all.split(src).join(sourceFile);
    await writeFile(join(staging, 'build.log'), `$ ${r.command}\n${out}`);
    if (!r.ok) {
      const noLibc = /cannot find -lc\b/.test(out);
      throw new MmaplabError(noLibc ? 'missing-tool' : 'build', noLibc ? 'static C library not found (gcc -static)' : `${name}.c does not compile`, {
        details: parseDiagnostics(out).map(formatDiagnostic),
        hint: noLibc ? 'install the Debian/Ubuntu package libc6-dev' : undefined,
      });
    }
  });
  if (!(await exists(path))) throw new MmaplabError('build', `${name} missing from ${entry}`);
  return { path, cached: false };
}
