/**
 * `mmaplab shell [driver]`: a shell with the driver built and loaded, its
 * device node made and the test program (mmap-test) at hand: in the lab guest
 * (which powers off when the shell exits), or on an SSH target (where the
 * driver is unloaded and the temporary directory removed when it exits).
 * Nothing runs on the host's kernel.
 */
import { join, resolve } from 'node:path';
import { CUSTOM_DRIVER } from '../diagnose/expectations.js';
import { labJob } from '../guest/job.js';
import { shellQuote } from '../util/shell-quote.js';
import { ConnectionLost } from '../ssh/connection.js';
import { MmaplabError } from '../util/errors.js';
import { cacheRoot, projectPaths } from '../util/paths.js';
import { GuestJobHost, TargetJobHost } from '../machines/booted.js';
import { setUpLab, type SetupOptions } from '../machines/setup.js';
import { makeRunDir } from '../vm/boot.js';

export interface ShellOptions extends SetupOptions {
  /** A driver of the user's own; the bundled one (with `strategy`) otherwise. */
  source: string | undefined;
  strategy: string;
  input: NodeJS.ReadableStream;
  output: (text: string) => void;
  /** Resolves when the user wants out without the shell's exit (the escape key). */
  detach?: Promise<void>;
  /** The user's terminal size, for the target's pseudo-terminal. */
  terminal?: { rows: number; cols: number };
}

export interface ShellResult {
  device: string;
  consoleLog: string;
  /** What could not be undone on a target (empty: nothing left behind). */
  leftBehind: string[];
  /** What the setup noted (a host key added to known_hosts, a boot fallback). */
  notes: string[];
}

export async function labShell(opts: ShellOptions): Promise<ShellResult> {
  const progress = opts.onProgress ?? (() => {});
  const runDir = await makeRunDir(opts);
  const source = opts.source ? resolve(opts.source) : projectPaths.kernelModule;
  const notes: string[] = [];
  // The shell keeps its guest after the job that loaded the driver: a booted one (a restored guest per job would not be kept).
  const lab = await setUpLab({ ...opts, snapshot: false, snapshotOffReason: 'mmaplab shell boots its guest' }, source, runDir, opts.cacheDir ?? cacheRoot(), notes);
  if (lab.kind === 'build-failed') throw lab.error;
  const { module } = lab;
  // A guest's console exists once it has booted (in the first job): ask when needed.
  const consoleLogOf = () => lab.consoleLogs()[0] ?? join(runDir, 'console.log');
  const own = opts.source !== undefined;
  const job = {
    ...labJob({
      id: 1,
      strategy: own ? CUSTOM_DRIVER : opts.strategy,
      modulePath: module.jobKo,
      moduleName: module.name,
      moduleParams: !own && module.parameters.includes('strategy') ? [`strategy=${opts.strategy}`] : [],
      testProgram: lab.testProgram,
      checks: [],
      pages: 16,
    }),
    keepLoaded: true,
    ...(own ? { deviceName: '', device: '', inspect: true } : {}),
  };
  let node = 'unknown';
  let leftBehind: string[] = [];
  try {
    progress('job', `loading ${module.name}`);
    const r = await lab.host.runJob(job);
    const insmod = r.records.find((rec) => rec.t === 'step' && rec.step === 'insmod');
    const device = r.records.find((rec) => rec.t === 'step' && rec.step === 'device');
    if (r.end !== 'done' || !insmod || insmod.t !== 'step' || insmod.status !== 0) {
      const why = insmod && insmod.t === 'step' ? `insmod failed (status ${insmod.status}): ${insmod.output}` : `the machine stopped while loading it (${r.end})`;
      const consoleLog = consoleLogOf();
      throw new MmaplabError('guest', `could not load ${module.name} for the shell: ${why}`, { hint: `full kernel log: ${consoleLog}`, artifacts: { consoleLog } });
    }
    if (device && device.t === 'step') node = device.output.trim();
    progress('job', `${module.name} is loaded; its device: ${node}; mmap-test is on the PATH`);
    if (lab.host instanceof GuestJobHost) {
      const vm = lab.host.current;
      if (!vm) throw new MmaplabError('internal', 'the guest went away after loading the driver');
      await vm.interact(opts.input, opts.output, opts.detach);
    } else if (lab.host instanceof TargetJobHost) {
      const remote = lab.host.lab;
      const dir = remote.dir;
      // The user's own shell, in the session's directory, with mmap-test on its PATH; sudo for what needs root.
      const cmd = `cd ${shellQuote(dir)} && PATH=${shellQuote(`${dir}/files/test`)}:"$PATH" exec "\${SHELL:-/bin/sh}" -i`;
      const banner = () => opts.output(`mmaplab: a shell on ${remote.where} (${remote.facts.release}); ${module.name} is loaded; mmap-test is on the PATH (as root: sudo "$(command -v mmap-test)" ...); exit to unload it and clean up\r\n`);
      await Promise.race([remote.conn.interactive(cmd, opts.input, opts.output, opts.terminal ?? { rows: 24, cols: 80 }, banner), ...(opts.detach ? [opts.detach] : [])]).catch((e: unknown) => {
        if (e instanceof ConnectionLost) throw new MmaplabError('target', `lost the connection to ${remote.where} during the shell (${e.reason})`, { hint: `its kernel log until then: ${consoleLogOf()}`, artifacts: { consoleLog: consoleLogOf() } });
        throw e;
      });
    } else {
      throw new MmaplabError('internal', 'mmaplab shell needs a booted guest or a target');
    }
  } finally {
    leftBehind = await lab.close();
  }
  return { device: node, consoleLog: consoleLogOf(), leftBehind, notes };
}
