/**
 * Building the driver with Kbuild, out of the source tree: the sources are
 * copied into a build directory in the cache, built with `make -C <headers>
 * M=<copy>`, and the result is cached by a hash of everything that went in,
 * so an unchanged driver is not rebuilt.
 */
import { chmod, copyFile, lstat, mkdir, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { cpus } from 'node:os';
import type { Kernel } from '../kernel/types.js';
import { crossPrefix, kbuildArchArgs } from '../kernel/arch.js';
import { modinfo } from '../kernel/modules.js';
import { MmaplabError } from '../util/errors.js';
import { run, type ExecResult } from '../util/exec.js';
import { visibleEscapes } from '../util/safe-text.js';
import { exists, Hasher, installDirAtomic, removeTree } from '../util/fsx.js';
import { missingToolError, which } from '../util/tools.js';
import { runInRoot } from './build-root.js';
import { toolchainFor, type Toolchain } from './compiler.js';
import { compilerIdentity, probeAnswers, type ProbeAnswers } from './probe-cache.js';
import { parseDiagnostics, pathMapper } from './diagnostics.js';
import { formatDiagnostic, type Diagnostic } from '../model/diagnostic.js';
import { resolveDriverSource, type DriverSource } from './driver-source.js';
import { forgetTreeRecord, kernelAllowsReplay, oneChangedC, readTreeRecord, replayScript, writeIntoTree, writeTreeRecord } from './replay.js';
import type { BwrapSandbox } from '../sandbox/bwrap.js';
import { isolationOf, OWN_DRIVER, type BuildConfinement } from '../sandbox/policy.js';
import { isInside, outermost } from '../util/paths.js';
import type { BuildIsolation, BuildLimits } from '../model/isolation.js';

/** Bump when the build itself changes (flags, result fields) so old cache entries are not reused. */
const BUILD_FORMAT = 5;

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
  /** How it was built: in the sandbox, or unconfined and why (a cached build: how it was built then). */
  isolation: BuildIsolation;
  /** Built by replaying Kbuild's recorded commands for this one changed file, not by make. */
  replayed?: string;
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
  /** In the sandbox (an untrusted driver), or unconfined as the user and why (default: mmaplab's own driver). */
  confinement?: BuildConfinement;
  /** The sandbox's limits, where they differ from its defaults (--build-timeout). */
  limits?: Partial<BuildLimits>;
  /**
   * A build tree kept from one build to the next (check --watch): a change to
   * one .c file replays Kbuild's recorded commands in it instead of running
   * make (kbuild/replay.ts); anything else builds afresh there.
   */
  keptTree?: string;
}

/** The driver's sources, read once: the build's key, the copy built and a kept tree's record all come from these bytes (a save mid-build changes none of them). */
async function readSources(src: DriverSource): Promise<Map<string, Buffer>> {
  return new Map(await Promise.all(src.files.map(async (f) => [f, await readFile(join(src.root, f))] as const)));
}

function hashesOf(src: DriverSource, contents: ReadonlyMap<string, Buffer>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [f, data] of contents) out[f] = new Hasher().add('file', data).digest();
  if (src.generatedKbuild) out['(generated Kbuild)'] = new Hasher().add('kbuild', src.generatedKbuild).digest();
  return out;
}

/** The driver's sources copied out of tree (the user's tree stays clean); the folder to build in. */
async function copySources(src: DriverSource, tree: string, contents: ReadonlyMap<string, Buffer>): Promise<string> {
  for (const [f, data] of contents) {
    await mkdir(join(tree, f, '..'), { recursive: true });
    await writeFile(join(tree, f), data);
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
  const confinement = opts.confinement ?? OWN_DRIVER;
  const displayDir = show(opts.source);
  const compiler = await toolchainFor(kernel, { cacheDir, archive: opts.archive?.uri, keyring: opts.archive?.keyring, onProgress: opts.onProgress });
  // The source path is compiled in (__FILE__ in WARN_ON, debug info): it is part of the key.
  const hasher = new Hasher().add('format', String(BUILD_FORMAT)).add('source', `${src.root}|${src.subdir}|${src.generatedKbuild ?? ''}`).add('kernel', `${kernel.release} ${kernel.packageVersion}`).add('cc', compiler.describe);
  const contents = await readSources(src);
  for (const [f, data] of contents) hasher.add(`src/${f}`, data);
  const key = hasher.digest();
  const shared = join(cacheDir, 'builds', `module-${kernel.release}-${key}`);
  // A module made by a replay is the session's own (kept beside its tree), never the cache's, where Kbuild's builds are.
  const own = opts.keptTree ? join(opts.keptTree, 'built', key) : undefined;
  for (const e of [shared, ...(own ? [own] : [])]) {
    if (!(await exists(join(e, 'result.json')))) continue;
    // How it was built then (replayed, say) is not how this run got it.
    const { replayed: _then, ...cached } = JSON.parse(await readFile(join(e, 'result.json'), 'utf8')) as ModuleBuild;
    // No code of the driver's runs for a cached build: how this run would have built it is what the report says.
    const now = isolationOf(confinement, opts.limits);
    return { ...cached, ko: join(e, relative(e, cached.ko)), guestKo: join(e, relative(e, cached.guestKo)), cached: true, isolation: now };
  }
  const hashes = hashesOf(src, contents);
  const replay = opts.keptTree ? await planReplay(opts.keptTree, src, hashes, contents, kernel) : undefined;
  const entry = replay && own ? own : shared;

  let result: ModuleBuild | undefined;
  let failure: MmaplabError | undefined;
  let isolation: BuildIsolation = isolationOf(confinement, opts.limits);
  await installDirAtomic(entry, async (staging) => {
    // A kept tree is <keptTree>/src, its sandbox's /tmp beside it.
    const tree = join(opts.keptTree ?? staging, 'src');
    const root = compiler.root?.dir;
    const { make, probes } = await kbuildCommand(kernel, compiler, cacheDir, { tree, build: join(tree, src.subdir), userRoot: src.root });
    if (opts.keptTree) await forgetTreeRecord(opts.keptTree);
    if (replay) await writeIntoTree(tree, replay.file, contents.get(replay.file)!);
    else {
      if (opts.keptTree) await removeTree(tree);
      await copySources(src, tree, contents);
    }
    const build = join(tree, src.subdir);
    const sandbox = confinement.kind === 'sandbox' ? confinement.sandbox : undefined;
    const limits = sandbox?.limits(opts.limits);
    if (sandbox) isolation = sandbox.isolation(limits);
    const inBuild = (argv: string[], cwd = build) => runBuildStep(argv, { sandbox, limits, root, kernel, tree, cwd, ...(probes ? { alsoRead: [probes.dir] } : {}) });
    // Kbuild runs its recorded commands from the kernel's headers (make -C).
    const r = replay ? await inBuild(['sh', '-c', replay.script], kernel.headersDir) : await inBuild(make);
    // A replay compiles the module's one object and runs modpost: its output is all a make would print.
    const { log, diagnostics } = kbuildOutput(r.all, { tree, build, userRoot: show(src.root), userDir: show(join(src.root, src.subdir)), existsInBuild: (p) => existsSync(join(build, p)) });
    await writeFile(join(staging, 'build.log'), `${replay ? `# ${replay.file} alone changed: Kbuild's recorded commands replayed\n` : ''}$ ${r.command}\n${log}`);
    if (!r.ok) {
      await mkdir(opts.logDir, { recursive: true });
      const logPath = join(opts.logDir, 'module-build.log');
      await writeFile(logPath, `$ ${r.command}\n${log}`);
      const hasTool = (t: string) => (compiler.root ? existsSync(join(compiler.root.dir, 'usr', 'bin', t)) : which(t) !== undefined);
      failure = kbuildFailure(r.all, log, diagnostics, { displayDir, release: kernel.release, logPath, hasTool, ...(r.stopped && limits ? { stopped: { why: r.stopped, limits } } : {}) });
      throw failure;
    }
    result = await takeModule({ tree, build, staging, entry, displayDir, inBuild, strip: `${crossPrefix(kernel.arch)}strip`, keptTree: opts.keptTree, sandboxed: !!sandbox, hashes, diagnostics, compiler: compiler.describe, isolation, replayed: replay?.file });
    await writeFile(join(staging, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
  }).catch((e: unknown) => {
    throw failure ?? e;
  });
  if (!result) throw new MmaplabError('internal', 'module build produced no result');
  return result;
}

/** What a build that worked made, taken out of its tree: the module and its stripped copy, checked, and the result to cache. */
async function takeModule(p: {
  tree: string;
  build: string;
  staging: string;
  entry: string;
  displayDir: string;
  inBuild: (argv: string[]) => Promise<ExecResult>;
  /** The strip that reads the module's architecture (the host's cannot read an arm64 .ko). */
  strip: string;
  keptTree: string | undefined;
  sandboxed: boolean;
  hashes: Record<string, string>;
  diagnostics: Diagnostic[];
  compiler: string;
  isolation: BuildIsolation;
  replayed: string | undefined;
}): Promise<ModuleBuild> {
  const { tree, build, staging, entry, inBuild, diagnostics } = p;
  await stillOurs(tree, build);
  const ko = await theModule(build, p.displayDir);
  const guestKo = ko.replace(/\.ko$/, '.guest.ko');
  // strip reads the driver's ELF: in the sandbox too, writing next to it.
  const stripped = await inBuild([p.strip, '--strip-debug', '-o', join(build, guestKo), join(build, ko)]);
  await stillOurs(tree, build);
  await copyOut(build, ko, staging);
  if (stripped.ok && (await isPlainFile(join(build, guestKo)))) await copyOut(build, guestKo, staging);
  else await copyFile(join(staging, ko), join(staging, guestKo));
  // A kept tree must hold one .ko for the next build to find.
  if (p.keptTree) await rm(join(build, guestKo), { force: true });
  // What the build left (objects, anything it wrote) is not kept: only the module, the log and the result; a kept tree stays for the next build.
  if (p.keptTree) await writeTreeRecord(p.keptTree, { files: p.hashes, ko });
  else if (p.sandboxed) await removeTree(tree);
  if (p.sandboxed) await removeTree(join(tree, '..', 'tmp'));
  const koData = await readFile(join(staging, ko));
  return {
    ko: join(entry, ko),
    guestKo: join(entry, guestKo),
    name: moduleName(modinfo(koData, 'name')[0], ko),
    buildLog: join(entry, 'build.log'),
    warnings: diagnostics.filter((d) => d.severity === 'warning'),
    cached: false,
    compiler: p.compiler,
    parameters: modinfo(koData, 'parmtype').map((x) => x.split(':')[0]!).filter((x) => /^\w+$/.test(x)),
    isolation: p.isolation,
    ...(p.replayed ? { replayed: p.replayed } : {}),
  };
}

/**
 * The replay of Kbuild's commands in a kept tree, when one .c file is all that
 * changed since its last build and Kbuild would run nothing but its recorded
 * commands for it; undefined: build afresh.
 */
async function planReplay(keptTree: string, src: DriverSource, hashes: Record<string, string>, contents: ReadonlyMap<string, Buffer>, kernel: Kernel): Promise<{ file: string; script: string } | undefined> {
  const record = await readTreeRecord(keptTree);
  const file = record ? oneChangedC(record.files, hashes) : undefined;
  if (!record || !file) return undefined;
  const autoConf = await readFile(join(kernel.headersDir, 'include', 'config', 'auto.conf'), 'utf8').catch(() => undefined);
  if (autoConf === undefined || !kernelAllowsReplay(autoConf)) return undefined;
  const script = await replayScript(join(keptTree, 'src'), src.subdir, file, contents.get(file)!.toString('utf8'), record.ko);
  return script ? { file, script } : undefined;
}

/** Kbuild's command line for the driver, with the compiler probes answered from mmaplab's own record (made by a trusted build the first time). */
async function kbuildCommand(kernel: Kernel, compiler: Toolchain, cacheDir: string, at: { tree: string; build: string; userRoot: string }): Promise<{ make: string[]; probes: ProbeAnswers | undefined }> {
  const root = compiler.root?.dir;
  const identity = root ? `build root ${root}` : await compilerIdentity(which(compiler.cc));
  const probes = await probeAnswers({ kernel, cc: compiler.cc, describe: compiler.describe, cacheDir, identity, record: (argv, t) => runBuildStep(argv, { sandbox: undefined, limits: undefined, root, kernel, tree: t, cwd: t }) });
  // Compile as if from the user's own tree, so WARN_ON() lines and debug info name their files.
  const kcflags = `KCFLAGS=-ffile-prefix-map=${at.tree}=${at.userRoot}`;
  return { make: ['make', '-C', kernel.headersDir, ...kbuildArchArgs(kernel.arch), `M=${at.build}`, `CC=${probes?.wrapper ?? compiler.cc}`, kcflags, `-j${Math.max(1, cpus().length)}`, 'modules'], probes };
}

/** One step of the build (make, strip): in the sandbox when there is one, else in the build root or on the host as the user. */
async function runBuildStep(
  argv: string[],
  /** alsoRead: mmaplab's own folders the step needs (the probe answers), read-only in the sandbox. */
  p: { sandbox: BwrapSandbox | undefined; limits: BuildLimits | undefined; root: string | undefined; kernel: Kernel; tree: string; cwd: string; alsoRead?: string[] },
): Promise<ExecResult & { stopped?: 'time' | 'output' | 'disk' }> {
  if (p.sandbox) {
    const tmp = join(p.tree, '..', 'tmp');
    await mkdir(tmp, { recursive: true });
    const readOnly = [...(await headerBinds(p.kernel)), ...(p.alsoRead ?? [])];
    // A build root's /usr is bound read-only: mount points for paths under it are made in the root (it is mmaplab's) first.
    if (p.root) for (const d of [...readOnly, p.tree]) await mkdir(join(p.root, d), { recursive: true }).catch(() => {});
    // Only the copy of the submission is writable; mmaplab's own files in the entry (the log, the result) are not.
    return p.sandbox.run(argv, { root: p.root, readOnly, writable: [p.tree], tmp, cwd: p.cwd }, p.limits);
  }
  if (p.root) return runInRoot(p.root, outermost([...bindsFor(p.kernel, join(p.tree, '..')), ...(p.alsoRead ?? [])]), argv, { timeoutMs: 300_000 });
  return run(argv[0]!, argv.slice(1), { timeoutMs: 300_000 });
}

/** A file the build made, taken only if it is a plain file: a symlink planted in the build folder could name any host file. */
async function isPlainFile(path: string): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  return info?.isFile() === true;
}

/** The largest module taken from a build: a lab driver with debug info is some MiB. */
const MAX_MODULE_BYTES = 64 << 20;

async function copyOut(build: string, file: string, to: string): Promise<void> {
  const info = await lstat(join(build, file)).catch(() => undefined);
  if (!info?.isFile()) throw new MmaplabError('build', `the build left ${file} as something other than a plain file; it is not used`);
  if (info.size > MAX_MODULE_BYTES) throw new MmaplabError('build', `the build made a ${file} of ${Math.round(info.size / (1 << 20))} MiB; a module past ${MAX_MODULE_BYTES >> 20} MiB is not used`);
  await copyFile(join(build, file), join(to, file));
  // Its mode is not the build's to choose (a set-uid bit set in the sandbox stays out of the cache).
  await chmod(join(to, file), 0o644);
}

/** The build folder is still the one mmaplab made: the build may have swapped a folder on its path for a symlink to a host folder. */
async function stillOurs(tree: string, build: string): Promise<void> {
  const rel = relative(tree, build);
  let p = tree;
  for (const part of rel ? rel.split('/') : []) {
    p = join(p, part);
    if (!(await lstat(p).catch(() => undefined))?.isDirectory()) throw new MmaplabError('build', `the build replaced its own folder ${rel} with something other than a folder; nothing it made is used`);
  }
}


/** A module file name mmaplab can use in paths and print: Kbuild's own character set. */
const MODULE_FILE = /^[A-Za-z0-9_-]{1,64}\.ko$/;

/** The one .ko the build made. */
async function theModule(build: string, displayDir: string): Promise<string> {
  const kos = (await readdir(build)).filter((f) => f.endsWith('.ko'));
  if (kos.length !== 1) throw new MmaplabError('build', `expected one .ko from ${displayDir}, found ${kos.length ? kos.map((k) => JSON.stringify(k)).join(', ') : 'none'}`);
  if (!MODULE_FILE.test(kos[0]!)) throw new MmaplabError('build', `the module's file name ${JSON.stringify(kos[0])} has characters a kernel module name cannot have (letters, digits, _ and - only)`);
  return kos[0]!;
}

/** The name insmod and rmmod know: the .modinfo's, if it is a module name at all (it is the driver's to write), else the file's. */
export function moduleName(fromModinfo: string | undefined, koFile: string): string {
  const own = koFile.replace(/\.ko$/, '').replace(/-/g, '_');
  return fromModinfo && /^[A-Za-z0-9_]{1,64}$/.test(fromModinfo) ? fromModinfo : own;
}

/** Kbuild's output with the build copy's paths mapped back to the user's tree, and its diagnostics. */
export function kbuildOutput(
  output: string,
  p: { tree: string; build: string; userRoot: string; userDir: string; existsInBuild: (relPath: string) => boolean },
): { log: string; diagnostics: Diagnostic[] } {
  const toUser = pathMapper(p.tree, p.userRoot);
  // Kbuild from 6.13 compiles external modules from inside M=, naming files relative to it.
  const toUserFile = (f: string) => (!isAbsolute(f) && !f.startsWith('../') && p.existsInBuild(f) ? join(p.userDir, f) : toUser(f));
  // The build's output is the driver's to make (its Makefile prints, gcc echoes its file names): escapes shown, never obeyed, in the log too.
  const shown = visibleEscapes(output);
  return { log: toUser(shown), diagnostics: parseDiagnostics(shown, toUserFile) };
}

/** The error for a failed Kbuild: a missing host tool, or the driver's own compile errors with file:line. */
export function kbuildFailure(
  output: string,
  log: string,
  diagnostics: Diagnostic[],
  p: { displayDir: string; release: string; logPath: string; where?: string; stopped?: { why: 'time' | 'output' | 'disk'; limits: BuildLimits }; hasTool?: (tool: string) => boolean },
): MmaplabError {
  // The sandbox failing to start is not the driver's failure.
  const sandbox = /^bwrap: (.*)/.exec(output.trimStart())?.[1];
  if (sandbox) {
    return new MmaplabError('sandbox', `the build sandbox did not start: ${sandbox}`, { hint: `this is mmaplab's or the host's problem, not the driver's; --trust-driver builds without it; full build log: ${p.logPath}`, artifacts: { buildLog: p.logPath } });
  }
  if (p.stopped) {
    const l = p.stopped.limits;
    const what = { time: `did not finish in ${l.timeS} s`, output: `printed more than ${Math.round(l.outputKb / 1024)} MiB`, disk: `wrote more than ${l.diskMb} MiB (or 100,000 files)` }[p.stopped.why];
    return new MmaplabError('build', `the build of ${p.displayDir} ${what}: it was stopped, with every process it started`, {
      details: log.trimEnd().split('\n').slice(-10),
      hint: `${{ time: 'a Makefile or Kbuild that waits (sleep, a loop, reading stdin) never ends; --build-timeout sets the limit', output: 'a build that prints without end (a loop in the Makefile?) is stopped', disk: 'a module build writes some MiB: a Makefile that writes without end is stopped' }[p.stopped.why]}; full build log: ${p.logPath}`,
      artifacts: { buildLog: p.logPath },
    });
  }
  // Kbuild calling a tool that is not installed (pahole for BTF on 6.x) is not the driver's fault.
  const missing = /(?:^|\n)\/bin\/sh: \d+: ([\w.+-]+): not found/.exec(output)?.[1];
  // Only if it really is missing: the driver's Makefile can print the same words.
  if (missing && !p.hasTool?.(missing)) {
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

/**
 * What the sandbox must show of the kernel: its cache entry and headers, and
 * where their top-level symlinks lead (a host kernel's build -> /usr/src/...,
 * its -common and linux-kbuild trees; a local tree's source -> its sources).
 */
async function headerBinds(kernel: Kernel): Promise<string[]> {
  const dirs = new Set(bindsFor(kernel, undefined));
  const follow = async (dir: string, depth: number) => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isSymbolicLink()) continue;
      const target = await realpath(join(dir, e.name)).catch(() => undefined);
      if (!target || [...dirs].some((d) => isInside(target, d))) continue;
      const info = await lstat(target).catch(() => undefined);
      const bind = info?.isDirectory() ? target : dirname(target);
      if (bind === '/') continue;
      dirs.add(bind);
      if (depth > 0 && info?.isDirectory()) await follow(target, depth - 1);
    }
  };
  for (const d of [...dirs]) await follow(d, 1);
  return outermost(dirs);
}

/** What a build root must see: the kernel's cache entry (headers and kbuild), its headers if elsewhere, the build tree. */
function bindsFor(kernel: Kernel, tree: string | undefined): string[] {
  return outermost([kernel.dir, kernel.headersDir, ...(tree ? [tree] : [])]);
}
