/**
 * A job for the guest: the driver, the test program, and what to run. Packed
 * as a cpio payload: job-<id>/run.sh (vm/job.sh) and job-<id>/job.env, plus the
 * files it needs under files/, named by content hash so a guest that already
 * has one from an earlier job is not sent it again. The same job runs in a
 * booted guest, a restored snapshot, or (later) over SSH.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { archOfMachine, kprobeArgs, unameOf, type Arch } from '../kernel/arch.js';
import { projectPaths } from '../util/paths.js';
import { shellQuote } from '../util/shell-quote.js';
import { cpioArchive, withParents, type CpioEntry } from './cpio.js';
import type { CheckName } from '../model/checks.js';

export interface LabJob {
  id: number;
  /** The strategy this job loads (for the report; the module learns it from moduleParams). */
  strategy: string;
  /** The built driver. */
  modulePath: string;
  /** The name rmmod knows it by. */
  moduleName: string;
  moduleParams: string[];
  /** The driver's name in /proc/devices, and the node the job creates for it. */
  deviceName: string;
  device: string;
  testProgram: string;
  checks: readonly CheckName[];
  pages: number;
  /** The 32-bit word expected at the start of every page. */
  pattern: number;
  /** Inside the guest: the longest any single step may take. */
  stepTimeoutS: number;
  /**
   * A driver of the user's own: find its device when deviceName is empty (or use
   * `device` if it exists), look for vmalloc areas left after rmmod, report taint.
   */
  inspect?: boolean;
  /** More mmap-test options, e.g. --no-index --pfns. */
  testFlags?: string[];
  /** Leave the driver loaded after the checks (mmaplab shell). */
  keepLoaded?: boolean;
  /** PG_reserved's bit in page->flags for this kernel, to watch rmmod free reserved pages (INSPECT, STATE). */
  pgReservedBit?: number;
  /** Report what the job leaves in the guest (a guest that may serve another job; see parse/guest-after-job.ts). */
  reportState?: boolean;
  /** Report the loaded driver's sections and their addresses, from /sys/module/<name>/sections (mmaplab debug). */
  reportSections?: boolean;
  /** The driver is loaded already (by an earlier job that kept it): no insmod, only the checks on its device. */
  loaded?: boolean;
  /** No deadline on the host (mmaplab debug: the test may sit at a breakpoint for an hour). */
  untimed?: boolean;
  /** The lab's own test program is the job's program: run it as `./mmap-test N` for each N; node: its MMAP_DEV to link to the driver's device ('' where it makes its own). */
  lab?: { runs: readonly number[]; node: string };
}

/** The lab's job: the bundled driver's device, the seed's pattern, both modes. */
export function labJob(opts: {
  id: number;
  strategy: string;
  modulePath: string;
  moduleName: string;
  moduleParams: string[];
  testProgram: string;
  checks: readonly CheckName[];
  pages: number;
}): LabJob {
  return { ...opts, deviceName: 'mmaplab', device: '/dev/mmaplab0', pattern: 0xaabbccdd, stepTimeoutS: 20 };
}


/**
 * The kprobe fetch-args for a machine, by `uname -m`; undefined for an
 * architecture mmaplab does not know: the lab runs untraced and the report
 * says so, rather than read the wrong arguments.
 */
export function kprobeArgsFor(unameM: string): { remap: string; pageFree: string } | undefined {
  const a = archOfMachine(unameM);
  return a ? kprobeArgs(a) : undefined;
}

/** The kprobe settings of job.env (and of the agent's trace.env); empty where the architecture is not traced. */
export function traceEnv(unameM: string): Record<'REMAP_ARGS' | 'PAGE_FREE_ARGS', string> {
  const a = kprobeArgsFor(unameM);
  return { REMAP_ARGS: a?.remap ?? '', PAGE_FREE_ARGS: a?.pageFree ?? '' };
}

export function envFile(vars: Readonly<Record<string, string>>): string {
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
    .join('');
}

interface JobFile {
  /** Path under files/: content hash, then the original name. */
  name: string;
  data: Buffer;
  mode: number;
}

/** A job file's name under files/: its content hash, then its own name (the kernel log shows a program by it). */
export function jobFileName(path: string, data: Buffer): string {
  return `${createHash('sha256').update(data).digest('hex').slice(0, 12)}/${basename(path)}`;
}

async function jobFile(path: string, mode: number): Promise<JobFile> {
  const data = await readFile(path);
  return { name: jobFileName(path, data), data, mode };
}

/**
 * traceKeep: leave the kprobe events for the next job (a guest, thrown away after);
 * linkTest: put mmap-test into /bin for mmaplab shell (a guest; never on a real machine);
 * arch: the machine's, for where the traced calls' arguments are.
 */
export function jobEnv(job: LabJob, files: { module: string; test: string }, where: { traceKeep: boolean; linkTest: boolean; arch: string }): string {
  const vars: Record<string, string> = {
    JOB_ID: String(job.id),
    STRATEGY: job.strategy,
    MODULE: `../files/${files.module}`,
    MODULE_NAME: job.moduleName,
    MODULE_PARAMS: job.moduleParams.join(' '),
    DEVICE_NAME: job.deviceName,
    DEVICE: job.device,
    TEST: `../files/${files.test}`,
    CHECKS: job.checks.join(','),
    PAGES: String(job.pages),
    PATTERN: `0x${job.pattern.toString(16).padStart(8, '0')}`,
    STEP_TIMEOUT: String(job.stepTimeoutS),
    TRACE_KEEP: where.traceKeep ? '1' : '0',
    LINK_TEST: where.linkTest ? '1' : '0',
    INSPECT: job.inspect ? '1' : '0',
    STATE: job.reportState ? '1' : '0',
    TEST_FLAGS: (job.testFlags ?? []).join(' '),
    KEEP_LOADED: job.keepLoaded ? '1' : '0',
    PG_RESERVED_BIT: job.pgReservedBit === undefined ? '' : String(job.pgReservedBit),
    ...traceEnv(where.arch),
    MACHINE: where.arch,
    // mmaplab debug's own (job.sh reads them as 0 when unset): every other job's env stays as it was.
    ...(job.reportSections ? { SECTIONS: '1' } : {}),
    ...(job.loaded ? { LOADED: '1' } : {}),
    ...(job.lab ? { LAB_RUNS: job.lab.runs.join(' '), LAB_NODE: job.lab.node } : {}),
  };
  return envFile(vars);
}

export interface PayloadOptions {
  /** Put everything under this directory (the benchmark appends jobs to an initramfs). */
  dir?: string;
  /** Files the guest already holds (names under files/): not sent again, and added to. */
  inGuest?: Set<string>;
  /** The guest's architecture (where the traced calls' arguments are); default amd64. */
  arch?: Arch;
}

/** The job as a cpio, to be unpacked in the guest's /tmp (or under `dir`). */
export async function jobPayload(job: LabJob, opts: PayloadOptions = {}): Promise<Buffer> {
  const at = (name: string) => (opts.dir ? `${opts.dir}/${name}` : name);
  const module = await jobFile(job.modulePath, 0o644);
  const test = await jobFile(job.testProgram, 0o755);
  const jobDir = `job-${job.id}`;
  const entries: CpioEntry[] = [
    { type: 'file', path: at(`${jobDir}/run.sh`), data: await readFile(join(projectPaths.vm, 'job.sh')), mode: 0o755 },
    // A guest keeps its kprobe events between jobs; it is thrown away afterwards anyway.
    { type: 'file', path: at(`${jobDir}/job.env`), data: jobEnv(job, { module: module.name, test: test.name }, { traceKeep: true, linkTest: true, arch: unameOf(opts.arch ?? 'amd64') }) },
  ];
  for (const f of [module, test]) {
    if (opts.inGuest?.has(f.name)) continue;
    entries.push({ type: 'file', path: at(`files/${f.name}`), data: f.data, mode: f.mode });
    opts.inGuest?.add(f.name);
  }
  return cpioArchive(withParents(entries));
}
