/**
 * `mmaplab debug [driver]` and `mmaplab shell --gdb`: the driver loaded in a
 * guest booted for debugging (KASLR off, never the snapshot, QEMU's gdb stub
 * on a free port of 127.0.0.1), and gdb set up for it: the kernel's symbols
 * where cached or fetched (Debian's -dbg package), the driver's .ko with its
 * debug info at the section addresses the guest's /sys/module gives, a
 * breakpoint at its mmap handler, and `mmaplab-map CHECK`, which has this
 * process send the mapping test to the guest (over the job channel, with no
 * deadline: the test may sit at the breakpoint for an hour) and continues.
 * The front end is gdb on the terminal (or in batch mode), the commands
 * printed for an IDE (until Ctrl-C), or the guest's shell (shell --gdb).
 * Whatever ends it, the guest is powered off and nothing is left running.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchJson } from '../gdb/launch.js';
import { MapSocket, type MapRequest } from '../gdb/map-socket.js';
import { startGdb, type GdbRun } from '../gdb/run-gdb.js';
import { earlyScript, gdbScript, lateScript, symbolsScript, type GdbSetup } from '../gdb/script.js';
import type { GuestRecord } from '../guest/protocol.js';
import { cachedKernelSymbols, kernelSymbols } from '../kernel/debug-symbols.js';
import type { Kernel } from '../kernel/types.js';
import { resolveDriverSource } from '../kbuild/driver-source.js';
import { findMmapHandler } from '../kbuild/mmap-handler.js';
import type { DebugSession, MapRun } from '../model/debug.js';

export type { DebugSession, MapRun } from '../model/debug.js';
import type { HostedJob, Machine, ShellSession } from '../machines/machine.js';
import { setUpLab, type LabModule, type LabSetup, type SetupOptions } from '../machines/setup.js';
import { CHECK_NAMES, isCheckName, type CheckName } from '../model/checks.js';
import { signalExitCode } from '../model/exit.js';
import { moduleSections } from '../parse/module-sections.js';
import { RunDir } from '../rundir/run-dir.js';
import { MmaplabError, usageError } from '../util/errors.js';
import { cacheRoot, projectPaths } from '../util/paths.js';
import { requireTool } from '../util/tools.js';
import { keptDriverJob, loadedDevice } from './shell.js';

export type DebugFrontEnd =
  /** gdb on the terminal, or in batch mode after mmaplab's script (the tests, scripts). */
  | { kind: 'gdb'; run: GdbRun }
  /** The commands and a launch.json printed for an IDE; the guest kept until `stopped`. */
  | { kind: 'print'; stopped: Promise<void> }
  /** The guest's shell on the terminal (shell --gdb); gdb attaches from elsewhere. */
  | { kind: 'shell'; session: Omit<ShellSession, 'moduleName'> };

export type Signal = 'SIGINT' | 'SIGTERM';

export interface DebugOptions extends SetupOptions {
  source: string | undefined;
  strategy: string;
  /** false: --no-kernel-symbols (the module's symbols only). */
  kernelSymbols: boolean;
  frontEnd: DebugFrontEnd;
  /** While gdb or the IDE has the session, signals come here instead of stopping mmaplab; call the result to give them back. */
  divertSignals: (to: (sig: Signal) => void) => () => void;
  /** The session is ready: tell the user (the CLI renders it). */
  onReady: (s: DebugSession) => void;
  /** A mapping test sent from gdb has ended. */
  onMapEnded?: (m: MapRun) => void;
}

export interface DebugResult {
  session: DebugSession;
  /** gdb's exit status (gdb front end). */
  gdbStatus: number | undefined;
  maps: MapRun[];
  notes: string[];
}

/** How long, after gdb has gone, a mapping test still running may take to end before the guest is stopped anyway. */
const MAP_DRAIN_MS = 30_000;

export async function labDebug(opts: DebugOptions): Promise<DebugResult> {
  if (opts.target) throw usageError('mmaplab debug boots a guest of its own (its gdb stub is QEMU\'s): --target cannot be debugged this way');
  // gdb missing is said in one line before anything is built or booted.
  const gdb = requireTool('gdb');
  const runDir = await RunDir.create(opts);
  const source = opts.source ? resolve(opts.source) : projectPaths.kernelModule;
  const notes: string[] = [];
  const cacheDir = opts.cacheDir ?? cacheRoot();
  const why = 'mmaplab debug boots its guest with KASLR off and a gdb stub';
  const lab = await setUpLab({ ...opts, snapshot: false, snapshotOffReason: why, debug: true }, source, runDir, cacheDir, notes);
  if (lab.kind === 'build-failed') throw lab.error;
  const { module, machine } = lab;
  const consoleLogOf = () => machine.consoleLogs()[0] ?? runDir.consoleLog;
  const mapper = new Mapper(machine, module, lab.testProgram, opts);
  // mmaplab's own gdb starts now, so it reads the kernel's symbols while the guest boots; it asks for the rest once the driver is loaded.
  const late = deferred<string>();
  const socket = await MapSocket.listen(await mapSocketPath(runDir), (r) => (r.kind === 'ready' ? late.promise.then((p) => `ok ${p}`, (e: unknown) => `failed: ${e instanceof Error ? e.message : String(e)}`) : mapper.answer(r)));
  const early = opts.frontEnd.kind === 'gdb' ? await startEarly(runDir, gdb, opts.frontEnd.run, { vmlinux: opts.kernelSymbols && lab.guestKernel ? await cachedKernelSymbols(cacheDir, lab.guestKernel) : undefined, indexCache: join(cacheDir, 'gdb-index'), mapSocket: socket.path }, opts.divertSignals) : undefined;
  try {
    const { session, setup, devicePath } = await loadForDebugging(opts, { lab, module, machine, runDir, source, cacheDir, gdb, notes, socket: socket.path, consoleLogOf });
    mapper.attach(devicePath);
    opts.onReady(session);
    if (early) {
      await writeFile(runDir.file('debug-late.gdb'), lateScript(setup, early.had));
      late.resolve(runDir.file('debug-late.gdb'));
    }
    const gdbStatus = early ? await early.session() : await frontEnd(opts, machine, module.name);
    // A gdb that detached left the guest running: a test it sent may end. One killed (or an IDE stopped) may have left it paused.
    if (gdbStatus === 0) await mapper.drain(MAP_DRAIN_MS);
    if (mapper.busy) await machine.abort();
    return { session: { ...session, consoleLog: consoleLogOf() }, gdbStatus, maps: mapper.runs, notes };
  } catch (e) {
    // gdb still waiting for the session goes first and silently: at its prompt it would hold the terminal in its own mode.
    await early?.stop();
    late.reject(e);
    throw e;
  } finally {
    await early?.stop();
    await socket.close();
    await machine.close();
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve: (v: T) => void = () => {};
  let reject: (e: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting (no early gdb): a failure is the command's, thrown on its own.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

interface Loading {
  lab: Extract<LabSetup, { kind: 'ready' }>;
  module: LabModule;
  machine: Machine;
  runDir: RunDir;
  source: string;
  cacheDir: string;
  gdb: string;
  notes: string[];
  socket: string;
  consoleLogOf: () => string;
}

/** The guest booted and the driver loaded, its sections read, its handler found, the kernel's symbols at hand: the scripts written. */
async function loadForDebugging(opts: DebugOptions, l: Loading): Promise<{ session: DebugSession; setup: GdbSetup; devicePath: string }> {
  const { module, machine } = l;
  // The kernel's symbols come (or are found cached) while the guest boots and loads the driver.
  const symbolsP = symbolsFor(opts, l.lab.guestKernel, l.cacheDir);
  const loaded = await machine.runJob({ ...keptDriverJob(module, l.lab.testProgram, opts), reportSections: true });
  const device = loadedDevice(loaded, module.name, 'the debugger', l.consoleLogOf());
  const sections = moduleSections(loaded.records);
  if (sections.kind === 'none') throw new MmaplabError('guest', `no section addresses for ${module.name}: ${sections.why}`, { hint: `full kernel log: ${l.consoleLogOf()}` });
  if (sections.refused.length) l.notes.push(`sections with names gdb is not given: ${sections.refused.join(', ')}`);
  const src = await resolveDriverSource(l.source);
  const { handler, objects } = await findMmapHandler(src.root, src.files, module.ko);
  const symbols = await symbolsP;
  const port = machine.gdbStub();
  if (port === undefined) throw new MmaplabError('internal', 'the debug guest has no gdb stub');
  const setup: GdbSetup = { port, vmlinux: symbols.vmlinux, indexCache: join(l.cacheDir, 'gdb-index'), ko: module.ko, sections: sections.sections, handler: handler.kind === 'none' ? undefined : handler.name, lookIn: objects, sourceDir: join(src.root, src.subdir), mapSocket: l.socket, checks: MAP_CHECKS };
  const session = await writeSession(l.runDir, setup, { gdb: l.gdb, module, kernel: l.lab.kernel.release, device, handler, noKernelSymbols: symbols.why, consoleLog: l.consoleLogOf(), frontEnd: opts.frontEnd.kind });
  const devicePath = loaded.records.find((r): r is Extract<GuestRecord, { t: 'device' }> => r.t === 'device')?.path ?? '';
  return { session, setup, devicePath };
}

/** mmaplab's own gdb, started before the guest is up: until its session begins, Ctrl-C stops everything (gdb too); then Ctrl-C is gdb's. */
async function startEarly(runDir: RunDir, gdb: string, run: GdbRun, early: Pick<GdbSetup, 'vmlinux' | 'indexCache' | 'mapSocket'>, divert: DebugOptions['divertSignals']) {
  const script = runDir.file('debug-early.gdb');
  await writeFile(script, earlyScript(early));
  const g = startGdb(gdb, script, run);
  let killed = false;
  let restore = divert((sig) => {
    g.kill('SIGKILL');
    restore();
    // Handled as ever now: every guest stopped, mmaplab ends.
    process.kill(process.pid, sig);
  });
  return {
    had: { vmlinux: early.vmlinux },
    session: async (): Promise<number> => {
      restore();
      // Ctrl-C is gdb's (it stops the guest at its prompt); a kill ends gdb, then the guest.
      restore = divert((sig) => {
        if (sig !== 'SIGTERM') return;
        killed = true;
        g.kill();
      });
      const status = await g.exited;
      // Killed: the session ends as a killed command does (128 + SIGTERM), its guest off all the same.
      return killed ? signalExitCode('SIGTERM') : status;
    },
    /** Once its session is over (gdb has exited), or the session failed while gdb only waited for it. */
    stop: async (): Promise<void> => {
      restore();
      g.kill('SIGKILL');
      await g.exited;
    },
  };
}

/** The checks mmaplab-map offers, `shared` (the default) first. */
const MAP_CHECKS: readonly string[] = ['shared', ...CHECK_NAMES.filter((c) => c !== 'shared')];

async function symbolsFor(opts: DebugOptions, kernel: Kernel | undefined, cacheDir: string): Promise<{ vmlinux: string | undefined; why: string | undefined }> {
  if (!opts.kernelSymbols) return { vmlinux: undefined, why: '--no-kernel-symbols' };
  if (!kernel) return { vmlinux: undefined, why: 'no kernel of its own' };
  if (!kernel.spec.startsWith('debian:')) return { vmlinux: undefined, why: `${kernel.spec} is not one of Debian's kernels, whose -dbg package has them` };
  const progress = opts.onProgress ?? (() => {});
  try {
    const vmlinux = await kernelSymbols(kernel, { cacheDir, archiveUri: opts.archiveUri, securityUri: opts.securityUri, onProgress: (m, bytes) => progress('fetch', m, bytes ? { bytes } : undefined) });
    return { vmlinux, why: undefined };
  } catch (e) {
    // The module's own symbols work without the kernel's: say why, and go on.
    return { vmlinux: undefined, why: e instanceof Error ? e.message : String(e) };
  }
}

/** The run directory's socket, or (a Unix socket's path is at most 107 bytes) one in a short private directory. */
async function mapSocketPath(runDir: RunDir): Promise<string> {
  if (Buffer.byteLength(runDir.mapSocket) <= 100) return runDir.mapSocket;
  return join(await mkdtemp(join(tmpdir(), 'mmaplab-gdb-')), 'map.sock');
}

async function writeSession(
  runDir: RunDir,
  setup: GdbSetup,
  about: Pick<DebugSession, 'device' | 'kernel' | 'handler' | 'noKernelSymbols' | 'consoleLog' | 'frontEnd'> & { gdb: string; module: LabModule },
): Promise<DebugSession> {
  await writeFile(runDir.gdbScript, gdbScript(setup));
  await writeFile(runDir.gdbSymbolsScript, symbolsScript(setup));
  const launchText = launchJson({ name: `mmaplab: ${about.module.name} on ${about.kernel}`, port: setup.port, program: setup.vmlinux ?? setup.ko, symbolsScript: runDir.gdbSymbolsScript, cwd: setup.sourceDir, gdb: about.gdb });
  await writeFile(runDir.launchJson, launchText);
  const { gdb, module, ...rest } = about;
  return {
    ...rest,
    module: module.name,
    port: setup.port,
    script: runDir.gdbScript,
    symbolsScript: runDir.gdbSymbolsScript,
    launchJson: runDir.launchJson,
    launchText,
    gdbCommand: `${gdb} -q -x ${runDir.gdbScript}`,
    vmlinux: setup.vmlinux,
    sections: [...setup.sections],
    runDir: runDir.path,
  };
}

/** The front end's session: gdb until it exits, the IDE's until Ctrl-C, or the guest's shell until it exits. */
async function frontEnd(opts: DebugOptions, machine: Machine, moduleName: string): Promise<number | undefined> {
  const fe = opts.frontEnd;
  switch (fe.kind) {
    case 'gdb':
      throw new MmaplabError('internal', "gdb on the terminal is started early (startEarly), not here");
    case 'print': {
      let stop: () => void = () => {};
      const stopped = new Promise<void>((r) => (stop = r));
      const restore = opts.divertSignals(() => stop());
      try {
        await Promise.race([fe.stopped, stopped]);
      } finally {
        restore();
      }
      return undefined;
    }
    case 'shell':
      await machine.interact({ ...fe.session, moduleName });
      return undefined;
  }
}

/** gdb's mmaplab-map requests: the mapping test sent to the guest as a job of its own, one at a time, with no deadline. */
class Mapper {
  readonly runs: MapRun[] = [];
  private running: Promise<void> | undefined;
  private nextId = 2;
  /** The driver's device node, once it is loaded. */
  private device: string | undefined;

  constructor(
    private readonly machine: Machine,
    private readonly module: LabModule,
    private readonly testProgram: string,
    private readonly opts: DebugOptions,
  ) {}

  /** The driver is loaded: its device node, as the load job reported it. */
  attach(device: string): void {
    this.device = device;
  }

  answer(r: MapRequest): Promise<string> {
    if (r.kind !== 'map') return Promise.resolve(`refused: not a request (${r.kind === 'bad' ? r.line : r.kind}); say: mmaplab-map CHECK`);
    if (!isCheckName(r.check)) return Promise.resolve(`refused: no check ${r.check}; one of ${MAP_CHECKS.join(', ')}`);
    if (this.device === undefined) return Promise.resolve('refused: the driver is not loaded yet');
    // shell --gdb: the console is the shell's, and the agent takes no job while it runs.
    if (this.opts.frontEnd.kind === 'shell') return Promise.resolve(`refused: the guest is in its shell; run there: mmap-test --device ${this.device} --checks ${r.check}`);
    if (this.running) return Promise.resolve('refused: the last mapping test is still running (continue until it ends)');
    const check = r.check;
    this.running = this.machine.runJob(this.job(check)).then((j) => this.ended(check, j), () => this.ended(check, undefined));
    return Promise.resolve(`ok sent the ${check} mapping test to the guest; continuing`);
  }

  private job(check: CheckName) {
    const base = keptDriverJob(this.module, this.testProgram, this.opts);
    // The device the first job found (given), the driver left loaded; a step may wait at a breakpoint for as long as its user likes.
    // A driver of the user's own: its device as found, and its pages read as mmaplab check reads them (no lab index, either byte order).
    const device = base.inspect ? { device: this.device ?? '', testFlags: ['--no-index', '--either-order'] } : {};
    return { ...base, ...device, id: this.nextId++, checks: [check], loaded: true, untimed: true, stepTimeoutS: 24 * 3600 };
  }

  private ended(check: CheckName, j: HostedJob | undefined): void {
    const exit = j?.records.find((x): x is Extract<GuestRecord, { t: 'exit' }> => x.t === 'exit' && x.check === check);
    const done = j?.records.find((x): x is Extract<GuestRecord, { t: 'done' }> => x.t === 'done');
    const run: MapRun = { check, end: j?.end ?? 'guest-died', status: exit?.status, pagesOk: done?.pagesOk, pages: done?.pages };
    this.runs.push(run);
    this.running = undefined;
    this.opts.onMapEnded?.(run);
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Let a test still running end (gdb detached, the guest runs on), within `ms`. */
  async drain(ms: number): Promise<void> {
    if (!this.running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }
}
