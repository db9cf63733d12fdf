/**
 * Building the driver with Kbuild, out of the source tree: the sources are
 * copied into a build directory in the cache, built with `make -C <headers>
 * M=<copy>`, and the result is cached by a hash of everything that went in,
 * so an unchanged driver is not rebuilt.
 */
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { cpus } from 'node:os';
import type { Kernel } from '../kernel/types.js';
import { modinfo } from '../kernel/modules.js';
import { MmaplabError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { exists, Hasher, installDirAtomic } from '../util/fsx.js';
import { missingToolError } from '../util/tools.js';
import { runInRoot } from './build-root.js';
import { toolchainFor } from './compiler.js';
import { parseDiagnostics, pathMapper } from './diagnostics.js';
import { formatDiagnostic, type Diagnostic } from '../model/diagnostic.js';
import { resolveDriverSource, type DriverSource } from './driver-source.js';

/** Bump when the build itself changes (flags, result fields) so old cache entries are not reused. */
const BUILD_FORMAT = 4;

export interface ModuleBuild {
  /** The built module, in the cache, with its debug info (oops frames are resolved with it). */
  ko: string;
  /** The same module without debug info: what the guest loads (25 KB instead of 1.2 MB to send and insmod). */
  guestKo: string;
  /** Module name as insmod/rmmod know it. */
  name: string;
  buildLog: string;
  warnings: Diagnostic[];
  cached: boolean;
  compiler: string;
  /** Parameters the module declares (from its .modinfo parmtype= entries). */
  parameters: string[];
}

export interface ModuleBuildOptions {
  /** The driver: a folder (with or without its own Kbuild/Makefile) or a single .c file. */
  source: string;
  kernel: Kernel;
  cacheDir: string;
  /** Where a failed build's full log is kept. */
  logDir: string;
  /** Paths in messages are shown relative to this (the user's cwd). */
  cwd?: string;
  /** Where to make a build root from when the host has no matching gcc. */
  archive?: { uri: string | undefined; keyring: string | undefined };
  onProgress?: (msg: string) => void;
}

/** The driver's sources copied out of tree (the user's tree stays clean); the folder to build in. */
async function copySources(src: DriverSource, tree: string): Promise<string> {
  for (const f of src.files) {
    await mkdir(join(tree, f, '..'), { recursive: true });
    await copyFile(join(src.root, f), join(tree, f));
  }
  const build = join(tree, src.subdir);
  if (src.generatedKbuild) await writeFile(join(build, 'Kbuild'), src.generatedKbuild);
  return build;
}

export async function buildModule(opts: ModuleBuildOptions): Promise<ModuleBuild> {
  const { kernel, cacheDir } = opts;
  const cwd = opts.cwd ?? process.cwd();
  const show = (p: string) => relative(cwd, p) || '.';
  const src = await resolveDriverSource(opts.source);
  const displayDir = show(opts.source);
  const compiler = await toolchainFor(kernel, { cacheDir, archive: opts.archive?.uri, keyring: opts.archive?.keyring, onProgress: opts.onProgress });
  // The source path is compiled in (__FILE__ in WARN_ON, debug info): it is part of the key.
  const hasher = new Hasher().add('format', String(BUILD_FORMAT)).add('source', `${src.root}|${src.subdir}|${src.generatedKbuild ?? ''}`).add('kernel', `${kernel.release} ${kernel.packageVersion}`).add('cc', compiler.describe);
  for (const f of src.files) hasher.add(`src/${f}`, await readFile(join(src.root, f)));
  const key = hasher.digest();
  const entry = join(cacheDir, 'builds', `module-${kernel.release}-${key}`);

  if (await exists(join(entry, 'result.json'))) {
    const cached = JSON.parse(await readFile(join(entry, 'result.json'), 'utf8')) as ModuleBuild;
    return { ...cached, ko: join(entry, relative(entry, cached.ko)), guestKo: join(entry, relative(entry, cached.guestKo)), cached: true };
  }

  let result: ModuleBuild | undefined;
  let failure: MmaplabError | undefined;
  await installDirAtomic(entry, async (staging) => {
    const tree = join(staging, 'src');
    const build = await copySources(src, tree);
    // Compile as if from the user's own tree, so WARN_ON() lines and debug info name their files.
    const kcflags = `KCFLAGS=-ffile-prefix-map=${tree}=${src.root}`;
    const make = ['make', '-C', kernel.headersDir, `M=${build}`, `CC=${compiler.cc}`, kcflags, `-j${Math.max(1, cpus().length)}`, 'modules'];
    const r = compiler.root
      ? await runInRoot(compiler.root.dir, bindsFor(kernel, staging), make, { timeoutMs: 300_000 })
      : await run(make[0]!, make.slice(1), { timeoutMs: 300_000 });
    const { log, diagnostics } = kbuildOutput(r.all, { tree, build, userRoot: show(src.root), userDir: show(join(src.root, src.subdir)), existsInBuild: (p) => existsSync(join(build, p)) });
    await writeFile(join(staging, 'build.log'), `$ ${r.command}\n${log}`);
    if (!r.ok) {
      await mkdir(opts.logDir, { recursive: true });
      const logPath = join(opts.logDir, 'module-build.log');
      await writeFile(logPath, `$ ${r.command}\n${log}`);
      failure = kbuildFailure(r.all, log, diagnostics, { displayDir, release: kernel.release, logPath });
      throw failure;
    }
    const kos = (await readdir(build)).filter((f) => f.endsWith('.ko'));
    if (kos.length !== 1) {
      failure = new MmaplabError('build', `expected one .ko from ${displayDir}, found ${kos.length ? kos.join(', ') : 'none'}`);
      throw failure;
    }
    const ko = kos[0]!;
    await copyFile(join(build, ko), join(staging, ko));
    const guestKo = ko.replace(/\.ko$/, '.guest.ko');
    const stripped = await run('strip', ['--strip-debug', '-o', join(staging, guestKo), join(build, ko)]);
    if (!stripped.ok) await copyFile(join(build, ko), join(staging, guestKo));
    const koData = await readFile(join(build, ko));
    const name = modinfo(koData, 'name')[0] ?? ko.replace(/\.ko$/, '');
    result = {
      ko: join(entry, ko),
      guestKo: join(entry, guestKo),
      name,
      buildLog: join(entry, 'build.log'),
      warnings: diagnostics.filter((d) => d.severity === 'warning'),
      cached: false,
      compiler: compiler.describe,
      parameters: modinfo(koData, 'parmtype').map((p) => p.split(':')[0]!),
    };
    await writeFile(join(staging, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
  }).catch((e: unknown) => {
    throw failure ?? e;
  });
  if (!result) throw new MmaplabError('internal', 'module build produced no result');
  return result;
}

/** Kbuild's output with the build copy's paths mapped back to the user's tree, and its diagnostics. */
export function kbuildOutput(
  output: string,
  p: { tree: string; build: string; userRoot: string; userDir: string; existsInBuild: (relPath: string) => boolean },
): { log: string; diagnostics: Diagnostic[] } {
  const toUser = pathMapper(p.tree, p.userRoot);
  // Kbuild from 6.13 compiles external modules from inside M=, naming files relative to it.
  const toUserFile = (f: string) => (!isAbsolute(f) && !f.startsWith('../') && p.existsInBuild(f) ? join(p.userDir, f) : toUser(f));
  return { log: toUser(output), diagnostics: parseDiagnostics(output, toUserFile) };
}

/** The error for a failed Kbuild: a missing host tool, or the driver's own compile errors with file:line. */
export function kbuildFailure(output: string, log: string, diagnostics: Diagnostic[], p: { displayDir: string; release: string; logPath: string; where?: string }): MmaplabError {
  // Kbuild calling a tool that is not installed (pahole for BTF on 6.x) is not the driver's fault.
  const missing = /(?:^|\n)\/bin\/sh: \d+: ([\w.+-]+): not found/.exec(output)?.[1];
  if (missing) {
    const e = missingToolError(missing);
    return new MmaplabError('missing-tool', `${missing} not found: Kbuild for ${p.release} needs it${p.where ? ` on ${p.where}` : ''}`, { hint: `${e.hint}; full build log: ${p.logPath}`, artifacts: { buildLog: p.logPath } });
  }
  const errors = diagnostics.filter((d) => d.severity !== 'note' || diagnostics.some((e) => e.severity === 'error'));
  const count = errors.filter((d) => d.severity === 'error').length;
  return new MmaplabError('build', `the driver in ${p.displayDir} does not compile for ${p.release}${p.where ? ` on ${p.where}` : ''} (${count || 'make'} error${count === 1 ? '' : 's'})`, {
    details: errors.length ? errors.map(formatDiagnostic) : log.trimEnd().split('\n').slice(-20),
    hint: `fix the first error above; full build log: ${p.logPath}`,
    artifacts: { buildLog: p.logPath },
    locations: diagnostics,
  });
}

/** What a build root must see: the kernel's cache entry (headers and kbuild), its headers if elsewhere, the build tree. */
function bindsFor(kernel: Kernel, tree: string): string[] {
  const inside = (p: string, d: string) => p === d || p.startsWith(`${d}/`);
  const dirs = [...new Set([kernel.dir, kernel.headersDir, tree])];
  return dirs.filter((d) => !dirs.some((o) => o !== d && inside(d, o)));
}
