/**
 * Everything before the first job, for either kind of machine: the kernel,
 * the driver and the test program built for it, and the JobHost the jobs go
 * to. A guest: a Debian kernel fetched, the driver built here (Kbuild, a
 * build root if need be), the initramfs, the accelerator. An SSH target: the
 * session opened and checked, the kernel it runs, the driver built there.
 * A driver that does not compile is a result (check reports it as its first
 * failed item), not an exception.
 */
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { resolveDriverSource } from '../kbuild/driver-source.js';
import { buildModule, type ModuleBuild } from '../kbuild/kbuild.js';
import { buildInitramfs } from '../guest/initramfs.js';
import type { Kernel } from '../kernel/types.js';
import type { Diagnostic } from '../model/diagnostic.js';
import type { RunReport, SnapshotUse } from '../model/report.js';
import { Limiter } from '../util/limiter.js';
import { availableParallelism } from 'node:os';
import { fingerprint } from '../ssh/known-hosts.js';
import { RemoteLab } from '../ssh/remote-lab.js';
import type { SshTarget } from '../ssh/url.js';
import { ConnectionLost } from '../ssh/connection.js';
import { isMmaplabError, MmaplabError } from '../util/errors.js';
import { requireTool } from '../util/tools.js';
import { chooseAccel } from '../vm/accel.js';
import { qemuInfo } from '../vm/qemu.js';
import type { MachineType } from '../vm/qemu-args.js';
import { GuestJobHost, TargetJobHost } from './booted.js';
import { SnapshotJobHost } from './restored.js';
import { acquireFor, bootGuest, buildArchive, GuestBoots, kvmProbe, type GuestOptions, type Phase } from '../vm/boot.js';

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
}

interface Common {
  kernel: RunReport['kernel'];
  /** The guest's kernel, when the lab runs in a guest (check reads PG_reserved from its headers). */
  guestKernel: Kernel | undefined;
  kernelMs: number;
}

export type LabSetup =
  | (Common & {
      kind: 'ready';
      module: LabModule;
      testProgram: string;
      host: GuestJobHost | SnapshotJobHost | TargetJobHost;
      buildMs: number;
      /** Called after close(): a target's leftovers are known only then. */
      machine(): RunReport['machine'];
      consoleLogs(): string[];
      firstBoot(): { bootMs: number; guestReadyMs: number };
      /** Power the guest off, or clean the target up; what could not be undone. */
      close(): Promise<string[]>;
    })
  | (Common & { kind: 'build-failed'; error: MmaplabError });

export interface SetupOptions extends GuestOptions {
  target?: TargetOptions;
  /** Why snapshots are off, for the report (default: --no-snapshot). */
  snapshotOffReason?: string;
}

export async function setUpLab(opts: SetupOptions, source: string, runDir: string, cacheDir: string, notes: string[]): Promise<LabSetup> {
  return opts.target ? targetLab(opts, opts.target, source, runDir, notes) : guestLab(opts, source, runDir, cacheDir, notes);
}

function progressOf(opts: SetupOptions): (phase: Phase, message: string) => void {
  return opts.onProgress ?? (() => {});
}

async function guestLab(opts: SetupOptions, source: string, runDir: string, cacheDir: string, notes: string[]): Promise<LabSetup> {
  const t0 = performance.now();
  const progress = progressOf(opts);
  // Fail fast on missing host tools, before any download.
  const qemu = await qemuInfo();
  for (const tool of ['gcc', 'make']) requireTool(tool);
  const kernel = await acquireFor(opts, cacheDir, progress);
  const kernelInfo = { spec: kernel.spec, release: kernel.release, packageVersion: kernel.packageVersion, flavour: kernel.flavour };
  const tKernel = performance.now();
  progress('build', `building ${relative(process.cwd(), source) || '.'} for ${kernel.release}, the test program and the initramfs`);
  const builtP = buildModule({ source, kernel, cacheDir, logDir: runDir, archive: buildArchive(opts), onProgress: (m) => progress('build', m) }).catch((e: unknown) => e);
  // The initramfs builds the test program too (it carries it): one build serves both.
  const initramfs = await buildInitramfs(kernel, cacheDir);
  const accel = await chooseAccel({ requested: opts.accel, cacheDir, qemuVersion: qemu.version, probe: kvmProbe(qemu, kernel, initramfs.path, runDir, opts.memoryMb) });
  const useSnapshot = opts.snapshot !== false;
  const guests = new GuestBoots(
    (consoleLog) => bootGuest(qemu, accel.accel, kernel, initramfs, opts, notes, consoleLog),
    runDir,
    (after) => progress('boot', `booting ${kernel.release} under ${accel.accel.toUpperCase()}${after}`),
    // With a snapshot, console.log is put together at the end from every guest's console.
    useSnapshot ? 'console-fallback.log' : 'console.log',
  );
  // A single run uses every core (restored guests run side by side); a matrix shares its --jobs.
  const slots = opts.guestSlots ?? new Limiter(Math.max(1, availableParallelism()));
  const booted = new GuestJobHost(guests, opts.timeoutS * 1000, slots);
  const host = useSnapshot
    ? new SnapshotJobHost({ qemu, accel: accel.accel, kernel, initramfs, opts, cacheDir, runDir, notes, progress, slots, parallel: slots.size, fallback: booted })
    : booted;
  // The first guest is restored while the driver builds (a cached snapshot only).
  if (host instanceof SnapshotJobHost) host.warmUp();
  const built = await builtP;
  const common = { kernel: kernelInfo, guestKernel: kernel, kernelMs: tKernel - t0 };
  if (!(built && typeof built === 'object' && 'ko' in built)) {
    await host.close();
    if (isMmaplabError(built) && built.kind === 'build') return { ...common, kind: 'build-failed', error: built };
    throw built;
  }
  const module = built as ModuleBuild;
  const tBuild = performance.now();
  const bootedWith = (): { bootImage: 'pvh' | 'bzimage'; machineType: MachineType } => {
    const b = host instanceof SnapshotJobHost ? host.image() : guests.first && { image: guests.first.image, machine: guests.first.machine };
    return { bootImage: b?.image ?? 'bzimage', machineType: b?.machine ?? 'pc' };
  };
  const snapshotUse = (): SnapshotUse => (host instanceof SnapshotJobHost ? host.use() : { use: 'off', reason: opts.snapshotOffReason ?? '--no-snapshot' });
  return {
    ...common,
    kind: 'ready',
    module: { name: module.name, ko: module.ko, jobKo: module.guestKo, compiler: module.compiler, cached: module.cached, warnings: module.warnings, parameters: module.parameters },
    testProgram: initramfs.testProgram,
    host,
    buildMs: tBuild - tKernel,
    machine: () => ({
      accel: accel.accel,
      accelReason: accel.reason,
      qemu: qemu.version,
      boots: host instanceof SnapshotJobHost ? host.boots : guests.boots,
      bootAttempts: host instanceof SnapshotJobHost ? host.bootAttempts : guests.attempts,
      ...bootedWith(),
      snapshot: snapshotUse(),
    }),
    consoleLogs: () => (host instanceof SnapshotJobHost ? [host.consoleLog, ...guests.consoleLogs] : guests.consoleLogs),
    firstBoot: () =>
      host instanceof SnapshotJobHost
        ? { bootMs: host.firstReadyMs(), guestReadyMs: 0 }
        : { bootMs: guests.first?.bootMs ?? 0, guestReadyMs: (guests.first?.guestUptimeS ?? 0) * 1000 },
    close: async () => {
      await host.close();
      return [];
    },
  };
}

async function targetLab(opts: SetupOptions, t: TargetOptions, source: string, runDir: string, notes: string[]): Promise<LabSetup> {
  const t0 = performance.now();
  const progress = progressOf(opts);
  const url = t.target.url;
  progress('connect', `connecting to ${url}`);
  const consoleLog = join(runDir, 'console.log');
  const lab = await RemoteLab.open({ ...t, kernelLogPath: consoleLog, onNote: (n) => notes.push(n) });
  try {
    const f = lab.facts;
    const kernel = { spec: url, release: f.release, packageVersion: f.version, flavour: f.arch };
    const common = { kernel, guestKernel: undefined, kernelMs: performance.now() - t0 };
    await lab.startKernelLog();
    const src = await resolveDriverSource(source);
    const show = (p: string) => relative(process.cwd(), p) || '.';
    progress('build', `building ${show(source)} on ${t.target.host} for its kernel ${f.release}, and the test program`);
    let built;
    try {
      built = await lab.build(src, { userRoot: show(src.root), userDir: show(join(src.root, src.subdir)), displayDir: show(source) }, runDir);
    } catch (e) {
      if (isMmaplabError(e) && e.kind === 'build') {
        const left = await lab.cleanup();
        if (left.length) notes.push(...left.map((l) => `left on the target: ${l}`));
        return { ...common, kind: 'build-failed', error: e };
      }
      throw e;
    }
    const ko = join(runDir, `${built.name}.ko`);
    const testProgram = join(runDir, 'mmap-test');
    await writeFile(ko, built.data);
    await writeFile(testProgram, await lab.testProgram(), { mode: 0o755 });
    const host = new TargetJobHost(lab, opts.timeoutS * 1000);
    let leftBehind: string[] = [];
    return {
      ...common,
      kind: 'ready',
      module: { name: built.name, ko, jobKo: ko, compiler: built.compiler, cached: false, warnings: built.warnings, parameters: built.parameters },
      testProgram,
      host,
      buildMs: performance.now() - t0 - common.kernelMs,
      machine: () => ({ kind: 'ssh', target: url, hostKey: fingerprint(lab.conn.hostKey.blob), os: f.os.prettyName, arch: f.arch, bootId: f.bootId, leftBehind }),
      consoleLogs: () => [consoleLog],
      firstBoot: () => ({ bootMs: 0, guestReadyMs: 0 }),
      close: async () => {
        leftBehind = await lab.cleanup();
        return leftBehind;
      },
    };
  } catch (e) {
    await lab.cleanup();
    if (e instanceof ConnectionLost) {
      throw new MmaplabError('target', `lost the connection to ${t.target.host} before the jobs (${e.reason})`, { hint: `the target's kernel log until then: ${consoleLog}`, artifacts: { consoleLog } });
    }
    throw e;
  }
}
