/**
 * A job for the guest: the driver, the test program, and what to run. Packed
 * as a cpio payload holding run.sh (vm/job.sh) and job.env, so the same job
 * runs in a booted guest, a restored snapshot, or (later) over SSH.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { projectPaths } from '../util/paths.js';
import { cpioArchive, type CpioEntry } from './cpio.js';
import type { MapMode } from './protocol.js';

export interface LabJob {
  id: number;
  /** The built driver. */
  modulePath: string;
  moduleParams: string[];
  /** The driver's name in /proc/devices, and the node the job creates for it. */
  deviceName: string;
  device: string;
  testProgram: string;
  modes: readonly MapMode[];
  pages: number;
  /** The 32-bit word expected at the start of every page. */
  pattern: number;
  /** Inside the guest: the longest any single step may take. */
  stepTimeoutS: number;
}

/** The lab's job: the bundled driver's device, the seed's pattern, both modes. */
export function labJob(opts: { id: number; modulePath: string; moduleParams: string[]; testProgram: string; modes: readonly MapMode[]; pages: number }): LabJob {
  return { ...opts, deviceName: 'mmaplab', device: '/dev/mmaplab0', pattern: 0xaabbccdd, stepTimeoutS: 20 };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function jobEnv(job: LabJob): string {
  const vars: Record<string, string> = {
    JOB_ID: String(job.id),
    MODULE: basename(job.modulePath),
    MODULE_PARAMS: job.moduleParams.join(' '),
    DEVICE_NAME: job.deviceName,
    DEVICE: job.device,
    MODES: job.modes.join(' '),
    PAGES: String(job.pages),
    PATTERN: `0x${job.pattern.toString(16).padStart(8, '0')}`,
    STEP_TIMEOUT: String(job.stepTimeoutS),
  };
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
    .join('');
}

/** The job as a cpio; `dir` puts it in a directory (the benchmark appends it to an initramfs). */
export async function jobPayload(job: LabJob, dir?: string): Promise<Buffer> {
  const at = (name: string) => (dir ? `${dir}/${name}` : name);
  const entries: CpioEntry[] = [
    ...(dir ? [{ type: 'dir' as const, path: dir }] : []),
    { type: 'file', path: at('run.sh'), data: await readFile(join(projectPaths.vm, 'job.sh')), mode: 0o755 },
    { type: 'file', path: at('job.env'), data: jobEnv(job) },
    { type: 'file', path: at(basename(job.modulePath)), data: await readFile(job.modulePath) },
    { type: 'file', path: at('mmap-test'), data: await readFile(job.testProgram), mode: 0o755 },
  ];
  return cpioArchive(entries);
}
