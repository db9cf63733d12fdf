/** Building the static test program that runs inside the guest. */
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MmaplabError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { exists, Hasher, installDirAtomic } from '../util/fsx.js';
import { formatDiagnostic, parseDiagnostics } from './diagnostics.js';

export interface ProgramBuild {
  path: string;
  cached: boolean;
}

export const TEST_PROGRAM_CFLAGS = ['-static', '-O2', '-Wall', '-Wextra', '-Werror'] as const;

export async function buildTestProgram(sourceFile: string, cacheDir: string): Promise<ProgramBuild> {
  const gccVersion = await run('gcc', ['-dumpfullversion']);
  const key = (await new Hasher().add('gcc', gccVersion.stdout).add('flags', TEST_PROGRAM_CFLAGS.join(' ')).addFile('src', sourceFile)).digest();
  const entry = join(cacheDir, 'builds', `mmap-test-${key}`);
  const path = join(entry, 'mmap-test');
  if (await exists(path)) return { path, cached: true };
  await installDirAtomic(entry, async (staging) => {
    const src = join(staging, 'mmap-test.c');
    await copyFile(sourceFile, src);
    const r = await run('gcc', [...TEST_PROGRAM_CFLAGS, '-o', join(staging, 'mmap-test'), src], { timeoutMs: 120_000 });
    const out = r.all.split(src).join(sourceFile);
    await writeFile(join(staging, 'build.log'), `$ ${r.command}\n${out}`);
    if (!r.ok) {
      const noLibc = /cannot find -lc\b/.test(out);
      throw new MmaplabError(noLibc ? 'missing-tool' : 'build', noLibc ? 'static C library not found (gcc -static)' : 'the test program does not compile', {
        details: parseDiagnostics(out).map(formatDiagnostic),
        hint: noLibc ? 'install the Debian/Ubuntu package libc6-dev' : undefined,
      });
    }
  });
  if (!(await exists(path))) throw new MmaplabError('build', `test program missing from ${entry}`);
  return { path, cached: false };
}
