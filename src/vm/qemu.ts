/** Facts about the host's QEMU. */
import { existsSync, readFileSync } from 'node:fs';
import { runChecked } from '../util/exec.js';
import { requireTool } from '../util/tools.js';
import { ARCH_INFO, type Arch } from '../kernel/arch.js';

export interface QemuInfo {
  binary: string;
  /** The guests' architecture it emulates. */
  arch: Arch;
  version: string;
  /** qboot skips SeaBIOS: about 0.1-0.2 s less per boot (x86; arm64's virt needs no firmware to boot a kernel). */
  firmware: string | undefined;
  /** This machine's TSC rate, when it can be known (microvm under TCG boots faster when told). */
  tscKhz: number | undefined;
}

const QBOOT = ['/usr/share/qemu/qboot.rom', '/usr/share/qboot/bios.bin'];

/** The QEMU that boots guests of arch. */
export async function qemuInfo(arch: Arch = 'amd64'): Promise<QemuInfo> {
  const name = ARCH_INFO[arch].qemu.binary;
  const binary = requireTool(name);
  const r = await runChecked('missing-tool', `${name} --version`, binary, ['--version']);
  const version = /version\s+(\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
  return { binary, arch, version, firmware: arch === 'arm64' ? undefined : QBOOT.find((p) => existsSync(p)), tscKhz: hostTscKhz() };
}

/**
 * The TSC rate, from what states it rather than from "cpu MHz" (the current
 * clock, which frequency scaling moves): the kernel's tsc_freq_khz where it
 * has one, else an Intel model name's rated clock ("@ 2.10GHz"; Intel's
 * invariant TSC ticks at that rate). Unknown: microvm calibrates itself.
 */
export function hostTscKhz(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | undefined {
  try {
    const khz = Number(read('/sys/devices/system/cpu/cpu0/tsc_freq_khz').trim());
    if (Number.isInteger(khz) && khz > 0) return khz;
  } catch {
    /* not exposed by this kernel */
  }
  try {
    const cpuinfo = read('/proc/cpuinfo');
    if (!/^flags\s*:.*\bconstant_tsc\b/m.test(cpuinfo)) return undefined;
    const m = /^model name\s*:\s*Intel.*@\s*(\d+(?:\.\d+)?)GHz/m.exec(cpuinfo);
    return m ? Math.round(Number(m[1]) * 1_000_000) : undefined;
  } catch {
    return undefined;
  }
}
