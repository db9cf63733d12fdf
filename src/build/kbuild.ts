/**
 * Building the driver with Kbuild, out of the source tree: the sources are
 * copied into a build directory in the cache, built with `make -C <headers>
 * M=<copy>`, and the result is cached by a hash of everything that went in,
 * so an unchanged driver is not rebuilt.
 */
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { cpus } from 'node:os';
import type { Kernel } from '../kernel/types.js';
import { modinfo } from '../kernel/modules.js';
import { MmaplabError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { exists, Hasher, installDirAtomic } from '../util/fsx.js';
import { missingToolError } from '../util/tools.js';
import { compilerFor } from './compiler.js';
import { formatDiagnostic, parseDiagnostics, pathMapper, type Diagnostic } from './diagnostics.js';

/** Bump when the build itself changes (flags, result fields) so old cache entries are not reused. */
const BUILD_FORMAT = 2;

export interface ModuleBuild {
  /** The built module, in the cache. */
  ko: string;
  /** Module name as insmod/rmmod know it. */
  name: string;
  buildLog: string;
  warnings: Diagnostic[];
  cached: boolean;
  compiler: string;
  /** Parameters the module declares (from its .modinfo parmtype= entries). */
  parameters: string[];
}

/** Files a previous in-tree build may have left; they are not sources. */
const ARTEFACT = /(\.(o|ko|mod|mod\.c|cmd|order|symvers|d|a|tmp)$)|^\.tmp_versions$|^Module\.symvers$|^modules\.order$/;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (ARTEFACT.test(e.name) || e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(relative(dir, p));
    }
  }
  await walk(dir);
  return out.sort();
}

export interface ModuleBuildOptions {
  sourceDir: string;
  kernel: Kernel;
  cacheDir: string;
  /** How to name the source directory in messages (relative to the user's cwd). */
  displayDir?: string;
  /** Where a failed build's full log is kept. */
  logDir: string;
}

export async function buildModule(opts: ModuleBuildOptions): Promise<ModuleBuild> {
  const { sourceDir, kernel, cacheDir } = opts;
  const displayDir = opts.displayDir ?? sourceDir;
  if (!(await exists(sourceDir))) throw new MmaplabError('usage', `driver source directory ${sourceDir} does not exist`);
  const files = await sourceFiles(sourceDir);
  if (!files.some((f) => f === 'Kbuild' || f === 'Makefile')) {
    throw new MmaplabError('usage', `${displayDir} has no Kbuild or Makefile`);
  }
  const compiler = await compilerFor(kernel.compilerText);
  // The source path is compiled in (__FILE__ in WARN_ON, debug info): it is part of the key.
  const hasher = new Hasher().add('format', String(BUILD_FORMAT)).add('source', sourceDir).add('kernel', `${kernel.release} ${kernel.packageVersion}`).add('cc', `${compiler.cc} ${compiler.version}`);
  for (const f of files) hasher.add(`src/${f}`, await readFile(join(sourceDir, f)));
  const key = hasher.digest();
  const entry = join(cacheDir, 'builds', `module-${kernel.release}-${key}`);

  if (await exists(join(entry, 'result.json'))) {
    const cached = JSON.parse(await readFile(join(entry, 'result.json'), 'utf8')) as ModuleBuild;
    return { ...cached, ko: join(entry, relative(entry, cached.ko)), cached: true };
  }

  let result: ModuleBuild | undefined;
  let failure: MmaplabError | undefined;
  await installDirAtomic(entry, async (staging) => {
    const build = join(staging, 'src');
    for (const f of files) {
      await mkdir(join(build, f, '..'), { recursive: true });
      await copyFile(join(sourceDir, f), join(build, f));
    }
    // Compile as if from the user's own tree, so WARN_ON() lines and debug info name their files.
    const kcflags = `KCFLAGS=-ffile-prefix-map=${build}=${sourceDir}`;
    const r = await run('make', ['-C', kernel.headersDir, `M=${build}`, `CC=${compiler.cc}`, kcflags, `-j${Math.max(1, cpus().length)}`, 'modules'], {
      timeoutMs: 300_000,
    });
    // Paths are reported as they will be after the rename, then mapped to the user's tree.
    const toUser = pathMapper(build, displayDir);
    const log = toUser(r.all);
    const diagnostics = parseDiagnostics(r.all, toUser);
    await writeFile(join(staging, 'build.log'), `$ ${r.command}\n${log}`);
    if (!r.ok) {
      await mkdir(opts.logDir, { recursive: true });
      const logPath = join(opts.logDir, 'module-build.log');
      await writeFile(logPath, `$ ${r.command}\n${log}`);
      // Kbuild calling a host tool that is not installed (pahole for BTF on 6.x) is not the driver's fault.
      const missing = /(?:^|\n)\/bin\/sh: \d+: ([\w.+-]+): not found/.exec(r.all)?.[1];
      if (missing) {
        const e = missingToolError(missing);
        failure = new MmaplabError('missing-tool', `${missing} not found: Kbuild for ${kernel.release} needs it`, { hint: `${e.hint}; full build log: ${logPath}`, artifacts: { buildLog: logPath } });
        throw failure;
      }
      const errors = diagnostics.filter((d) => d.severity !== 'note' || diagnostics.some((e) => e.severity === 'error'));
      failure = new MmaplabError('build', `the driver in ${displayDir} does not compile for ${kernel.release} (${errors.filter((d) => d.severity === 'error').length || 'make'} error${errors.filter((d) => d.severity === 'error').length === 1 ? '' : 's'})`, {
        details: errors.length ? errors.map(formatDiagnostic) : log.trimEnd().split('\n').slice(-20),
        hint: `fix the first error above; full build log: ${logPath}`,
        artifacts: { buildLog: logPath },
      });
      throw failure;
    }
    const kos = (await readdir(build)).filter((f) => f.endsWith('.ko'));
    if (kos.length !== 1) {
      failure = new MmaplabError('build', `expected one .ko from ${displayDir}, found ${kos.length ? kos.join(', ') : 'none'}`);
      throw failure;
    }
    const ko = kos[0]!;
    await copyFile(join(build, ko), join(staging, ko));
    const koData = await readFile(join(build, ko));
    const name = modinfo(koData, 'name')[0] ?? ko.replace(/\.ko$/, '');
    result = {
      ko: join(entry, ko),
      name,
      buildLog: join(entry, 'build.log'),
      warnings: diagnostics.filter((d) => d.severity === 'warning'),
      cached: false,
      compiler: `${compiler.cc} ${compiler.version}`,
      parameters: modinfo(koData, 'parmtype').map((p) => p.split(':')[0]!),
    };
    await writeFile(join(staging, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
  }).catch((e: unknown) => {
    throw failure ?? e;
  });
  if (!result) throw new MmaplabError('internal', 'module build produced no result');
  return result;
}
