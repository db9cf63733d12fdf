/**
 * Command-line wiring only: options are declared here and handed to command
 * functions, which return data; renderers turn it into text or JSON. One catch
 * at the top turns every error into a one-line message and an exit code.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { cpus } from 'node:os';
import { DEFAULT_KERNEL, formatKernelSpec, parseKernelSpec } from '../kernel/spec.js';
import { isMmaplabError } from '../util/errors.js';
import { errorExitCode, ExitCode } from '../model/exit.js';
import { cacheRoot, stateRoot } from '../util/paths.js';
import { VERSION } from '../util/version.js';
import { makeStyle } from '../report/style.js';
import { reportError } from './report-error.js';
import { parseTargetUrl } from '../ssh/url.js';
import { progressPrinter } from './progress.js';

function positiveInt(name: string, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}`);
    return n;
  };
}

/** --kernel may be given several times; each value is checked as it is read. */
function kernelSpecArg(v: string, previous: string[]): string[] {
  try {
    return [...previous, v.trim() === 'all' ? 'all' : formatKernelSpec(parseKernelSpec(v))];
  } catch (e) {
    throw new InvalidArgumentError(isMmaplabError(e) ? `${e.message} (${e.hint ?? ''})` : String(e));
  }
}

/** The command layer's GuestOptions from the CLI's, with progress on stderr when wanted. */
function guestOptions(o: GuestCliOptions, showProgress: boolean, kernel = o.kernel[0] ?? DEFAULT_KERNEL, label = '') {
  const err = makeStyle({ color: o.color === false ? false : undefined, stream: process.stderr });
  return {
    kernel,
    flavour: o.flavour,
    accel: o.accel,
    timeoutS: o.timeout,
    memoryMb: o.memory,
    outputDir: o.outputDir,
    archiveUri: o.archiveUri,
    securityUri: o.securityUri,
    refreshKernel: !!o.refreshKernel,
    ...(o.target ? { target: targetOptions(o) } : {}),
    snapshot: o.snapshot !== false,
    onProgress: showProgress ? progressPrinter(err, label) : undefined,
  };
}

/** --target and its companions, checked: a target runs its own kernel, so --kernel does not go with it. */
function targetOptions(o: GuestCliOptions) {
  if (o.kernel.length > 0) throw new CommanderError(2, 'mmaplab.usage', "--target runs the lab on the target's own kernel; --kernel does not go with it");
  let target;
  try {
    target = parseTargetUrl(o.target!);
  } catch (e) {
    throw new CommanderError(2, 'mmaplab.usage', isMmaplabError(e) ? `${e.message}${e.hint ? ` (${e.hint})` : ''}` : String(e));
  }
  if (o.acceptHostKey && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(o.acceptHostKey)) {
    throw new CommanderError(2, 'mmaplab.usage', `--accept-host-key takes a fingerprint as mmaplab or ssh-keygen -l prints it (SHA256:...), not '${o.acceptHostKey}'`);
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

/** Options every command that boots a guest takes. */
function addGuestOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--kernel <spec>', 'kernel to boot: debian:<suite> (bullseye, bookworm, bookworm-backports, trixie, sid), host, local:<bzImage>[,<tree>], or all; give it several times for a matrix')
        .default([], DEFAULT_KERNEL)
        .argParser(kernelSpecArg),
    )
    .addOption(new Option('--jobs <n>', 'guests to run at once in a matrix').default(cpus().length, 'the number of cores').argParser(positiveInt('--jobs', 64)))
    .option('--junit <file>', 'also write JUnit XML: one testcase per kernel x strategy x check')
    .option('--flavour <flavour>', 'Debian kernel flavour (cloud-amd64 boots fastest)', 'cloud-amd64')
    .addOption(new Option('--accel <accel>', 'accelerator: auto probes KVM and falls back to TCG').choices(['auto', 'kvm', 'tcg']).default('auto'))
    .addOption(new Option('--timeout <seconds>', 'hard deadline for each job, boot included').default(120).argParser(positiveInt('--timeout', 3600)))
    .addOption(new Option('--memory <MiB>', 'guest memory').default(256).argParser(positiveInt('--memory', 16384)))
    .option('--json', 'print the result as one JSON document (schemaVersion 2; see README)')
    .option('--output-dir <dir>', "keep the artefacts here instead of the state directory")
    .addOption(new Option('--archive-uri <uri>', "Debian archive to fetch kernels from (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_ARCHIVE'))
    .addOption(new Option('--security-uri <uri>', "Debian security archive (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_SECURITY_ARCHIVE'))
    .option('--refresh-kernel', 'look up the newest kernel of the suite even when one is cached')
    .option('--target <url>', 'run on a real machine over SSH instead of a guest: ssh://user@host[:port] (its own kernel; sudo -n, gcc, make and its kernel headers there)')
    .option('--identity <file>', 'SSH private key for --target (default: ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)')
    .option('--known-hosts <file>', 'known_hosts file to verify the target against (default: ~/.ssh/known_hosts)')
    .option('--accept-host-key <fingerprint>', 'trust the target presenting this host key (SHA256:..., as printed when it is unknown); an unknown key is then added to known_hosts')
    .option('--allow-own-kernel', 'let --target be this very machine (same boot_id): the driver is loaded into the kernel mmaplab runs on')
    .addOption(new Option('--connect-timeout <seconds>', 'how long to wait for the SSH connection').default(20).argParser(positiveInt('--connect-timeout', 600)))
    .option('--no-snapshot', "boot a guest instead of restoring the kernel's cached snapshot (mmaplab shell always boots)")
    .option('--no-color', 'plain output even on a terminal')
    .option('-v, --verbose', 'show progress and every command run');
}

function buildProgram(): Command {
  const program = new Command('mmaplab')
    .description('Build a Linux driver and a test program, boot a real Debian kernel in QEMU, map the driver from userspace, and explain what happens.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`mmaplab: ${str}`) })
    .addHelpText(
      'after',
      `
Exit codes: 0 every outcome as expected, 1 an outcome differs, 2 usage error,
3 infrastructure failure (missing tool, kernel fetch, build, boot).
Cache: ${cacheRoot()} (MMAPLAB_CACHE_DIR). Runs: ${stateRoot()}/runs (MMAPLAB_STATE_DIR).`,
    );

  program
    .command('run')
    .description('build the lab driver, boot it in a guest, and map it with MAP_PRIVATE and MAP_SHARED')
    .option('--strategy <names>', 'driver strategies to run, comma-separated (default: all)')
    .option('--check <names>', 'checks to run, comma-separated (default: all)')
    .option('--module-dir <path>', 'build this driver (a folder, with or without a Kbuild/Makefile, or one .c file) instead of the bundled kernel-module/; it must register a character device named "mmaplab"');
  addGuestOptions(program.commands.at(-1)!).action(async (o: RunCliOptions) => {
      const { runLab } = await import('../commands/run.js');
      const { STRATEGIES } = await import('../diagnose/expectations.js');
      const { CHECK_NAMES, isCheckName } = await import('../model/checks.js');
      // The bundled driver's strategies are known; a driver of the user's own names its own.
      const strategies = o.moduleDir ? o.strategy?.split(',').map((x) => x.trim()).filter(Boolean) : listOption('--strategy', o.strategy, STRATEGIES);
      const checks = listOption('--check', o.check, CHECK_NAMES).filter(isCheckName);
      const moduleDir = o.moduleDir ? resolve(o.moduleDir) : (await import('../util/paths.js')).projectPaths.kernelModule;
      const { onKernels } = await import('./on-kernels.js');
      await onKernels('run', o, (kernel, ctx) => runLab({ ...guestOptions(o, ctx.progress, kernel, ctx.label), ...ctx.guest, moduleDir, strategies, checks, pages: 16 }), async (report, style) => {
        const { renderRunText } = await import('../report/text.js');
        return renderRunText(report as import('../model/report.js').RunReport, style);
      });
    });
  const check = program
    .command('check')
    .description("check a driver of your own in a guest (never this machine's kernel): it builds, loads, maps correctly and cleans up")
    .argument('<driver>', 'the driver: a folder (with or without its own Kbuild/Makefile) or one .c file')
    .option('--device <path>', 'the device node to open, when mmaplab cannot find the one the driver registers')
    .addOption(new Option('--pages <n>', 'how many pages the driver maps').default(16).argParser(positiveInt('--pages', 4096)))
    .option('--expect-pattern <word>', 'the 32-bit word each page starts with (little-endian: the lab\'s bytes aa bb cc dd are 0xddccbbaa)', '0xaabbccdd');
  addGuestOptions(check)
    .action(async (driver: string, o: CheckCliOptions) => {
      const pattern = /^0x[0-9a-f]{1,8}$/i.test(o.expectPattern) ? Number.parseInt(o.expectPattern, 16) : Number.NaN;
      if (Number.isNaN(pattern)) throw new CommanderError(2, 'mmaplab.usage', `--expect-pattern must be a 32-bit hex word such as 0xaabbccdd, not '${o.expectPattern}'`);
      const { checkDriver } = await import('../commands/check.js');
      const { onKernels } = await import('./on-kernels.js');
      await onKernels('check', o, (kernel, ctx) => checkDriver({ ...guestOptions(o, ctx.progress, kernel, ctx.label), ...ctx.guest, source: resolve(driver), device: o.device, pages: o.pages, pattern }), async (report, style) => {
        const { renderCheckText } = await import('../report/check-text.js');
        return renderCheckText(report as import('../model/report.js').CheckReport, style);
      });
    });

  const shell = program
    .command('shell')
    .description('a shell in the lab guest with the driver built and loaded, mmap-test and busybox at hand; exit leaves (Ctrl-] kills the guest)')
    .argument('[driver]', 'a driver of your own (folder or .c file); default: the bundled driver')
    .option('--strategy <name>', 'the bundled driver\'s strategy to load', 'seed');
  addGuestOptions(shell).action(async (driver: string | undefined, o: GuestCliOptions & { strategy: string }) => {
    const { labShell } = await import('../commands/shell.js');
    const { STRATEGIES } = await import('../diagnose/expectations.js');
    if (!driver && !STRATEGIES.includes(o.strategy)) throw new CommanderError(2, 'mmaplab.usage', `--strategy must be one of: ${STRATEGIES.join(', ')}`);
    const { expandKernelSpecs } = await import('../kernel/spec.js');
    if (!o.target && expandKernelSpecs(o.kernel).length > 1) throw new CommanderError(2, 'mmaplab.usage', 'shell opens one guest: give one --kernel');
    const err = makeStyle({ color: o.color === false ? false : undefined, stream: process.stderr });
    const tty = process.stdin.isTTY === true;
    // Ctrl-] (0x1d) leaves even when the guest's shell does not answer.
    let leave: () => void = () => {};
    const detach = new Promise<void>((r) => (leave = r));
    const watch = (d: Buffer) => {
      if (d.includes(0x1d)) leave();
    };
    process.stdin.on('data', watch);
    if (tty) process.stdin.setRawMode(true);
    try {
      const r = await labShell({
        ...guestOptions(o, true),
        source: driver,
        strategy: o.strategy,
        input: process.stdin,
        output: (text: string) => process.stdout.write(text),
        detach,
        terminal: { rows: process.stdout.rows ?? 24, cols: process.stdout.columns ?? 80 },
      });
      for (const n of r.notes) process.stderr.write(err.dim(`mmaplab: note: ${n}\n`));
      if (o.target) {
        process.stderr.write(err.dim(`\nmmaplab: unloaded and cleaned up on the target; its kernel log kept in ${r.consoleLog}\n`));
        for (const l of r.leftBehind) process.stderr.write(err.red(`mmaplab: left on the target: ${l}\n`));
      } else process.stderr.write(err.dim(`\nmmaplab: the guest is off; console kept in ${r.consoleLog}\n`));
    } finally {
      if (tty) process.stdin.setRawMode(false);
      process.stdin.off('data', watch);
      process.stdin.pause();
    }
  });

  program
    .command('parse')
    .description('re-read a saved run (its directory, a matrix\'s directory, or a console.log) and print the same report, without a guest')
    .argument('<path>', 'a run directory (console.log, records.jsonl, results.json), a matrix directory, or a console log')
    .option('--json', 'print the result as JSON')
    .option('--no-color', 'plain output even on a terminal')
    .action(async (path: string, o: { json?: boolean; color?: boolean }) => {
      const { parseSaved } = await import('../commands/parse.js');
      const { renderRunText, renderConsoleText } = await import('../report/text.js');
      const { renderRunJson } = await import('../report/json.js');
      const r = await parseSaved(path);
      const style = makeStyle({ color: o.color === false ? false : undefined });
      if (r.kind === 'run') {
        process.stdout.write(o.json ? renderRunJson(r.report) : renderRunText(r.report, style));
        process.exitCode = r.report.exitCode;
      } else if (r.kind === 'matrix') {
        const { renderMatrixText } = await import('../report/matrix-text.js');
        process.stdout.write(o.json ? `${JSON.stringify(r.report, null, 2)}\n` : renderMatrixText(r.report, style));
        process.exitCode = r.report.exitCode;
      } else {
        process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : renderConsoleText(r, style));
        process.exitCode = r.problems.length ? 1 : 0;
      }
    });
  const kernels = program.command('kernels').description('the kernel cache: list what is cached, fetch ahead for offline use, prune');
  kernels
    .command('list')
    .description('cached kernels (and the specs that resolve to them), build roots, sizes')
    .option('--json', 'print the listing as JSON')
    .action(async (o: { json?: boolean }) => {
      const { listCache } = await import('../commands/kernels.js');
      const l = await listCache(cacheRoot());
      if (o.json) return void process.stdout.write(`${JSON.stringify(l, null, 2)}\n`);
      const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`.padStart(8);
      const lines = [`cache ${l.cacheDir}`, ''];
      if (!l.kernels.length) lines.push('no kernels cached (mmaplab kernels fetch debian:bookworm)');
      for (const k of l.kernels) lines.push(`${mb(k.bytes)}  ${k.release.padEnd(28)} ${k.packageVersion.padEnd(20)} ${k.specs.length ? k.specs.join(', ') : '(superseded: mmaplab kernels prune removes it)'}`);
      for (const r of l.buildRoots) lines.push(`${mb(r.bytes)}  build root ${r.name}`);
      for (const x of l.other) lines.push(`${mb(x.bytes)}  ${x.name}`);
      lines.push(`${mb(l.totalBytes)}  in all`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  kernels
    .command('fetch')
    .description('fetch kernels now (the newest of each suite), with their build roots and initramfs, so later runs work offline')
    .argument('<spec...>', 'kernel specs: debian:<suite>, or all')
    .option('--flavour <flavour>', 'Debian kernel flavour', 'cloud-amd64')
    .addOption(new Option('--archive-uri <uri>', "Debian archive (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_ARCHIVE'))
    .addOption(new Option('--security-uri <uri>', "Debian security archive (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_SECURITY_ARCHIVE'))
    .action(async (specs: string[], o: { flavour: string; archiveUri?: string; securityUri?: string }) => {
      const { fetchAhead } = await import('../commands/kernels.js');
      const { expandKernelSpecs } = await import('../kernel/spec.js');
      let expanded: string[];
      try {
        expanded = expandKernelSpecs(specs);
      } catch (e) {
        throw new CommanderError(2, 'mmaplab.usage', isMmaplabError(e) ? `${e.message} (${e.hint ?? ''})` : String(e));
      }
      const err = makeStyle({ color: undefined, stream: process.stderr });
      // One at a time: downloads are quick, and a failure names its kernel.
      for (const spec of expanded) {
        const r = await fetchAhead(spec, { cacheDir: cacheRoot(), flavour: o.flavour, archiveUri: o.archiveUri, securityUri: o.securityUri, onProgress: (m) => process.stderr.write(err.dim(`[${spec}] ${m}\n`)) });
        process.stdout.write(`${spec}: ${r.kernel.release} (${r.kernel.packageVersion}), modules built with ${r.compiler}\n`);
      }
    });
  kernels
    .command('prune')
    .description('remove cached kernels no spec resolves to any more (or those named), with their builds, initramfs and snapshots')
    .argument('[spec...]', 'kernels to remove: debian:<suite> or a release such as 6.1.0-56-cloud-amd64')
    .option('--flavour <flavour>', 'Debian kernel flavour of the specs', 'cloud-amd64')
    .option('--all', 'empty the whole cache (kernels, build roots, builds, snapshots, the KVM verdict)')
    .action(async (specs: string[], o: { flavour: string; all?: boolean }) => {
      const { pruneCache } = await import('../commands/kernels.js');
      const r = await pruneCache(cacheRoot(), { specs, flavour: o.flavour, all: !!o.all });
      for (const x of r.removed) process.stdout.write(`removed ${x.name} (${(x.bytes / 1e6).toFixed(0)} MB)\n`);
      process.stdout.write(r.removed.length ? `freed ${(r.freedBytes / 1e6).toFixed(0)} MB\n` : 'nothing to remove\n');
    });

  program
    .command('merge')
    .description('merge results.json files of separate jobs (one per kernel, e.g. a CI matrix) into one report')
    .argument('<files...>', 'results of `run --json` / `check --json` (or their run directories\' results.json)')
    .option('--json', 'print the merged matrix as JSON')
    .option('--junit <file>', 'write JUnit XML for the merged matrix')
    .option('--markdown <file>', 'write a Markdown summary (under GitHub Actions it also goes to the step summary)')
    .option('--no-color', 'plain output even on a terminal')
    .action(async (files: string[], o: { json?: boolean; junit?: string; markdown?: string; color?: boolean }) => {
      const { mergeFiles } = await import('../matrix/merge.js');
      const m = await mergeFiles(files, { dir: process.cwd(), resultsJson: '' });
      if (o.json) process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
      else {
        const { renderMatrixText } = await import('../report/matrix-text.js');
        process.stdout.write(renderMatrixText(m, makeStyle({ color: o.color === false ? false : undefined })));
      }
      if (o.markdown) {
        const { renderMarkdown } = await import('../report/markdown.js');
        const { writeFile } = await import('node:fs/promises');
        await writeFile(o.markdown, renderMarkdown(m));
      }
      const { writeCiOutputs } = await import('./on-kernels.js');
      await writeCiOutputs(m, o.junit);
      process.exitCode = m.exitCode;
    });
  return program;
}

/** A comma-separated selection from a known list; unknown names are a usage error. */
function listOption(flag: string, value: string | undefined, known: readonly string[]): string[] {
  if (value === undefined) return [...known];
  const picked = value.split(',').map((v) => v.trim()).filter(Boolean);
  const unknown = picked.filter((v) => !known.includes(v));
  if (unknown.length || picked.length === 0) {
    throw new CommanderError(2, 'mmaplab.usage', `${flag}: unknown ${unknown.length ? `'${unknown.join(', ')}'` : 'empty list'}; choose from ${known.join(', ')}`);
  }
  // Keep the canonical order, so grids always read the same way.
  return known.filter((k) => picked.includes(k));
}

/** The options addGuestOptions() declares. */
interface GuestCliOptions {
  kernel: string[];
  jobs: number;
  junit?: string;
  flavour: string;
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
  identity?: string;
  knownHosts?: string;
  acceptHostKey?: string;
  allowOwnKernel?: boolean;
  connectTimeout: number;
  snapshot?: boolean;
}

interface CheckCliOptions extends GuestCliOptions {
  device?: string;
  pages: number;
  expectPattern: string;
}

interface RunCliOptions extends GuestCliOptions {
  strategy?: string;
  check?: string;
  moduleDir?: string;
}

/**
 * Ctrl-C or a kill: reap every guest (flushing its console log), then leave with
 * 128+signal. Child processes started through execa are killed on exit too.
 */
let stopping = false;

function handleSignals(): void {
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\nmmaplab: interrupted (${sig}); stopping the guest or cleaning up the target\n`);
    // A target gets its cleanup (kill, rmmod, rm) over SSH; at most 30 s, then leave anyway.
    const giveUp = new Promise((r) => setTimeout(r, 30_000).unref());
    void Promise.race([
      Promise.all([import('../vm/guest-vm.js').then(({ GuestVm }) => GuestVm.killAll()), import('../ssh/remote-lab.js').then(({ RemoteLab }) => RemoteLab.cleanupAll())]),
      giveUp,
    ]).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

export async function main(argv: string[]): Promise<number> {
  handleSignals();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (e) {
    // Reaping the guest makes the run fail; that is not worth a message of its own.
    if (stopping) return 130;
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return ExitCode.ok;
      if (e.code === 'mmaplab.usage') process.stderr.write(`mmaplab: error: ${e.message}\n`);
      return ExitCode.usage;
    }
    if (isMmaplabError(e)) {
      reportError(e);
      return errorExitCode(e.kind);
    }
    process.stderr.write(`mmaplab: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return ExitCode.infra;
  }
}
