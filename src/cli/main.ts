/**
 * Command-line wiring only: options are declared here and handed to command
 * functions, which return data; renderers turn it into text or JSON. One catch
 * at the top turns every error into a one-line message and an exit code.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { formatKernelSpec, parseKernelSpec } from '../kernel/spec.js';
import { ExitCode, isMmaplabError, type MmaplabError } from '../util/errors.js';
import { executedCommands } from '../util/exec.js';
import { cacheRoot, stateRoot } from '../util/paths.js';
import { VERSION } from '../util/version.js';
import { makeStyle } from '../report/style.js';

function positiveInt(name: string, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}`);
    return n;
  };
}

function kernelSpecArg(v: string): string {
  try {
    return formatKernelSpec(parseKernelSpec(v));
  } catch (e) {
    throw new InvalidArgumentError(isMmaplabError(e) ? `${e.message} (${e.hint ?? ''})` : String(e));
  }
}

/** The command layer's GuestOptions from the CLI's, with progress on stderr when wanted. */
function guestOptions(o: GuestCliOptions, showProgress: boolean) {
  const err = makeStyle({ color: o.color === false ? false : undefined, stream: process.stderr });
  return {
    kernel: o.kernel,
    flavour: o.flavour,
    accel: o.accel,
    timeoutS: o.timeout,
    memoryMb: o.memory,
    outputDir: o.outputDir,
    archiveUri: o.archiveUri,
    securityUri: o.securityUri,
    refreshKernel: !!o.refreshKernel,
    onProgress: showProgress ? (phase: string, msg: string) => process.stderr.write(err.dim(`[${phase}] ${msg}\n`)) : undefined,
  };
}

/** Options every command that boots a guest takes. */
function addGuestOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--kernel <spec>', 'kernel to boot: debian:<suite>, e.g. debian:bookworm').default('debian:bookworm').argParser(kernelSpecArg))
    .option('--flavour <flavour>', 'Debian kernel flavour (cloud-amd64 boots fastest)', 'cloud-amd64')
    .addOption(new Option('--accel <accel>', 'accelerator: auto probes KVM and falls back to TCG').choices(['auto', 'kvm', 'tcg']).default('auto'))
    .addOption(new Option('--timeout <seconds>', 'hard deadline for each job, boot included').default(120).argParser(positiveInt('--timeout', 3600)))
    .addOption(new Option('--memory <MiB>', 'guest memory').default(256).argParser(positiveInt('--memory', 16384)))
    .option('--json', 'print the result as one JSON document (schemaVersion 1)')
    .option('--output-dir <dir>', "keep the artefacts here instead of the state directory")
    .addOption(new Option('--archive-uri <uri>', "Debian archive to fetch kernels from (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_ARCHIVE'))
    .addOption(new Option('--security-uri <uri>', "Debian security archive (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_SECURITY_ARCHIVE'))
    .option('--refresh-kernel', 'look up the newest kernel of the suite even when one is cached')
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
      const { CHECK_NAMES, isCheckName } = await import('../guest/checks.js');
      // The bundled driver's strategies are known; a driver of the user's own names its own.
      const strategies = o.moduleDir ? o.strategy?.split(',').map((x) => x.trim()).filter(Boolean) : listOption('--strategy', o.strategy, STRATEGIES);
      const checks = listOption('--check', o.check, CHECK_NAMES).filter(isCheckName);
      const err = makeStyle({ color: o.color === false ? false : undefined, stream: process.stderr });
      const report = await runLab({
        ...guestOptions(o, !!o.verbose || (process.stderr.isTTY && !o.json)),
        moduleDir: o.moduleDir ? resolve(o.moduleDir) : (await import('../util/paths.js')).projectPaths.kernelModule,
        strategies,
        checks,
        pages: 16,
      });
      if (o.verbose) for (const c of executedCommands()) process.stderr.write(err.dim(`$ ${c}\n`));
      if (o.json) {
        const { renderRunJson } = await import('../report/json.js');
        process.stdout.write(renderRunJson(report));
      } else {
        const { renderRunText } = await import('../report/text.js');
        process.stdout.write(renderRunText(report, makeStyle({ color: o.color === false ? false : undefined })));
      }
      process.exitCode = report.exitCode;
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
      const report = await checkDriver({
        ...guestOptions(o, !!o.verbose || (process.stderr.isTTY && !o.json)),
        source: resolve(driver),
        device: o.device,
        pages: o.pages,
        pattern,
      });
      if (process.env.GITHUB_ACTIONS === 'true') {
        const { MmaplabError } = await import('../util/errors.js');
        const builds = report.items.find((i) => i.id === 'builds');
        if (builds?.verdict === 'fail') {
          // The structured diagnostics live on the build failure; the report keeps their text.
          const locations = (builds.details ?? []).map((d) => /^(.+?):(\d+):(?:(\d+):)? (error|warning): (.*)$/.exec(d)).filter((m): m is RegExpExecArray => !!m)
            .map((m) => ({ severity: m[4] as 'error' | 'warning', file: m[1], line: Number(m[2]), column: m[3] ? Number(m[3]) : undefined, message: m[5]! }));
          for (const a of githubAnnotations(new MmaplabError('build', '', { locations }))) process.stdout.write(`${a}\n`);
        }
      }
      if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        const { renderCheckText } = await import('../report/check-text.js');
        process.stdout.write(renderCheckText(report, makeStyle({ color: o.color === false ? false : undefined })));
      }
      process.exitCode = report.exitCode;
    });

  const shell = program
    .command('shell')
    .description('a shell in the lab guest with the driver built and loaded, mmap-test and busybox at hand; exit leaves (Ctrl-] kills the guest)')
    .argument('[driver]', 'a driver of your own (folder or .c file); default: the bundled driver')
    .option('--strategy <name>', 'the bundled driver\'s strategy to load', 'seed');
  addGuestOptions(shell).action(async (driver: string | undefined, o: GuestCliOptions & { strategy: string }) => {
    const { shellInGuest } = await import('../commands/shell.js');
    const { STRATEGIES } = await import('../diagnose/expectations.js');
    if (!driver && !STRATEGIES.includes(o.strategy)) throw new CommanderError(2, 'mmaplab.usage', `--strategy must be one of: ${STRATEGIES.join(', ')}`);
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
      const r = await shellInGuest({
        ...guestOptions(o, true),
        source: driver,
        strategy: o.strategy,
        input: process.stdin,
        output: (text) => process.stdout.write(text),
        detach,
      });
      process.stderr.write(err.dim(`\nmmaplab: the guest is off; console kept in ${r.consoleLog}\n`));
    } finally {
      if (tty) process.stdin.setRawMode(false);
      process.stdin.off('data', watch);
      process.stdin.pause();
    }
  });

  program
    .command('parse')
    .description('re-read a saved run (its directory, or a console.log) and print the same report, without a guest')
    .argument('<path>', 'a run directory (console.log, records.jsonl, results.json) or a console log')
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
      } else {
        process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : renderConsoleText(r, style));
        process.exitCode = r.problems.length ? 1 : 0;
      }
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
  kernel: string;
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

/** GitHub Actions turns these stdout lines into annotations at the file and line. */
export function githubAnnotations(e: MmaplabError): string[] {
  const esc = (v: string) => v.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const prop = (v: string) => esc(v).replace(/:/g, '%3A').replace(/,/g, '%2C');
  return e.locations
    .filter((l) => l.file && l.severity !== 'note')
    .map((l) => `::${l.severity} file=${prop(l.file!)}${l.line ? `,line=${l.line}` : ''}${l.column ? `,col=${l.column}` : ''}::${esc(l.message)}`);
}

function reportError(e: MmaplabError): void {
  if (process.env.GITHUB_ACTIONS === 'true') for (const a of githubAnnotations(e)) process.stdout.write(`${a}\n`);
  const c = makeStyle({ color: process.argv.includes('--no-color') ? false : undefined, stream: process.stderr });
  process.stderr.write(`${c.red.bold('mmaplab: error:')} ${e.message}\n`);
  for (const d of e.details) process.stderr.write(`  ${d}\n`);
  if (e.hint) process.stderr.write(`${c.yellow('hint:')} ${e.hint}\n`);
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
    process.stderr.write(`\nmmaplab: interrupted (${sig}); stopping the guest\n`);
    void import('../vm/guest-vm.js')
      .then(({ GuestVm }) => GuestVm.killAll())
      .finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
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
      return e.exitCode;
    }
    process.stderr.write(`mmaplab: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return ExitCode.infra;
  }
}
