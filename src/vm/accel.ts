/**
 * Choosing KVM or TCG. /dev/kvm existing proves nothing (nested KVM can hang
 * right after the firmware), so KVM is *probed*: a guest with a short deadline
 * must boot to the agent. The verdict is cached per machine, QEMU and host
 * kernel, so the probe's cost is paid once.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname, release } from 'node:os';
import { join } from 'node:path';
import { usageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import type { Accel } from './qemu-args.js';
import { hostArch, type Arch } from '../kernel/arch.js';

export type AccelRequest = 'auto' | Accel;

export interface AccelChoice {
  accel: Accel;
  /** Why, in one line, for the report. */
  reason: string;
  /** True when this run paid for a probe (say so once, not on every run). */
  probed: boolean;
}

export function parseAccel(text: string): AccelRequest {
  if (text === 'auto' || text === 'kvm' || text === 'tcg') return text;
  throw usageError(`--accel must be auto, kvm or tcg, not '${text}'`);
}

function kvmUsable(): string | undefined {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no /dev/kvm' : 'no read/write access to /dev/kvm (join the kvm group)';
  }
}

export function accelCacheKey(qemuVersion: string): string {
  let rdev = 0;
  try {
    rdev = statSync('/dev/kvm').rdev;
  } catch {
    /* no device */
  }
  return [hostname(), release(), qemuVersion, rdev].join('|');
}

interface CachedVerdict {
  key: string;
  kvmWorks: boolean;
  detail: string;
  checkedAt: string;
}

/** Whether KVM here can run a guest of arch at all: only of the host's own kind (x86 runs amd64 and i386; arm64 runs arm64). */
export function kvmRunsArch(guest: Arch, host: Arch = hostArch()): boolean {
  const family = (a: Arch) => (a === 'arm64' ? 'arm' : 'x86');
  return family(guest) === family(host);
}

/** The cached verdict of arch's QEMU: amd64's in accel.json (as before), each other's beside it, so two architectures never overwrite each other's. */
function verdictFile(cacheDir: string, arch: Arch): string {
  return join(cacheDir, arch === 'amd64' ? 'accel.json' : `accel-${arch}.json`);
}

export async function chooseAccel(opts: {
  requested: AccelRequest;
  cacheDir: string;
  qemuVersion: string;
  /** The guest's architecture (default amd64). */
  arch?: Arch;
  /** Boots a probe guest under KVM; resolves to undefined on success or a reason it failed. */
  probe: () => Promise<string | undefined>;
}): Promise<AccelChoice> {
  if (opts.requested === 'tcg') return { accel: 'tcg', reason: 'TCG requested (--accel tcg)', probed: false };
  const arch = opts.arch ?? 'amd64';
  if (!kvmRunsArch(arch)) {
    const why = `KVM runs only guests of this machine's own architecture (${hostArch()}), so the ${arch} guest is emulated`;
    if (opts.requested === 'kvm') throw usageError(`--accel kvm, but ${why}`);
    return { accel: 'tcg', reason: `TCG: ${why}`, probed: false };
  }
  const unusable = kvmUsable();
  if (opts.requested === 'kvm') {
    if (unusable) throw usageError(`--accel kvm, but ${unusable}`);
    return { accel: 'kvm', reason: 'KVM requested (--accel kvm)', probed: false };
  }
  if (unusable) return { accel: 'tcg', reason: `TCG: ${unusable}`, probed: false };

  const file = verdictFile(opts.cacheDir, arch);
  const key = accelCacheKey(opts.qemuVersion);
  try {
    const cached = JSON.parse(await readFile(file, 'utf8')) as CachedVerdict;
    if (cached.key === key) {
      return cached.kvmWorks
        ? { accel: 'kvm', reason: 'KVM (probed and working)', probed: false }
        : { accel: 'tcg', reason: `TCG: KVM is present but a probe guest ${cached.detail} (verdict cached ${cached.checkedAt.slice(0, 10)}; delete ${file} to probe again)`, probed: false };
    }
  } catch {
    /* no verdict yet */
  }
  const failure = await opts.probe();
  const verdict: CachedVerdict = { key, kvmWorks: failure === undefined, detail: failure ?? 'booted', checkedAt: new Date().toISOString() };
  await writeFileAtomic(file, `${JSON.stringify(verdict, null, 2)}\n`);
  return failure === undefined
    ? { accel: 'kvm', reason: 'KVM (probed and working)', probed: true }
    : { accel: 'tcg', reason: `TCG: KVM is present but a probe guest ${failure}; falling back (verdict cached in ${file})`, probed: true };
}

/** Whether KVM can be used here and exactly why not, for `mmaplab doctor` (TCG works either way). */
export async function kvmStatus(cacheDir: string, cpuinfo: () => string = () => readFileIf('/proc/cpuinfo')): Promise<{ usable: boolean; detail: string; fix?: string }> {
  const unusable = kvmUsable();
  if (unusable === 'no /dev/kvm') {
    if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo())) {
      return { usable: false, detail: 'no /dev/kvm, and this CPU shows no hardware virtualization (no vmx or svm flag in /proc/cpuinfo): in a VM or cloud instance, nested virtualization is off', fix: 'enable nested virtualization, or use a machine with KVM; guests run under TCG meanwhile, several times slower' };
    }
    return { usable: false, detail: 'no /dev/kvm although the CPU has virtualization: the kvm module is not loaded', fix: 'sudo modprobe kvm_intel (or kvm_amd); TCG works meanwhile' };
  }
  if (unusable) return { usable: false, detail: unusable, fix: 'sudo usermod -aG kvm "$USER", then log in again; TCG works meanwhile' };
  const file = join(cacheDir, 'accel.json');
  try {
    const cached = JSON.parse(await readFile(file, 'utf8')) as CachedVerdict;
    if (!cached.kvmWorks) return { usable: false, detail: `/dev/kvm is there, but a probe guest ${cached.detail} (${cached.checkedAt.slice(0, 10)})`, fix: `delete ${file} to probe again; TCG is used meanwhile` };
    return { usable: true, detail: `a probe guest booted under KVM (${cached.checkedAt.slice(0, 10)})` };
  } catch {
    return { usable: true, detail: '/dev/kvm is usable; the first run probes it with a guest' };
  }
}

function readFileIf(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
