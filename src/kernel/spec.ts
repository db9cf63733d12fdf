/** Kernel specs as the user writes them on the command line. */
import { usageError } from '../util/errors.js';
import { ARCH_INFO, archOfFlavour, defaultArch, GUEST_ARCHES, type Arch } from './arch.js';

export type KernelSpec =
  | {
      kind: 'debian';
      /** A Debian suite: bookworm, bullseye, trixie, sid, bookworm-backports, ... */
      suite: string;
      /** Kernel flavour, e.g. cloud-amd64 (fast to boot) or amd64. */
      flavour: string;
      /** The architecture the flavour is for. */
      arch: Arch;
      /** debian:<suite>@<version>: exactly this package version of the kernel (a grade made reproducible), else the newest. */
      version?: string;
    }
  /** The kernel this machine runs: its image and /lib/modules/<release>/build. */
  | { kind: 'host' }
  /** A kernel the user built: a bzImage and the tree (or headers) to build modules against. */
  | { kind: 'local'; image: string; kdir: string | undefined };

export const DEFAULT_KERNEL = 'debian:bookworm';
export const DEFAULT_FLAVOUR = 'cloud-amd64';

/** What `--kernel all` means: every Debian series the lab is tested on, oldest first. */
export const ALL_KERNELS: readonly string[] = ['debian:bullseye', 'debian:bookworm', 'debian:bookworm-backports', 'debian:trixie', 'debian:sid'];

const HELP = `use debian:<suite>[@<version>] (e.g. ${DEFAULT_KERNEL}), host, local:<bzImage>[,<kernel tree>], or all`;

/**
 * The Debian suites whose kernels the lab runs on: bullseye's 5.10 and every
 * release after it (and their backports), by codename or by alias. Older
 * releases (buster's 4.19) predate the kernel APIs the lab is checked against.
 */
export const DEBIAN_SUITES: readonly string[] = ['bullseye', 'bookworm', 'trixie', 'forky', 'duke', 'sid', 'oldoldstable', 'oldstable', 'stable', 'testing', 'unstable', 'experimental'];

/** A suite, or one of its -backports, -updates, -security or -proposed-updates suites (never of a rolling one). */
function knownSuite(suite: string): boolean {
  const base = baseSuite(suite);
  return DEBIAN_SUITES.includes(base) && !(base !== suite && ['sid', 'unstable', 'experimental'].includes(base));
}

/** A suite without its -backports, -updates, -security or -proposed-updates: bookworm-backports -> bookworm. */
export function baseSuite(suite: string): string {
  return /^(.*?)(-(?:backports|updates|security|proposed-updates))?$/.exec(suite)![1]!;
}

/**
 * --arch and --flavour together: the flavour defaults to the architecture's
 * fastest-booting one, the architecture to the flavour's (else the host's);
 * a flavour of another architecture is refused.
 */
export function archAndFlavour(arch: Arch | undefined, flavour: string | undefined): { arch: Arch; flavour: string } {
  const ofFlavour = flavour ? archOfFlavour(flavour) : undefined;
  const a = arch ?? ofFlavour ?? defaultArch();
  if (!GUEST_ARCHES.includes(a)) throw usageError(`mmaplab does not boot ${a} guests yet`, `it boots ${GUEST_ARCHES.join(' and ')} guests; a machine of ${a} is checked over SSH (--target ssh://host), its own kernel traced`);
  if (flavour && ofFlavour && ofFlavour !== a) throw usageError(`--flavour ${flavour} is a kernel for ${ofFlavour}, not ${a}`, `leave --flavour (or the project config's flavour:) out for ${a}'s ${ARCH_INFO[a].defaultFlavour}, or give --arch ${ofFlavour}`);
  return { arch: a, flavour: flavour ?? ARCH_INFO[a].defaultFlavour };
}

/** A suite that ships no kernels of the architecture, refused by name before any download. */
function checkSuiteShips(suite: string, arch: Arch, text: string): void {
  const base = baseSuite(suite);
  const ships = ARCH_INFO[arch].suites;
  // Aliases (stable, oldstable, ...) move with time: the archive answers for them.
  const codename = !['oldoldstable', 'oldstable', 'stable', 'testing', 'unstable', 'experimental'].includes(base);
  if (ships && codename && !ships.includes(base)) {
    throw usageError(`debian:${suite} ships no ${arch} kernel ('${text}')`, `Debian's ${arch} kernels are in ${ships.map((s) => `debian:${s}`).join(' and ')}; use one of them, or another --arch`);
  }
}

export function parseKernelSpec(text: string, flavour = DEFAULT_FLAVOUR, arch: Arch = archOfFlavour(flavour) ?? 'amd64'): KernelSpec {
  const t = text.trim();
  const m = /^debian:([a-z][a-z0-9-]*)(?:@(.*))?$/.exec(t);
  if (m) {
    if (!knownSuite(m[1]!)) throw usageError(`unknown Debian suite '${m[1]}' in '${text}'`, `the lab runs on ${DEBIAN_SUITES.join(', ')} (and their -backports, -updates, -security); e.g. ${DEFAULT_KERNEL}`);
    const version = m[2];
    // Debian's version syntax (policy 5.6.12): digits first, then alphanumerics and . + ~ - :
    if (version !== undefined && !/^[0-9][A-Za-z0-9.+~:-]{0,63}$/.test(version)) throw usageError(`'${version}' in '${text}' is not a Debian package version`, `pin a kernel as debian:<suite>@<version>, the version mmaplab recorded with a result (e.g. ${DEFAULT_KERNEL}@6.1.192-3)`);
    checkSuiteShips(m[1]!, arch, text);
    return { kind: 'debian', suite: m[1]!, flavour, arch, ...(version ? { version } : {}) };
  }
  if (t === 'host') return { kind: 'host' };
  const l = /^local:([^,]+)(?:,(.+))?$/.exec(t);
  if (l) return { kind: 'local', image: l[1]!, kdir: l[2] };
  throw usageError(`unknown kernel spec '${text}'`, HELP);
}

export function formatKernelSpec(spec: KernelSpec): string {
  switch (spec.kind) {
    case 'debian':
      return `debian:${spec.suite}${spec.version ? `@${spec.version}` : ''}`;
    case 'host':
      return 'host';
    case 'local':
      return `local:${spec.image}${spec.kdir ? `,${spec.kdir}` : ''}`;
  }
}

/** Every --kernel value, `all` expanded (to the suites that ship the architecture's kernels), each spec once, in the order given. */
export function expandKernelSpecs(values: readonly string[], arch?: Arch): string[] {
  const ships = arch ? ARCH_INFO[arch].suites : undefined;
  const all = ALL_KERNELS.filter((k) => !ships || ships.includes(k.replace(/^debian:/, '')));
  const out: string[] = [];
  for (const v of values.length ? values : [DEFAULT_KERNEL]) {
    for (const s of v.trim() === 'all' ? all : [formatKernelSpec(parseKernelSpec(v))]) if (!out.includes(s)) out.push(s);
  }
  return out;
}

/**
 * The entries of a run on several kernels and architectures: kernels x
 * arches, each named `<spec>/<arch>` where more than one architecture is asked
 * for (the matrix's, JSON's and JUnit's name of it), else the plain spec.
 */
export function matrixEntries(values: readonly string[], arches: readonly Arch[] | undefined): string[] {
  const list: ReadonlyArray<Arch | undefined> = arches?.length ? arches : [undefined];
  const out: string[] = [];
  for (const spec of expandKernelSpecs(values)) {
    for (const a of list) {
      // `all` is every suite that ships the architecture's kernels; a suite named outright is refused by name, before anything runs.
      if (a && !expandKernelSpecs(values, a).includes(spec)) continue;
      if (a && spec.startsWith('debian:')) parseKernelSpec(spec, ARCH_INFO[a].defaultFlavour, a);
      out.push(list.length > 1 ? `${spec}/${a}` : spec);
    }
  }
  return out;
}

/** A matrix entry back into its kernel spec and architecture. */
export function splitEntry(entry: string): { kernel: string; arch: Arch | undefined } {
  const m = /^(.*)\/(amd64|i386|arm64)$/.exec(entry);
  return m ? { kernel: m[1]!, arch: m[2] as Arch } : { kernel: entry, arch: undefined };
}

/** A short, file-name-safe label for a spec: bookworm, bookworm-backports, host, local-bzImage. */
export function kernelSlug(spec: string): string {
  return spec.replace(/^debian:/, '').replace(/^local:([^,]*).*$/, (_m, p: string) => `local-${p.split('/').pop() ?? 'kernel'}`).replace(/[^\w.+-]+/g, '_');
}
