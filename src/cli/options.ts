/**
 * The options of the commands that set up a lab, declared once, checked as
 * they are read, and turned into the command layer's options. A bad value is
 * a usage error (exit 2) naming what would be right.
 */
import { CommanderError, InvalidArgumentError, Option, type Command } from 'commander';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { archAndFlavour, DEFAULT_KERNEL, formatKernelSpec, parseKernelSpec, splitEntry } from '../kernel/spec.js';
import { ARCHES, archOfFlavour, defaultArch, type Arch } from '../kernel/arch.js';
import type { SetupOptions, TargetOptions } from '../machines/setup.js';
import { makeStyle } from '../report/style.js';
import { SshConfig } from '../ssh/ssh-config.js';
import { parseTargetUrl } from '../ssh/url.js';
import { isMmaplabError } from '../util/errors.js';
import type { Progress } from '../model/progress.js';
import { progressPrinter } from './progress.js';

/**
 * The least guest memory the lab boots in, measured with `mmaplab run
 * --memory N --no-snapshot`: bookworm's 6.1 cloud kernel with mmaplab's
 * initramfs ran the lab in 80 MiB and died out of memory in 64 MiB; at 96 MiB
 * bullseye's 5.10 and sid's 7.2 ran it too.
 */
export const MIN_MEMORY_MB = 96;

/** A usage error (exit 2) raised while reading options. */
export function usage(message: string): CommanderError {
  return new CommanderError(2, 'mmaplab.usage', message);
}

export function positiveInt(name: string, max: number, min = 1, why = '') {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}${why}`);
    return n;
  };
}

/** An error about a value the user gave, as the one line a usage error prints. */
export function valueError(e: unknown): string {
  return isMmaplabError(e) ? `${e.message} (${e.hint ?? ''})` : String(e);
}

/** One kernel spec, checked as commander reads it (a bad one is a usage error naming what would be right). */
export function kernelSpecValue(v: string): string {
  try {
    return formatKernelSpec(parseKernelSpec(v));
  } catch (e) {
    throw new InvalidArgumentError(valueError(e));
  }
}

/** One --kernel value of run, check and shell: a spec, or `all`. */
export function kernelListValue(v: string): string {
  return v.trim() === 'all' ? 'all' : kernelSpecValue(v);
}

/** --kernel may be given several times; each value is checked as it is read. */
function kernelSpecArg(v: string, previous: string[]): string[] {
  return [...previous, kernelListValue(v)];
}

/** The accelerators --accel takes. */
export const ACCELS = ['auto', 'kvm', 'tcg'] as const;

/**
 * The parsers of the numeric options, one per option, shared by every command
 * that has it and by the project config file, so the rules cannot drift.
 */
export const parseTimeout = positiveInt('--timeout', 3600);
export const parseBuildTimeout = positiveInt('--build-timeout', 7200);
export const parseJobs = positiveInt('--jobs', 64);
export const parseMemory = positiveInt('--memory', 16384, MIN_MEMORY_MB, ` (the lab's kernels do not boot in less than ${MIN_MEMORY_MB} MiB)`);

/** A comma-separated selection from a known list, in the list's order; unknown names are a usage error. */
export function listOption(flag: string, value: string | undefined, known: readonly string[]): string[] {
  if (value === undefined) return [...known];
  const picked = value.split(',').map((v) => v.trim()).filter(Boolean);
  const unknown = picked.filter((v) => !known.includes(v));
  if (unknown.length || picked.length === 0) throw usage(`${flag}: unknown ${unknown.length ? `'${unknown.join(', ')}'` : 'empty list'}; choose from ${known.join(', ')}`);
  // Keep the canonical order, so grids always read the same way.
  return known.filter((k) => picked.includes(k));
}

/** The options addGuestOptions() declares, as commander hands them over. */
export interface GuestCliOptions {
  kernel: string[];
  jobs: number;
  junit?: string;
  html?: string;
  flavour?: string;
  /** --arch, one or several (a matrix: kernels x arches). */
  arch?: Arch[];
  accel: 'auto' | 'kvm' | 'tcg';
  timeout: number;
  memory: number;
  json?: boolean;
  outputDir?: string;
  archiveUri?: string;
  securityUri?: string;
  refreshKernel?: boolean;
  color?: boolean;
  verbose?: boolean;
  target?: string;
  sshConfig?: string;
  identity?: string;
  knownHosts?: string;
  acceptHostKey?: string;
  allowOwnKernel?: boolean;
  connectTimeout: number;
  snapshot?: boolean;
  guestPerJob?: boolean;
  trustDriver?: boolean;
  /** Set with trustDriver when the project's config file trusted the driver: which file. */
  trustedBy?: string;
  buildTimeout: number;
}

/** Options every command that sets up a lab takes. */
export function addGuestOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--kernel <spec>', 'kernel to boot: debian:<suite> (bullseye, bookworm, bookworm-backports, trixie, sid), host, local:<bzImage>[,<tree>], or all; give it several times for a matrix')
        .default([], DEFAULT_KERNEL)
        .argParser(kernelSpecArg),
    )
    .addOption(new Option('--jobs <n>', 'guests to run at once (a matrix shares them between its kernels)').default(cpus().length, 'the number of cores').argParser(parseJobs))
    .option('--junit <file>', 'also write JUnit XML: one testcase per kernel x strategy x check')
    .addOption(archListOption())
    .addOption(flavourOption())
    .option('--html <file>', 'also write the report as one HTML page that opens offline: the grid, the explanations, each mapping page by page, the kernel log')
    .addOption(new Option('--accel <accel>', 'accelerator: auto probes KVM and falls back to TCG').choices(ACCELS).default('auto'))
    .addOption(new Option('--timeout <seconds>', 'hard deadline for each job, boot included').default(120).argParser(parseTimeout))
    .addOption(new Option('--memory <MiB>', 'guest memory').default(256).argParser(parseMemory))
    .option('--json', 'print the result as one JSON document (schemaVersion 2; see README)')
    .option('--output-dir <dir>', 'keep the artefacts here instead of the state directory')
    .addOption(new Option('--archive-uri <uri>', "Debian archive to fetch kernels from (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_ARCHIVE'))
    .addOption(new Option('--security-uri <uri>', "Debian security archive (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_SECURITY_ARCHIVE'))
    .option('--refresh-kernel', 'look up the newest kernel of the suite even when one is cached')
    .option('--target <url>', 'run on a real machine over SSH instead of a guest: ssh://[user@]host[:port], host may be a Host alias of ~/.ssh/config (its own kernel; sudo -n, gcc, make and its kernel headers there)')
    .option('--ssh-config <file>', "ssh_config file --target's host is resolved through, as ssh does (default: ~/.ssh/config if there is one; none: read none)")
    .option('--identity <file>', 'SSH private key for --target and its jump hosts (default: ssh-agent, then IdentityFile from ssh_config, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa)')
    .option('--known-hosts <file>', 'known_hosts file to verify the target against (default: UserKnownHostsFile from ssh_config, else ~/.ssh/known_hosts)')
    .option('--accept-host-key <fingerprint>', 'trust the target presenting this host key (SHA256:..., as printed when it is unknown); an unknown key is then added to known_hosts')
    .option('--allow-own-kernel', 'let --target be this very machine (same boot_id): the driver is loaded into the kernel mmaplab runs on')
    .addOption(new Option('--connect-timeout <seconds>', 'how long to wait for the SSH connection').default(20).argParser(positiveInt('--connect-timeout', 600)))
    .option('--trust-driver', "build the driver without the sandbox, as you, with your files and network (MMAPLAB_TRUST_DRIVER=1 does the same); only for code you trust")
    .addOption(new Option('--build-timeout <seconds>', "the driver's build is stopped, with every process it started, after this long").default(300).argParser(parseBuildTimeout))
    .option('--no-snapshot', "boot a guest instead of restoring the kernel's cached snapshot (mmaplab shell always boots)")
    .option('--snapshot', 'restore the cached snapshot (the default; undoes snapshot: false in the project config file)')
    .option('--guest-per-job', 'restore a fresh guest for every job, even after a job that left its guest as it was')
    .option('--no-color', 'plain output even on a terminal')
    .option('-v, --verbose', 'show progress and every command run')
    .addOption(configOption())
    .addOption(noConfigOption());
}

/** --arch: the guest's architecture; default the host's (amd64 where mmaplab boots no guests of it). */
const ARCH_HELP = `the guest's architecture, ${ARCHES.join(', ')} (default: ${defaultArch()}, this machine's own, else amd64)`;
export const archOption = () => new Option('--arch <arch>', ARCH_HELP).choices(ARCHES);

/** --arch of run and check: one, or several (comma-separated or repeated) for a matrix of kernels x arches. */
export const archListOption = () =>
  new Option('--arch <arch>', `${ARCH_HELP}; several, comma-separated or repeated, make a matrix of kernels x arches`).argParser((v: string, previous: Arch[] | undefined) => {
    const picked = listOption('--arch', v, ARCHES) as Arch[];
    return [...(previous ?? []), ...picked.filter((a) => !previous?.includes(a))];
  });
/** --flavour: the kernel flavour, by default the architecture's fastest to boot. */
export const flavourOption = (of = '') => new Option('--flavour <flavour>', `Debian kernel flavour${of} (default: the architecture's fastest to boot: cloud-amd64, 686-pae, cloud-arm64)`);

/** --config and --no-config, on every command that reads the project's settings (see cli/project-config). */
export const configOption = () => new Option('--config <file>', 'read the project settings from this file instead of the mmaplab.config.* found from the current directory up');
export const noConfigOption = () => new Option('--no-config', 'read no project config file');

/** --target and its companions, checked: a target runs its own kernel, so --kernel does not go with it. */
function targetOptions(o: GuestCliOptions): TargetOptions {
  if (o.kernel.length > 0) throw usage("--target runs the lab on the target's own kernel; --kernel does not go with it");
  if (o.arch?.length) throw usage("--target runs the lab on the target's own machine, whose architecture it reads; --arch does not go with it");
  let target;
  try {
    target = parseTargetUrl(o.target!, SshConfig.load(o.sshConfig));
  } catch (e) {
    throw usage(isMmaplabError(e) ? `${e.message}${e.hint ? ` (${e.hint})` : ''}` : String(e));
  }
  if (o.acceptHostKey && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(o.acceptHostKey)) {
    throw usage(`--accept-host-key takes a fingerprint as mmaplab or ssh-keygen -l prints it (SHA256:...), not '${o.acceptHostKey}'`);
  }
  return {
    target,
    identity: o.identity ? resolve(o.identity) : undefined,
    knownHosts: o.knownHosts ? resolve(o.knownHosts) : undefined,
    acceptHostKey: o.acceptHostKey,
    allowOwnKernel: !!o.allowOwnKernel,
    connectTimeoutS: o.connectTimeout,
  };
}

/** The command layer's options from the CLI's, with progress: where it goes, or true for plain lines on stderr. */
export function setupOptions(o: GuestCliOptions, progress: boolean | Progress | undefined, kernelEntry = o.kernel[0] ?? DEFAULT_KERNEL, label = ''): SetupOptions {
  const err = makeStyle({ color: o.color === false ? false : undefined, stream: process.stderr });
  // A matrix across architectures names its entries <spec>/<arch>; its flavour (the project config's, say) serves only its own architecture's entries.
  const across = (o.arch?.length ?? 0) > 1;
  const entry = across ? splitEntry(kernelEntry) : { kernel: kernelEntry, arch: o.arch?.[0] };
  const kernel = entry.kernel;
  const ofFlavour = o.flavour ? archOfFlavour(o.flavour) : undefined;
  const flavour = across && ofFlavour && ofFlavour !== entry.arch ? undefined : o.flavour;
  return {
    kernel,
    ...archAndFlavour(entry.arch, flavour),
    accel: o.accel,
    timeoutS: o.timeout,
    memoryMb: o.memory,
    outputDir: o.outputDir,
    archiveUri: o.archiveUri,
    securityUri: o.securityUri,
    refreshKernel: !!o.refreshKernel,
    ...(o.target ? { target: targetOptions(o) } : {}),
    snapshot: o.snapshot !== false,
    shareGuests: !o.guestPerJob,
    trustDriver: !!o.trustDriver,
    trustedBy: o.trustDriver ? o.trustedBy : undefined,
    buildTimeoutS: o.buildTimeout,
    ...(typeof progress === 'function' ? { onProgress: progress } : progress ? { onProgress: progressPrinter(err, label) } : {}),
  };
}

/** The driver a shell or a debug session loads: a folder or file of the user's, or the bundled driver with --strategy. */
export function addDriverChoice(cmd: Command): Command {
  return cmd
    .argument('[driver]', 'a driver of your own (folder or .c file); default: the bundled driver')
    .option('--strategy <name>', "the bundled driver's strategy to load", 'seed');
}

/** The bundled driver's --strategy must be one of its strategies (a driver of the user's own names none). */
export async function checkDriverChoice(driver: string | undefined, strategy: string): Promise<void> {
  const { STRATEGIES } = await import('../diagnose/expectations.js');
  if (!driver && !STRATEGIES.includes(strategy)) throw usage(`--strategy must be one of: ${STRATEGIES.join(', ')}`);
}
