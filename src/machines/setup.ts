/**
 * Everything before the first job, for either kind of machine: the kernel,
 * the driver and the test program built for it, and the JobHost the jobs go
 * to. A guest: a Debian kernel fetched, the driver built here (Kbuild, a
 * build root if need be), the initramfs, the accelerator. An SSH target: the
 * session opened and checked, the kernel it runs, the driver built there.
 * A driver that does not compile is a result (check reports it as its first
 * failed item), not an exception.
 */
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { removeTree, sweepStaging } from '../util/fsx.js';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { buildInitramfs } from '../guest/initramfs.js';
import type { ArchiveOptions } from '../guest/busybox.js';
import { kprobeArgsFor } from '../guest/job.js';
import { ARCH_INFO, ARCHES, archOfFlavour, archOfMachine, type Arch } from '../kernel/arch.js';
import { debianArchives } from '../kernel/debian.js';
import { acquireKernel, parseKernelSpec, type Kernel } from '../kernel/index.js';
import { pvhImage } from '../kernel/vmlinux.js';
import { resolveDriverSource } from '../kbuild/driver-source.js';
import { buildModule, type ModuleBuild } from '../kbuild/kbuild.js';
import type { Diagnostic } from '../model/diagnostic.js';
import type { BuildIsolation } from '../model/isolation.js';
import { confineBuilds, isolationOf, OWN_DRIVER, type BuildConfinement } from '../sandbox/policy.js';
import { prepareLabTest, type LabTestPlan } from '../kbuild/lab-test.js';
import { projectPaths } from '../util/paths.js';
import type { RunReport, SnapshotUse } from '../model/report.js';
import { RunDir } from '../rundir/run-dir.js';
import { ConnectionLost } from '../ssh/connection.js';
import { RemoteLab } from '../ssh/remote-lab.js';
import type { SshTarget } from '../ssh/url.js';
import { isMmaplabError, MmaplabError, usageError } from '../util/errors.js';
import { Limiter, type Slots } from '../util/limiter.js';
import { requireTool } from '../util/tools.js';
import { chooseAccel, type AccelRequest } from '../vm/accel.js';
import { kvmProbe } from '../vm/boot.js';
import { qemuInfo } from '../vm/qemu.js';
import { BootedGuests } from './booted.js';
import type { GuestContext } from './guest-context.js';
import type { Machine } from './machine.js';
import type { Progress } from '../model/progress.js';
import { RestoredGuests } from './restored.js';
import { SshMachine } from './ssh.js';

/** What every command that sets up a lab is told: the kernel, the machine, where things go. */
export interface GuestOptions {
  kernel: string;
  flavour: string;
  /** The guest's architecture (--arch); default: the flavour's. */
  arch?: Arch;
  accel: AccelRequest;
  /** Hard deadline for each job, including the boot it may need. */
  timeoutS: number;
  memoryMb: number;
  outputDir: string | undefined;
  archiveUri: string | undefined;
  securityUri: string | undefined;
  refreshKernel: boolean;
  cacheDir?: string;
  stateDir?: string;
  onProgress?: Progress;
  /** Guests that may run at once across a matrix; none: every core. */
  guestSlots?: Slots;
  /** Serve jobs from a snapshot of the booted guest (made on first use); false: boot for every run. */
  snapshot?: boolean;
  /** A restored guest that a job left as it was serves the next job of the same driver; false: a guest per job (--guest-per-job). */
  shareGuests?: boolean;
  /** --trust-driver: build a driver that is not mmaplab's own without the sandbox. */
  trustDriver?: boolean;
  /** Who trusted it, when not --trust-driver (the project's config file), as the report names it. */
  trustedBy?: string | undefined;
  /** --build-timeout: the sandboxed build's time limit. */
  buildTimeoutS?: number;
  /** Boot for debugging (mmaplab debug): KASLR off and QEMU's gdb stub; never from a snapshot. */
  debug?: boolean;
  /** check: also build and run the lab's own test program where the driver comes with one (not grade, run, shell, debug or --watch). */
  labTest?: boolean;
}

/** The kernel a command's options name, fetched (or found in the cache). */
export async function acquireFor(opts: GuestOptions, cacheDir: string, progress: Progress): Promise<Kernel> {
  progress('fetch', `kernel ${opts.kernel} (${opts.flavour})`);
  const kernel = await acquireKernel(parseKernelSpec(opts.kernel, opts.flavour, guestArch(opts)), {
    cacheDir,
    archiveUri: opts.archiveUri,
    securityUri: opts.securityUri,
    refresh: opts.refreshKernel,
    onProgress: (m, bytes) => progress('fetch', m, bytes ? { bytes } : undefined),
  });
  // A host or local: kernel is of whatever architecture it was built for; the guest's QEMU follows --arch.
  const want = guestArch(opts);
  if (kernel.arch !== want) throw usageError(`${kernel.spec} is a kernel for ${kernel.arch}, not ${want}`, `give --arch ${kernel.arch} to boot it`);
  // PVH (and so microvm) is an x86-64 boot here.
  return { ...kernel, vmlinux: kernel.arch === 'amd64' ? await pvhImage(kernel, cacheDir) : undefined };
}

/** The architecture of the guest a command's options ask for. */
export function guestArch(opts: Pick<GuestOptions, 'arch' | 'flavour'>): Arch {
  return opts.arch ?? archOfFlavour(opts.flavour) ?? 'amd64';
}

/** The Debian archive build roots are made from: the user's, else the host's. */
export function buildArchive(opts: Pick<GuestOptions, 'archiveUri' | 'securityUri'>): { uri: string | undefined; keyring: string | undefined } {
  const a = debianArchives(opts);
  return { uri: a.archive, keyring: a.signedBy };
}

/** --target and what goes with it. */
export interface TargetOptions {
  target: SshTarget;
  identity: string | undefined;
  knownHosts: string | undefined;
  acceptHostKey: string | undefined;
  allowOwnKernel: boolean;
  connectTimeoutS: number;
}

export interface LabModule {
  name: string;
  /** With debug info, on this machine: oops frames are resolved with it; copied into the run directory. */
  ko: string;
  /** What a guest loads (stripped); for a target, the same file (it loads its own build). */
  jobKo: string;
  compiler: string;
  cached: boolean;
  warnings: Diagnostic[];
  parameters: string[];
  /** How it was built: sandboxed, or unconfined and why. */
  isolation: BuildIsolation;
  /** Rebuilt by replaying Kbuild's commands for this one changed file (check --watch). */
  replayed?: string;
}

interface Common {
  kernel: RunReport['kernel'];
  /** The guest's kernel, when the lab runs in a guest (check reads PG_reserved from its headers). */
  guestKernel: Kernel | undefined;
  kernelMs: number;
  /** How the driver's build was (or would have been) confined. */
  isolation: BuildIsolation;
}

export type LabSetup =
  | (Common & {
      kind: 'ready';
      module: LabModule;
      testProgram: string;
      machine: Machine;
      buildMs: number;
      /** The lab's own test program, where the driver comes with one (guests only). */
      labTest?: LabTestPlan | undefined;
    })
  | (Common & { kind: 'build-failed'; error: MmaplabError });

/** What a command needs of a lab whose driver built: the driver, the machine, the kernel. */
export type BuiltLab = Pick<Extract<LabSetup, { kind: 'ready' }>, 'kernel' | 'guestKernel' | 'module' | 'machine' | 'testProgram' | 'kernelMs' | 'buildMs' | 'labTest'>;

export interface SetupOptions extends GuestOptions {
  target?: TargetOptions;
  /** Why snapshots are off, for the report (default: --no-snapshot). */
  snapshotOffReason?: string;
}

export async function setUpLab(opts: SetupOptions, source: string, runDir: RunDir, cacheDir: string, notes: string[]): Promise<LabSetup> {
  return opts.target ? targetLab(opts, opts.target, source, runDir, notes) : guestLab(opts, source, runDir, cacheDir, notes);
}

function progressOf(opts: SetupOptions): Progress {
  return opts.onProgress ?? (() => {});
}

/**
 * How this driver's build is confined: mmaplab's own driver is trusted; any
 * other is built in the sandbox unless the user trusts it (a refusal, with
 * what is missing, where no sandbox can be made).
 */
export async function confinementFor(opts: Pick<SetupOptions, 'trustDriver' | 'trustedBy'>, source: string): Promise<BuildConfinement> {
  if (resolve(source) === resolve(projectPaths.kernelModule)) return OWN_DRIVER;
  return confineBuilds({ trustDriver: !!opts.trustDriver, trustedBy: opts.trustedBy }, `the driver in ${relative(process.cwd(), source) || '.'}`);
}

/** A driver built for the lab's kernel, or the compile errors it failed with. */
export type ModuleOutcome = { kind: 'built'; module: LabModule; buildMs: number } | { kind: 'build-failed'; error: MmaplabError };

/**
 * A guest lab kept for one driver rebuilt again and again (check --watch): the
 * kernel, the machine (its next guest restored and waiting) and the first
 * build; rebuild() builds the driver's sources as they are now, confined as
 * the first build was. The caller closes the machine.
 */
export interface WatchLab extends Common {
  testProgram: string;
  labTest: LabTestPlan | undefined;
  machine: Machine;
  first: ModuleOutcome;
  rebuild(): Promise<ModuleOutcome>;
  /** The machine closed and the kept build tree removed. */
  dispose(): Promise<void>;
}

/** The lab for check --watch: its builds in a tree kept from one to the next, so a one-file change replays Kbuild's commands. */
export async function setUpWatchLab(opts: GuestOptions, source: string, runDir: RunDir, cacheDir: string, notes: string[]): Promise<WatchLab> {
  // The trees of watches that were killed (Ctrl-C ends the process before it tidies up): their process is gone.
  await sweepStaging(join(cacheDir, 'builds'), 'watch');
  const keptTree = join(cacheDir, 'builds', `watch-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const lab = await openGuestLab(opts, source, runDir, cacheDir, notes, keptTree);
    return { ...lab, dispose: () => lab.dispose().finally(() => removeTree(keptTree)) };
  } catch (e) {
    await removeTree(keptTree);
    throw e;
  }
}

async function guestLab(opts: SetupOptions, source: string, runDir: RunDir, cacheDir: string, notes: string[]): Promise<LabSetup> {
  const lab = await openGuestLab(opts, source, runDir, cacheDir, notes);
  const { first, machine, testProgram, kernel, guestKernel, kernelMs, isolation, labTest } = lab;
  const common = { kernel, guestKernel, kernelMs, isolation };
  if (first.kind === 'build-failed') {
    await machine.close();
    return { ...common, kind: 'build-failed', error: first.error };
  }
  return { ...common, kind: 'ready', module: first.module, testProgram, machine, buildMs: first.buildMs, labTest };
}

/** The module a build made, as the lab uses it. */
function labModule(module: ModuleBuild): LabModule {
  return { name: module.name, ko: module.ko, jobKo: module.guestKo, compiler: module.compiler, cached: module.cached, warnings: module.warnings, parameters: module.parameters, isolation: module.isolation, ...(module.replayed ? { replayed: module.replayed } : {}) };
}

async function openGuestLab(opts: SetupOptions, source: string, runDir: RunDir, cacheDir: string, notes: string[], keptTree?: string): Promise<WatchLab> {
  const t0 = performance.now();
  const progress = progressOf(opts);
  // Fail fast on missing host tools and a build that cannot be confined, before any download.
  const qemu = await qemuInfo(guestArch(opts));
  for (const tool of ['gcc', 'make']) requireTool(tool);
  const confinement = await confinementFor(opts, source);
  const kernel = await acquireFor(opts, cacheDir, progress);
  const kernelInfo = { spec: kernel.spec, release: kernel.release, packageVersion: kernel.packageVersion, flavour: kernel.flavour, arch: kernel.arch };
  const tKernel = performance.now();
  const build = async (): Promise<ModuleOutcome> => {
    const tBuild = performance.now();
    const built = await buildModule({
      source,
      kernel,
      cacheDir,
      logDir: runDir.path,
      archive: buildArchive(opts),
      onProgress: (m) => progress('build', m),
      confinement,
      ...(opts.buildTimeoutS ? { limits: { timeS: opts.buildTimeoutS } } : {}),
      ...(keptTree ? { keptTree } : {}),
    }).catch((e: unknown) => e);
    if (built && typeof built === 'object' && 'ko' in built) return { kind: 'built', module: labModule(built as ModuleBuild), buildMs: performance.now() - tBuild };
    if (isMmaplabError(built) && built.kind === 'build') return { kind: 'build-failed', error: built };
    throw built;
  };
  progress('build', `building ${relative(process.cwd(), source) || '.'} for ${kernel.release}, the test program and the initramfs`);
  const builtP = build().catch((e: unknown) => e as Error);
  // The lab's own test program, where the driver comes in the lab's layout: built beside the driver, confined as it is.
  // Held as a value until the driver's build ends (an unexpected error then ends the setup as the build's would).
  const labTestP = opts.labTest ? prepareLabTest(source, { arch: kernel.arch, config: kernel.config }, cacheDir, confinement).catch((e: unknown) => e as Error) : Promise.resolve(undefined);
  // The initramfs builds the test program too (it carries it): one build serves both.
  // Either failing waits for the driver's build to end first: nothing of it is left running (or writing into a kept tree).
  const [initramfs, accel] = await (async () => {
    const i = await buildInitramfs(kernel, cacheDir, opts);
    return [i, await chooseAccel({ requested: opts.accel, cacheDir, qemuVersion: qemu.version, arch: qemu.arch, probe: kvmProbe(qemu, kernel, i.path, runDir.path, opts.memoryMb) })] as const;
  })().catch(async (e: unknown) => {
    await builtP;
    throw e;
  });
  const ctx: GuestContext = {
    qemu,
    accel,
    kernel,
    initramfs,
    boot: { memoryMb: opts.memoryMb, timeoutS: opts.timeoutS, ...(opts.debug ? { debug: true } : {}) },
    runDir,
    notes,
    progress,
    // A single run uses every core (restored guests run side by side); a matrix shares its --jobs.
    slots: opts.guestSlots ?? new Limiter(Math.max(1, availableParallelism())),
  };
  const useSnapshot = opts.snapshot !== false && !opts.debug;
  // With a snapshot, console.log is put together at the end from every guest's console.
  const booted = new BootedGuests(ctx, { firstLog: runDir.file(useSnapshot ? 'console-fallback.log' : 'console.log'), snapshotOff: opts.snapshotOffReason ?? '--no-snapshot' });
  const machine: Machine = useSnapshot ? new RestoredGuests(ctx, booted, cacheDir, opts.shareGuests !== false) : booted;
  // The first guest is restored while the driver builds (a cached snapshot only).
  machine.prepare();
  const first = await builtP;
  const labTest = await labTestP;
  if (first instanceof Error || labTest instanceof Error) {
    await machine.close();
    throw first instanceof Error ? first : labTest;
  }
  const isolation = isolationOf(confinement, opts.buildTimeoutS ? { timeS: opts.buildTimeoutS } : {});
  return { kernel: kernelInfo, guestKernel: kernel, kernelMs: tKernel - t0, isolation, testProgram: initramfs.testProgram, labTest, machine, first, rebuild: build, dispose: async () => void (await machine.close()) };
}

/** Why a target of an architecture mmaplab cannot trace yet runs untraced. */
export function untracedNote(arch: string): string {
  return `tracing off: mmaplab knows where the traced calls' arguments are only on ${ARCHES.flatMap((a) => ARCH_INFO[a].unameMachines).join(', ')}, not on ${arch}; the lab ran untraced (the outcomes and kernel log are checked as ever)`;
}

async function targetLab(opts: SetupOptions, t: TargetOptions, source: string, runDir: RunDir, notes: string[]): Promise<LabSetup> {
  const t0 = performance.now();
  const progress = progressOf(opts);
  const url = t.target.url;
  const via = t.target.via.length ? ` via ${t.target.via.map((h) => h.name).join(', ')}` : '';
  progress('connect', `connecting to ${url}${t.target.address !== url || via ? ` (${t.target.address}${via})` : ''}`);
  const consoleLog = runDir.consoleLog;
  const lab = await RemoteLab.open({ ...t, kernelLogPath: consoleLog, onNote: (n) => notes.push(n) });
  try {
    const f = lab.facts;
    const kernel = { spec: url, release: f.release, packageVersion: f.version, flavour: f.arch, arch: archOfMachine(f.arch) ?? f.arch };
    const common = { kernel, guestKernel: undefined, kernelMs: performance.now() - t0, isolation: { kind: 'target' as const, host: t.target.name } };
    if (!kprobeArgsFor(f.arch)) notes.push(untracedNote(f.arch));
    await lab.startKernelLog();
    const src = await resolveDriverSource(source);
    const show = (p: string) => relative(process.cwd(), p) || '.';
    progress('build', `building ${show(source)} on ${t.target.name} for its kernel ${f.release}, and the test program`);
    let built;
    try {
      built = await lab.build(src, { userRoot: show(src.root), userDir: show(join(src.root, src.subdir)), displayDir: show(source) }, runDir.path);
    } catch (e) {
      if (isMmaplabError(e) && e.kind === 'build') {
        const left = await lab.cleanup();
        if (left.length) notes.push(...left.map((l) => `left on the target: ${l}`));
        return { ...common, kind: 'build-failed', error: e };
      }
      throw e;
    }
    const ko = runDir.file(`${built.name}.ko`);
    const testProgram = runDir.file('mmap-test');
    await writeFile(ko, built.data);
    await writeFile(testProgram, await lab.testProgram(), { mode: 0o755 });
    return {
      ...common,
      kind: 'ready',
      module: { name: built.name, ko, jobKo: ko, compiler: built.compiler, cached: false, warnings: built.warnings, parameters: built.parameters, isolation: { kind: 'target', host: t.target.name } },
      testProgram,
      machine: new SshMachine(lab, opts.timeoutS * 1000, consoleLog),
      buildMs: performance.now() - t0 - common.kernelMs,
    };
  } catch (e) {
    await lab.cleanup();
    if (e instanceof ConnectionLost) {
      throw new MmaplabError('target', `lost the connection to ${t.target.name} before the jobs (${e.reason})`, { hint: `the target's kernel log until then: ${consoleLog}`, artifacts: { consoleLog } });
    }
    throw e;
  }
}

/**
 * kernels fetch: the kernel's snapshot made now (or found cached), so the
 * first run after it only restores. The boot's console is kept in a run
 * directory only when the boot fails (the error names it).
 */
export async function snapshotAhead(fetched: Kernel, opts: { cacheDir: string; memoryMb: number; accel: AccelRequest; progress: Progress } & ArchiveOptions): Promise<SnapshotUse> {
  const { cacheDir } = opts;
  const qemu = await qemuInfo(fetched.arch);
  const kernel = { ...fetched, vmlinux: fetched.arch === 'amd64' ? await pvhImage(fetched, cacheDir) : undefined };
  const initramfs = await buildInitramfs(kernel, cacheDir, opts);
  const runDir = await RunDir.create({});
  const accel = await chooseAccel({ requested: opts.accel, cacheDir, qemuVersion: qemu.version, arch: qemu.arch, probe: kvmProbe(qemu, kernel, initramfs.path, runDir.path, opts.memoryMb) });
  const ctx: GuestContext = { qemu, accel, kernel, initramfs, boot: { memoryMb: opts.memoryMb, timeoutS: 120 }, runDir, notes: [], progress: opts.progress, slots: new Limiter(1) };
  const machine = new RestoredGuests(ctx, new BootedGuests(ctx, { firstLog: runDir.file('console-fallback.log'), snapshotOff: '' }), cacheDir);
  let use: SnapshotUse;
  try {
    use = await machine.ensureSnapshot();
  } finally {
    await machine.close();
  }
  await rm(runDir.path, { recursive: true, force: true });
  return use;
}
