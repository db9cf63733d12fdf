/**
 * The lab's own test program: a driver that comes in the lab's layout, with
 * its test/ folder (test/mmap-test.c and mmap-test.h), gets the lab's program
 * built as the lab builds it (32-bit x86, static) by mmaplab's own compiler
 * command, never by the submission's Makefile, confined as the driver's build
 * is, then run in the guest as the lab's instructions run it (see vm/job.sh).
 */
import { copyFile, lstat, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { isMmaplabError, MmaplabError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { exists, Hasher, installDirAtomic } from '../util/fsx.js';
import { which } from '../util/tools.js';
import type { BuildConfinement } from '../sandbox/policy.js';
import { cFiles, isProgram, labTests } from './lab-pattern.js';
import { userCompiler } from './userspace.js';
import { parseDiagnostics } from './diagnostics.js';
import { formatDiagnostic } from '../model/diagnostic.js';
import type { Arch } from '../kernel/arch.js';
import type { LabTestReport } from '../model/report.js';

export interface LabTestSource {
  /** The program's folder, its main file, and its C files (the program and what it includes). */
  dir: string;
  main: string;
  files: string[];
  /** The device node the program opens (MMAP_DEV), e.g. /dev/mymmap. */
  node: string;
  /** The runs the lab's instructions make: ./mmap-test 1, then 2 and 3 where the program has those tests. */
  runs: number[];
  /** NPAGES: the pages test 1 expects to match. */
  pages: number;
  /** The program makes its node itself (the lab's: mknod MMAP_DEV c 42 0, rm at exit); else the guest links it to the driver's device. */
  makesNode: boolean;
}

/** A #define's value: a string, or a string after a macro of one ("/dev/" MMAP_DEV_NAME). */
function defineOf(texts: readonly string[], name: string, depth = 0): string | undefined {
  // The submission's headers: a macro defined by itself, or a line of a megabyte, is no node's name.
  if (depth > 4) return undefined;
  let line: string | undefined;
  for (const text of texts) {
    for (const l of text.split('\n')) {
      const m = /^\s*#\s*define\s+(\w+)\s+(.*)$/.exec(l.length > 4096 ? '' : l);
      if (m?.[1] === name) line = m[2];
    }
    if (line !== undefined) break;
  }
  if (line === undefined) return undefined;
  let value = '';
  // Tokens: "strings" and macro names, as in "/dev/" MMAP_DEV_NAME.
  for (const part of line.replace(/\/\*.*?\*\/|\/\/.*$/g, '').trim().match(/"[^"]*"|\S+/g) ?? []) {
    if (part.startsWith('"')) value += part.slice(1, -1);
    else if (/^\w+$/.test(part)) value += defineOf(texts, part, depth + 1) ?? '';
    else return undefined;
  }
  return value || undefined;
}

/** The lab's test program beside a driver, if it comes in the lab's layout. */
export async function findLabTest(source: string): Promise<LabTestSource | undefined> {
  const driverDir = (await stat(source).catch(() => undefined))?.isFile() ? dirname(source) : source;
  for (const main of await labTests(driverDir)) {
    const text = await readFile(main, 'utf8').catch(() => '');
    if (!isProgram(text)) continue;
    const dir = dirname(main);
    // A test/ that is a symlink could lead anywhere on the host.
    if ((await lstat(dir).catch(() => undefined))?.isSymbolicLink() !== false) continue;
    const files = await cFiles(dir);
    const texts = await Promise.all(files.map((f) => readFile(f, 'utf8').catch(() => '')));
    const node = defineOf(texts, 'MMAP_DEV');
    // A node the guest's shell can name as it is (it goes into its scripts): /dev/ and plain characters.
    if (!node || !/^\/dev\/[\w.+-]+(\/[\w.+-]+)*$/.test(node)) continue;
    // The lab's program runs test N when its argument is at least N (test >= 2: read/write, test >= 3: the proc entry).
    const levels = [...text.matchAll(/\btest\s*>=\s*(\d)\b/g)].map((m) => Number(m[1])).filter((n) => n >= 2 && n <= 3);
    const pages = Number(/^[ \t]*#[ \t]*define[ \t]+NPAGES[ \t]+(\d+)/m.exec(texts.join('\n'))?.[1] ?? 16);
    // The program and what it may include: its headers and any other C file that is no program of its own.
    const own = files.filter((f, i) => f === main || !f.endsWith('.c') || !isProgram(texts[i]!));
    return { dir, main, files: own, node, makesNode: /\bmknod\b/.test(text), runs: [1, ...new Set(levels)].sort(), pages: Number.isInteger(pages) && pages > 0 ? pages : 16 };
  }
  return undefined;
}

export type LabTestBuild = { kind: 'built'; path: string; command: string } | { kind: 'build-failed'; message: string; details: string[] };

/** stdout line-buffered from the start: the lab's test 3 sleeps 30 s after its last line, and is stopped then; its lines must be out. */
const LINE_BUFFERED = '#include <stdio.h>\n__attribute__((constructor)) static void mmaplab_line_buffered(void) { setvbuf(stdout, NULL, _IOLBF, 0); }\n';

/**
 * The lab's program built as the lab builds it, 32-bit x86 and static
 * (i686-linux-gnu-gcc, or gcc -m32), in the build sandbox: its sources are
 * the submission's, so an #include of a host file finds nothing there.
 */
export async function buildLabTest(src: LabTestSource, cacheDir: string, confinement: BuildConfinement): Promise<LabTestBuild> {
  const { cc, flags: archFlags, packages } = userCompiler('i386');
  if (!which(cc)) throw new MmaplabError('missing-tool', `${cc} not found: it builds the lab's 32-bit test program`, { hint: `install the Debian/Ubuntu package ${packages}` });
  const flags = ['-static', '-O2', '-Wall', ...archFlags];
  const hasher = new Hasher().add('cc', cc).add('flags', flags.join(' ')).add('line-buffered', LINE_BUFFERED).add('gcc', (await run(cc, ['-dumpfullversion'])).stdout).add('confinement', confinement.kind);
  for (const f of src.files) await hasher.addFile(basename(f), f);
  const entry = join(cacheDir, 'builds', `lab-test-${hasher.digest()}`);
  const result = join(entry, 'result.json');
  if (await exists(result)) return JSON.parse(await readFile(result, 'utf8')) as LabTestBuild;
  await installDirAtomic(entry, async (staging) => {
    const tree = join(staging, 'src');
    await mkdir(join(tree, 'tmp'), { recursive: true });
    for (const f of src.files) await copyFile(f, join(tree, basename(f)));
    await writeFile(join(tree, 'mmaplab-line-buffered.h'), LINE_BUFFERED);
    const sources = src.files.filter((f) => f.endsWith('.c')).map((f) => basename(f));
    const argv = [cc, ...flags, '-include', 'mmaplab-line-buffered.h', '-o', 'mmap-test', ...sources];
    const r =
      confinement.kind === 'sandbox'
        ? await confinement.sandbox.run(argv, { readOnly: [], writable: [tree], tmp: join(tree, 'tmp'), cwd: tree }, confinement.sandbox.limits({ timeS: 120 }))
        : await run(argv[0]!, argv.slice(1), { cwd: tree, timeoutMs: 120_000 });
    const shown = (out: string) => out.split(`${tree}/`).join(`${relative(process.cwd(), src.dir) || '.'}/`);
    await writeFile(join(staging, 'build.log'), `$ ${argv.join(' ')}\n${shown(r.all)}`);
    const built: LabTestBuild = r.ok
      ? { kind: 'built', path: join(entry, 'mmap-test'), command: argv.filter((a) => a !== '-include' && a !== 'mmaplab-line-buffered.h').join(' ') }
      : { kind: 'build-failed', message: `the lab's test program (${relative(process.cwd(), src.dir) || '.'}) does not compile`, details: parseDiagnostics(shown(r.all)).map(formatDiagnostic).slice(0, 10) };
    if (r.ok) await copyFile(join(tree, 'mmap-test'), join(staging, 'mmap-test'));
    await writeFile(join(staging, 'result.json'), `${JSON.stringify(built, null, 2)}\n`);
  });
  return JSON.parse(await readFile(result, 'utf8')) as LabTestBuild;
}

/** What check does with the lab's program: why it does not run it, its compile errors, or the program to run. */
export type LabTestPlan =
  | Exclude<LabTestReport, { kind: 'ran' }>
  | { kind: 'built'; program: string; command: string; path: string; node: string; makesNode: boolean; runs: number[]; pages: number };

/**
 * The lab's program for a driver checked on a guest of arch: undefined where
 * the driver has none. It is 32-bit x86: it runs on i386, and on amd64 where
 * the kernel runs 32-bit programs (CONFIG_IA32_EMULATION).
 */
export async function prepareLabTest(source: string, guest: { arch: Arch; config: string }, cacheDir: string, confinement: BuildConfinement): Promise<LabTestPlan | undefined> {
  const src = await findLabTest(source);
  if (!src) return undefined;
  const program = relative(process.cwd(), src.main) || basename(src.main);
  if (guest.arch === 'arm64') return { kind: 'skipped', program, reason: "the lab's test program is 32-bit x86, which an arm64 guest does not run (check with --arch i386 to run it)" };
  if (guest.arch === 'amd64' && !/^CONFIG_IA32_EMULATION=y$/m.test(await readFile(guest.config, 'utf8').catch(() => ''))) {
    return { kind: 'skipped', program, reason: "this kernel runs no 32-bit programs (no CONFIG_IA32_EMULATION); check with --arch i386 to run the lab's test program" };
  }
  // A failure to build it at all (no 32-bit compiler here) is the lab test's, said in its report, never the check's.
  const built = await buildLabTest(src, cacheDir, confinement).catch((e: unknown) => e as Error);
  if (built instanceof Error) return { kind: 'skipped', program, reason: `it could not be built: ${built.message}${isMmaplabError(built) && built.hint ? ` (${built.hint})` : ''}` };
  return built.kind === 'built' ? { kind: 'built', program, command: built.command, path: built.path, node: src.node, makesNode: src.makesNode, runs: src.runs, pages: src.pages } : { kind: 'build-failed', program, message: built.message, details: built.details };
}
