/**
 * `mmaplab shell [driver]`: a shell with the driver built and loaded, its
 * device node made and the test program (mmap-test) at hand: in the lab guest
 * (which powers off when the shell exits), or on an SSH target (where the
 * driver is unloaded and the temporary directory removed when it exits).
 * Nothing runs on the host's kernel.
 */
import { resolve } from 'node:path';
import { CUSTOM_DRIVER } from '../diagnose/expectations.js';
import { labJob, type LabJob } from '../guest/job.js';
import type { HostedJob, ShellSession } from '../machines/machine.js';
import { setUpLab, type LabModule, type SetupOptions } from '../machines/setup.js';
import { observeJob } from '../parse/job-records.js';
import { RunDir } from '../rundir/run-dir.js';
import { MmaplabError } from '../util/errors.js';
import { cacheRoot, projectPaths } from '../util/paths.js';

export interface ShellOptions extends SetupOptions {
  /** A driver of the user's own; the bundled one (with `strategy`) otherwise. */
  source: string | undefined;
  strategy: string;
  /** The user's terminal. */
  session: Omit<ShellSession, 'moduleName'>;
}

export interface ShellResult {
  device: string;
  consoleLog: string;
  /** What could not be undone on a target (empty: nothing left behind). */
  leftBehind: string[];
  /** What the setup noted (a host key added to known_hosts, a boot fallback). */
  notes: string[];
}

/** The job that loads the driver and leaves it loaded, its device made, mmap-test on the PATH (shell, debug). */
export function keptDriverJob(module: Pick<LabModule, 'name' | 'jobKo' | 'parameters'>, testProgram: string, opts: { source: string | undefined; strategy: string }): LabJob {
  const own = opts.source !== undefined;
  return {
    ...labJob({
      id: 1,
      strategy: own ? CUSTOM_DRIVER : opts.strategy,
      modulePath: module.jobKo,
      moduleName: module.name,
      moduleParams: !own && module.parameters.includes('strategy') ? [`strategy=${opts.strategy}`] : [],
      testProgram,
      checks: [],
      pages: 16,
    }),
    keepLoaded: true,
    ...(own ? { deviceName: '', device: '', inspect: true } : {}),
  };
}

/** The device node of the driver a kept-driver job loaded; an error saying why when it did not load (`forWhat`: the shell, the debugger). */
export function loadedDevice(r: HostedJob, name: string, forWhat: string, consoleLog: string): string {
  const { steps } = observeJob(r.records, []);
  if (r.end !== 'done' || !steps.insmod?.ok) {
    const why = steps.insmod ? `insmod failed (status ${steps.insmod.status}): ${steps.insmod.output}` : `the machine stopped while loading it (${r.end})`;
    throw new MmaplabError('guest', `could not load ${name} for ${forWhat}: ${why}`, { hint: `full kernel log: ${consoleLog}`, artifacts: { consoleLog } });
  }
  return steps.device ? steps.device.output.trim() : 'unknown';
}

export async function labShell(opts: ShellOptions): Promise<ShellResult> {
  const progress = opts.onProgress ?? (() => {});
  const runDir = await RunDir.create(opts);
  const source = opts.source ? resolve(opts.source) : projectPaths.kernelModule;
  const notes: string[] = [];
  // The shell keeps its guest after the job that loaded the driver: a booted one (a restored guest per job would not be kept).
  const lab = await setUpLab({ ...opts, snapshot: false, snapshotOffReason: 'mmaplab shell boots its guest' }, source, runDir, opts.cacheDir ?? cacheRoot(), notes);
  if (lab.kind === 'build-failed') throw lab.error;
  const { module, machine } = lab;
  // A guest's console exists once it has booted (in the first job): ask when needed.
  const consoleLogOf = () => machine.consoleLogs()[0] ?? runDir.consoleLog;
  const job = keptDriverJob(module, lab.testProgram, opts);
  let node = 'unknown';
  let leftBehind: string[] = [];
  try {
    progress('job', `loading ${module.name}`);
    node = loadedDevice(await machine.runJob(job), module.name, 'the shell', consoleLogOf());
    progress('job', `${module.name} is loaded; its device: ${node}; mmap-test is on the PATH`);
    await machine.interact({ ...opts.session, moduleName: module.name });
  } finally {
    leftBehind = await machine.close();
  }
  return { device: node, consoleLog: consoleLogOf(), leftBehind, notes };
}
