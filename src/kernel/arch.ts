/**
 * The machine architectures mmaplab boots guests of, and what differs between
 * them: Debian's name and kernel flavours, the suites that ship kernels of it,
 * QEMU, Kbuild's ARCH, the userspace compiler flags, and where a kprobe finds
 * the traced calls' arguments. Everything else (the agent, the job protocol,
 * the checks) is the same on all of them.
 */
import { arch as nodeArch } from 'node:os';

export type Arch = 'amd64' | 'i386' | 'arm64';
export const ARCHES: readonly Arch[] = ['amd64', 'i386', 'arm64'];

export interface ArchInfo {
  arch: Arch;
  /** What `uname -m` says on a machine of it. */
  unameMachines: readonly string[];
  /** The flavour booted when none is given: the fastest to boot. */
  defaultFlavour: string;
  /** The Debian suites (base codenames) whose kernels exist for it; undefined: every suite. */
  suites: readonly string[] | undefined;
  qemu: { binary: string; package: string };
  /** Kbuild's ARCH= for a module of this architecture. */
  kbuildArch: string;
  /** gcc's flags for a static userspace program of it, with the host's gcc (x86 only). */
  userCflags: readonly string[];
  /** Bits in a long: the kprobe fetch types follow it. */
  bits: 32 | 64;
  /** Debian's GNU triplet, the prefix of its cross tools (gcc, addr2line). */
  gnuTriplet: string;
  /** The kernel's name for the first serial port of QEMU's machine (the console). */
  serialConsole: string;
}

export const ARCH_INFO: Readonly<Record<Arch, ArchInfo>> = {
  amd64: { arch: 'amd64', unameMachines: ['x86_64'], defaultFlavour: 'cloud-amd64', suites: undefined, qemu: { binary: 'qemu-system-x86_64', package: 'qemu-system-x86' }, kbuildArch: 'x86_64', userCflags: [], bits: 64, gnuTriplet: 'x86_64-linux-gnu', serialConsole: 'ttyS0' },
  // Debian ships i386 kernels up to bookworm; trixie dropped them.
  i386: { arch: 'i386', unameMachines: ['i686', 'i586', 'i386'], defaultFlavour: '686-pae', suites: ['bullseye', 'bookworm'], qemu: { binary: 'qemu-system-i386', package: 'qemu-system-x86' }, kbuildArch: 'i386', userCflags: ['-m32'], bits: 32, gnuTriplet: 'i686-linux-gnu', serialConsole: 'ttyS0' },
  arm64: { arch: 'arm64', unameMachines: ['aarch64'], defaultFlavour: 'cloud-arm64', suites: undefined, qemu: { binary: 'qemu-system-aarch64', package: 'qemu-system-arm' }, kbuildArch: 'arm64', userCflags: [], bits: 64, gnuTriplet: 'aarch64-linux-gnu', serialConsole: 'ttyAMA0' },
};

export function isArch(s: string): s is Arch {
  return (ARCHES as readonly string[]).includes(s);
}

/** The architectures mmaplab boots guests of (all it knows). */
export const GUEST_ARCHES: readonly Arch[] = ['amd64', 'i386', 'arm64'];

/** This machine's architecture, in Debian's words: whose programs (Kbuild's tools, busybox) run here. */
export function hostArch(node = nodeArch()): Arch {
  return node === 'arm64' ? 'arm64' : node === 'ia32' ? 'i386' : 'amd64';
}

/** The guests' architecture by default: the host's where mmaplab boots guests of it, else amd64. */
export function defaultArch(node = nodeArch()): Arch {
  const h = hostArch(node);
  return GUEST_ARCHES.includes(h) ? h : 'amd64';
}

/** The architecture a Debian flavour's kernels are for: cloud-amd64, rt-amd64 -> amd64; 686, 686-pae -> i386; arm64, cloud-arm64 -> arm64. */
export function archOfFlavour(flavour: string): Arch | undefined {
  if (/(^|-)amd64$/.test(flavour)) return 'amd64';
  if (/^686(-pae)?$|^rt-686-pae$/.test(flavour)) return 'i386';
  if (/(^|-)arm64(-16k)?$/.test(flavour)) return 'arm64';
  return undefined;
}

/** The architecture of an ELF e_machine: EM_386, EM_X86_64, EM_AARCH64. */
export function archOfElfMachine(machine: number | undefined): Arch | undefined {
  return machine === 3 ? 'i386' : machine === 62 ? 'amd64' : machine === 183 ? 'arm64' : undefined;
}

/** What `uname -m` says on a guest of arch (i386: i686). */
export function unameOf(a: Arch): string {
  return ARCH_INFO[a].unameMachines[0]!;
}

/** The architecture a machine is of, from `uname -m` (an SSH target's); undefined where mmaplab knows none. */
export function archOfMachine(unameM: string): Arch | undefined {
  return ARCHES.find((a) => ARCH_INFO[a].unameMachines.includes(unameM));
}

/**
 * Where the traced calls' arguments are, as kprobe fetch-args.
 * remap: remap_pfn_range(vma, addr, pfn, size, prot); pageFree:
 * __free_pages(page, order), page->flags first. x86-64 names its registers
 * (vma %di, addr %si, pfn %dx, size %cx), which every kernel takes, SSH
 * targets older than 4.20 too; elsewhere `$argN` (4.20 and later), which the
 * kernel maps to the calling convention (on i386 the first three arguments
 * in registers, the fourth on the stack, which no register name reaches),
 * typed by the word size.
 */
export function kprobeArgs(a: Arch): { remap: string; pageFree: string } {
  if (a === 'amd64') return { remap: 'addr=%si:x64 pfn=%dx:x64 size=%cx:x64', pageFree: 'flags=+0(%di):x64 order=%si:u32' };
  const w = ARCH_INFO[a].bits === 64 ? 'x64' : 'x32';
  return { remap: `addr=$arg2:${w} pfn=$arg3:${w} size=$arg4:${w}`, pageFree: `flags=+0($arg1):${w} order=$arg2:u32` };
}

/** The architecture a kernel's .config builds for; undefined for one mmaplab does not boot. */
export function archOfConfig(configText: string): Arch | undefined {
  if (/^CONFIG_X86_64=y$/m.test(configText)) return 'amd64';
  if (/^CONFIG_X86_32=y$/m.test(configText)) return 'i386';
  if (/^CONFIG_ARM64=y$/m.test(configText)) return 'arm64';
  return undefined;
}

/**
 * The prefix of the cross tools that build kernel code of arch here ("" for
 * the host's own tools): x86 builds either word size with the host's gcc
 * (-m32 follows CONFIG_X86_32); other architectures need a cross toolchain.
 */
export function crossPrefix(a: Arch, host: Arch = hostArch()): string {
  const x86 = (x: Arch) => x === 'amd64' || x === 'i386';
  return a === host || (x86(a) && x86(host)) ? '' : `${ARCH_INFO[a].gnuTriplet}-`;
}

/** Debian's name of a cross package for arch: gcc-12-<this>, binutils-<this> (x86_64 is spelt x86-64 there). */
export function crossPackageSuffix(a: Arch): string {
  return ARCH_INFO[a].gnuTriplet.replace(/_/g, '-');
}

/** Kbuild's ARCH= (and cross prefix) for a module of arch built here; none for the host's own (Kbuild's default). */
export function kbuildArchArgs(a: Arch, host: Arch = hostArch()): string[] {
  if (a === host) return [];
  const cross = crossPrefix(a, host);
  return [`ARCH=${ARCH_INFO[a].kbuildArch}`, ...(cross ? [`CROSS_COMPILE=${cross}`] : [])];
}
