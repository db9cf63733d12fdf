/**
 * The commands as commander declares them: each action reads its options,
 * calls the command (data in, a report out), and prints it with a renderer.
 * Command modules are imported when their command runs, so `--help` and a
 * usage error stay fast.
 */
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { expandKernelSpecs } from '../kernel/spec.js';
import { consoleStatus } from '../model/exit.js';
import { makeStyle } from '../report/style.js';
import { cacheRoot, projectPaths, stateRoot } from '../util/paths.js';
import { isMmaplabError } from '../util/errors.js';
import { VERSION } from '../util/version.js';
import type { Arch } from '../kernel/arch.js';
import { archAndFlavour } from '../kernel/spec.js';
import { ACCELS, addDriverChoice, archOption, flavourOption, addGuestOptions, checkDriverChoice, configOption, noConfigOption, listOption, parseMemory, positiveInt, setupOptions, usage, valueError, type GuestCliOptions } from './options.js';
import type { AccelRequest } from '../vm/accel.js';
import { fetchedSnapshot } from '../report/kernels-text.js';
import { withTerminal } from './terminal.js';
import { addGrade } from './grade-command.js';
import { addCacheTransfer } from './cache-transfer-command.js';
import { addDoctor } from './doctor-command.js';
import { addDebug } from './debug-command.js';
import { progressOutput } from './progress.js';
import { applyProjectConfig } from './apply-config.js';
import { addConfig } from './config-command.js';
import type { CheckReport } from '../model/report.js';

interface RunCliOptions extends GuestCliOptions {
  strategy?: string;
  check?: string;
  moduleDir?: string;
  watch?: boolean;
}

interface CheckCliOptions extends GuestCliOptions {
  device?: string;
  pages: number;
  expectPattern: string;
  gradescope?: string;
  rubric?: string;
  watch?: boolean;
}

const styleFor = (o: { color?: boolean }, stream?: NodeJS.WriteStream) => makeStyle({ color: o.color === false ? false : undefined, ...(stream ? { stream } : {}) });

function addRun(program: Command): void {
  const run = program
    .command('run')
    .description('build the lab driver, boot it in a guest, and map it with MAP_PRIVATE and MAP_SHARED')
    .option('--strategy <names>', 'driver strategies to run, comma-separated (default: all)')
    .option('--check <names>', 'checks to run, comma-separated (default: all)')
    .option('--module-dir <path>', 'build this driver (a folder, with or without a Kbuild/Makefile, or one .c file) instead of the bundled kernel-module/; it must register a character device named "mmaplab"')
    .option('--watch', 'with --module-dir: run again on every save in its folder, in a guest kept waiting; prints the cells that changed (r: the full report, q: quit)');
  addGuestOptions(run).action(async (o: RunCliOptions) => {
    const { runLab } = await import('../commands/run.js');
    const { STRATEGIES } = await import('../diagnose/expectations.js');
    const { CHECK_NAMES, isCheckName } = await import('../model/checks.js');
    // The bundled driver's strategies are known; a driver of the user's own names its own.
    const strategies = o.moduleDir ? o.strategy?.split(',').map((x) => x.trim()).filter(Boolean) : listOption('--strategy', o.strategy, STRATEGIES);
    const checks = listOption('--check', o.check, CHECK_NAMES).filter(isCheckName);
    const moduleDir = o.moduleDir ? resolve(o.moduleDir) : projectPaths.kernelModule;
    if (o.watch) {
      if (!o.moduleDir) throw usage('--watch goes with --module-dir: the driver whose folder is watched');
      if (o.kernel.length > 1 || (o.arch?.length ?? 0) > 1 || o.target || o.junit || o.html) throw usage('--watch runs one driver on one kernel in a local guest: leave out --target, --junit, --html and all but one --kernel and --arch');
      const { watchRunCommand } = await import('./watch-command.js');
      return watchRunCommand({ ...setupOptions(o, o.verbose), moduleDir, strategies, checks, pages: 16 }, o);
    }
    const { onKernels } = await import('./on-kernels.js');
    const { renderRunText } = await import('../report/text.js');
    await onKernels('run', o, (kernel, ctx) => runLab({ ...setupOptions(o, ctx.progress, kernel, ctx.label), ...ctx.guest, moduleDir, strategies, checks, pages: 16 }), (report, style) =>
      report.command === 'run' ? renderRunText(report, style) : '',
    );
  });
}

function addCheck(program: Command): void {
  const check = program
    .command('check')
    .description("check a driver of your own in a guest (never this machine's kernel): it builds, loads, maps correctly and cleans up")
    .argument('<driver>', 'the driver: a folder (with or without its own Kbuild/Makefile) or one .c file')
    .option('--device <path>', 'the device node to open, when mmaplab cannot find the one the driver registers')
    .addOption(new Option('--pages <n>', 'how many pages the driver maps').default(16).argParser(positiveInt('--pages', 4096)))
    .option('--expect-pattern <word>', "the 32-bit word each page starts with (little-endian: the lab's bytes aa bb cc dd are 0xddccbbaa); default: what the lab's test or the driver's source writes")
    .option('--gradescope <results.json>', "also write Gradescope's autograder results file, scored by the rubric (run as Gradescope's run_autograder)")
    .option('--rubric <file>', 'the rubric --gradescope scores by (default: the lab\'s; see mmaplab grade --print-rubric)')
    .option('--watch', "check again on every save in the driver's folder, in a guest kept waiting; prints what changed (r: the full report, q: quit)");
  addGuestOptions(check).action(async (driver: string, o: CheckCliOptions) => {
    const pattern = o.expectPattern === undefined ? undefined : /^0x[0-9a-f]{1,8}$/i.test(o.expectPattern) ? Number.parseInt(o.expectPattern, 16) : Number.NaN;
    if (Number.isNaN(pattern)) throw usage(`--expect-pattern must be a 32-bit hex word such as 0xaabbccdd, not '${o.expectPattern}'`);
    if (o.rubric && !o.gradescope) throw usage('--rubric goes with --gradescope (a class is graded with mmaplab grade)');
    if (o.gradescope && (o.kernel.length > 1 || (o.arch?.length ?? 0) > 1)) throw usage('--gradescope scores one check: give one --kernel and one --arch');
    if (o.watch) {
      if (o.kernel.length > 1 || (o.arch?.length ?? 0) > 1 || o.target || o.gradescope || o.junit || o.html) throw usage('--watch checks one driver on one kernel in a local guest: leave out --target, --gradescope, --junit, --html and all but one --kernel and --arch');
      const { watchCheckCommand } = await import('./watch-command.js');
      return watchCheckCommand({ ...setupOptions(o, o.verbose), source: resolve(driver), device: o.device, pages: o.pages, pattern }, o);
    }
    const { checkDriver } = await import('../commands/check.js');
    const { onKernels } = await import('./on-kernels.js');
    const { renderCheckText } = await import('../report/check-text.js');
    const gradescope = o.gradescope ? await gradescopeWriter(resolve(o.gradescope), o.rubric) : undefined;
    await onKernels('check', o, async (kernel, ctx) => {
      const run = checkDriver({ ...setupOptions(o, ctx.progress, kernel, ctx.label), ...ctx.guest, source: resolve(driver), device: o.device, pages: o.pages, pattern, olderOnDrift: o.kernel.length === 0 && !o.target });
      return gradescope ? gradescope(run) : run;
    }, (report, style) =>
      report.command === 'check' ? renderCheckText(report, style) : '',
    );
  });
}

/** check --gradescope: the check's report scored and written as Gradescope's results file; a check that could not be done (a bad rubric included) scores 0 and says why. */
async function gradescopeWriter(path: string, rubricPath: string | undefined): Promise<(run: Promise<CheckReport>) => Promise<CheckReport>> {
  const { loadRubric } = await import('../grade/rubric.js');
  const { scoreCheck } = await import('../commands/grade.js');
  const { renderFeedback } = await import('../report/grade-text.js');
  const { renderGradescope } = await import('../report/gradescope.js');
  const { writeFileAtomic } = await import('../util/fsx.js');
  const { Chalk } = await import('chalk');
  const plain = new Chalk({ level: 0 });
  const failed = async (e: unknown, staffs = false) => {
    const message = e instanceof Error ? e.message : String(e);
    // A usage error from the check can be the submission's own (sources no module can be made of); anything else is not the student's doing.
    const whose = !staffs && isMmaplabError(e) && e.kind === 'usage' ? 'If this names your files, fix them; otherwise tell the course staff.' : "This is not your driver's fault; tell the course staff.";
    await writeFileAtomic(path, `${JSON.stringify({ score: 0, output: `mmaplab could not check this submission: ${message}\n${whose}`, output_format: 'text', visibility: 'visible', tests: [] }, null, 2)}\n`);
  };
  let rubric: Awaited<ReturnType<typeof loadRubric>>;
  try {
    rubric = await loadRubric(rubricPath ? resolve(rubricPath) : undefined);
  } catch (e) {
    await failed(e, true);
    throw e;
  }
  return async (run) => {
    try {
      const report = await run;
      const scored = await scoreCheck(report, rubric);
      await writeFileAtomic(path, `${JSON.stringify(renderGradescope(scored.result, renderFeedback(scored.result, report, scored, plain)), null, 2)}\n`);
      return report;
    } catch (e) {
      await failed(e);
      throw e;
    }
  };
}

function addShell(program: Command): void {
  const shell = program
    .command('shell')
    .description('a shell in the lab guest with the driver built and loaded, mmap-test and busybox at hand; exit leaves (Ctrl-] kills the guest)');
  addDriverChoice(shell)
    .option('--gdb', "boot the guest for debugging (KASLR off, QEMU's gdb stub) and print how gdb attaches from another terminal: the driver's symbols at their real addresses, a breakpoint at its mmap handler")
    .option('--no-kernel-symbols', "with --gdb: the module's symbols only (no Debian -dbg package)");
  addGuestOptions(shell).action(async (driver: string | undefined, o: GuestCliOptions & { strategy: string; gdb?: boolean; kernelSymbols: boolean }) => {
    if (o.gdb) {
      if (o.target) throw usage('shell --gdb boots a guest of its own: --target cannot be debugged this way');
      const { shellWithGdb } = await import('./debug-command.js');
      return shellWithGdb(driver, o);
    }
    const { labShell } = await import('../commands/shell.js');
    await checkDriverChoice(driver, o.strategy);
    if (!o.target && (expandKernelSpecs(o.kernel).length > 1 || (o.arch?.length ?? 0) > 1)) throw usage('shell opens one guest: give one --kernel and one --arch');
    const err = styleFor(o, process.stderr);
    const r = await withTerminal((session) => labShell({ ...setupOptions(o, true), source: driver, strategy: o.strategy, session }));
    for (const n of r.notes) process.stderr.write(err.dim(`mmaplab: note: ${n}\n`));
    if (o.target) {
      process.stderr.write(err.dim(`\nmmaplab: unloaded and cleaned up on the target; its kernel log kept in ${r.consoleLog}\n`));
      for (const l of r.leftBehind) process.stderr.write(err.red(`mmaplab: left on the target: ${l}\n`));
    } else process.stderr.write(err.dim(`\nmmaplab: the guest is off; console kept in ${r.consoleLog}\n`));
  });
}

function addParse(program: Command): void {
  program
    .command('parse')
    .description("re-read a saved run (a run's or a check's directory, a matrix's directory, or a console.log) and print the same report, without a guest")
    .argument('<path>', 'a directory mmaplab wrote (console.log, records.jsonl, results.json), or a console log')
    .option('--json', 'print the result as JSON')
    .option('--no-color', 'plain output even on a terminal')
    .action(async (path: string, o: { json?: boolean; color?: boolean }) => {
      const { parseSaved } = await import('../commands/parse.js');
      const r = await parseSaved(path);
      const style = styleFor(o);
      const json = (doc: unknown) => `${JSON.stringify(doc, null, 2)}\n`;
      switch (r.kind) {
        case 'run': {
          const { renderRunText } = await import('../report/text.js');
          process.stdout.write(o.json ? json(r.report) : renderRunText(r.report, style));
          process.exitCode = r.report.exitCode;
          break;
        }
        case 'check': {
          const { renderCheckText } = await import('../report/check-text.js');
          process.stdout.write(o.json ? json(r.report) : renderCheckText(r.report, style));
          process.exitCode = r.report.exitCode;
          break;
        }
        case 'matrix': {
          const { renderMatrixText } = await import('../report/matrix-text.js');
          process.stdout.write(o.json ? json(r.report) : renderMatrixText(r.report, style));
          process.exitCode = r.report.exitCode;
          break;
        }
        case 'console': {
          const { renderConsoleText } = await import('../report/text.js');
          process.stdout.write(o.json ? json(r) : renderConsoleText(r, style));
          process.exitCode = consoleStatus(r.problems).exitCode;
          break;
        }
      }
    });
}

function addKernels(program: Command): void {
  const kernels = program.command('kernels').description('the kernel cache: list what is cached, fetch ahead for offline use, prune');
  kernels
    .command('list')
    .description('cached kernels (and the specs that resolve to them), build roots, sizes')
    .option('--json', 'print the listing as JSON')
    .action(async (o: { json?: boolean }) => {
      const { listCache } = await import('../commands/kernels.js');
      const { renderCacheListing } = await import('../report/kernels-text.js');
      const l = await listCache(cacheRoot());
      process.stdout.write(o.json ? `${JSON.stringify(l, null, 2)}\n` : renderCacheListing(l));
    });
  kernels
    .command('fetch')
    .description('fetch kernels now (the newest of each suite), with their build roots and initramfs, so later runs work offline')
    .argument('<spec...>', 'kernel specs: debian:<suite>, or all')
    .addOption(archOption()).addOption(flavourOption())
    .addOption(new Option('--archive-uri <uri>', "Debian archive (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_ARCHIVE'))
    .addOption(new Option('--security-uri <uri>', "Debian security archive (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_SECURITY_ARCHIVE'))
    .addOption(new Option('--accel <accel>', 'accelerator of the snapshot (as the runs to come will use)').choices(ACCELS).default('auto'))
    .addOption(new Option('--memory <MiB>', 'guest memory of the snapshot (as the runs to come will use)').default(256).argParser(parseMemory))
    .option('--no-snapshot', "do not boot the kernel to make its snapshot now (the first run will)")
    .addOption(configOption())
    .addOption(noConfigOption())
    .action(async (specs: string[], o: { flavour?: string; arch?: Arch; archiveUri?: string; securityUri?: string; accel: AccelRequest; memory: number; snapshot?: boolean }) => {
      const { fetchAhead } = await import('../commands/kernels.js');
      let expanded: string[];
      const af = archAndFlavour(o.arch, o.flavour);
      try {
        // `all` is every suite that ships the architecture's kernels.
        expanded = expandKernelSpecs(specs, af.arch);
      } catch (e) {
        throw usage(valueError(e));
      }
      // One at a time: downloads are quick, and a failure names its kernel.
      for (const spec of expanded) {
        const snapshot = o.snapshot === false ? false : { memoryMb: o.memory, accel: o.accel };
        const progress = progressOutput({ verbose: true }, { live: true });
        const r = await fetchAhead(spec, { cacheDir: cacheRoot(), ...af, archiveUri: o.archiveUri, securityUri: o.securityUri, snapshot, onProgress: progress?.sink(spec, `${spec} `) })
          .then((x) => (progress?.finish(spec, 'done', x.kernel.release), x), (e: unknown) => { progress?.finish(spec, 'failed', (isMmaplabError(e) ? e.message : String(e)).split('\n')[0] ?? ''); throw e; })
          .finally(() => progress?.stop());
        process.stdout.write(`${spec}: ${r.kernel.release} (${r.kernel.packageVersion}), modules built with ${r.compiler}${r.snapshot ? `; ${fetchedSnapshot(r.snapshot)}` : ''}\n`);
      }
    });
  addCacheTransfer(kernels);
  kernels
    .command('prune')
    .description('remove cached kernels no spec resolves to any more (or those named), with their builds, initramfs and snapshots')
    .argument('[spec...]', 'kernels to remove: debian:<suite> or a release such as 6.1.0-56-cloud-amd64')
    .addOption(archOption()).addOption(flavourOption(' of the specs'))
    .option('--all', 'empty the whole cache (kernels, build roots, builds, snapshots, the KVM verdict)')
    .action(async (specs: string[], o: { flavour?: string; arch?: Arch; all?: boolean }) => {
      const { pruneCache } = await import('../commands/kernels.js');
      const { renderPruneResult } = await import('../report/kernels-text.js');
      process.stdout.write(renderPruneResult(await pruneCache(cacheRoot(), { specs, flavour: archAndFlavour(o.arch, o.flavour).flavour, all: !!o.all })));
    });
}

function addMerge(program: Command): void {
  program
    .command('merge')
    .description('merge results.json files of separate jobs into one report: one per kernel (a CI matrix of run or check), or the shards of one grade')
    .argument('<files...>', "results of `run --json` / `check --json` / `grade --shard i/n` (or their directories' results.json)")
    .option('--json', 'print the merged matrix (or class) as JSON')
    .option('--junit <file>', 'write JUnit XML for the merged matrix')
    .option('--markdown <file>', 'write a Markdown summary (under GitHub Actions it also goes to the step summary)')
    .option('--html <file>', 'write the merged matrix as one HTML page (as run --html)')
    .option('--csv <file>', 'grades: write the roster')
    .option('--out <dir>', "grades: write the summary page and results.json here, with the shards' feedback files beside them")
    .option('--moodle <worksheet.csv>', "grades: fill in Moodle's grading worksheet (moodle-grades.csv in --out)")
    .option('--canvas <gradebook.csv>', 'grades: fill in a Canvas gradebook export (canvas-grades.csv in --out)')
    .option('--canvas-assignment <column>', "grades: the Canvas export's assignment column")
    .option('--no-color', 'plain output even on a terminal')
    .action(async (files: string[], o: MergeCliOptions) => {
      const { readFile } = await import('node:fs/promises');
      const { statSync } = await import('node:fs');
      const paths = files.map((f) => (statSync(f, { throwIfNoEntry: false })?.isDirectory() ? `${f}/results.json` : f));
      const texts = await Promise.all(paths.map((p) => readFile(p, 'utf8').catch(() => '')));
      if (texts.some((t) => /"command"\s*:\s*"grade"/.test(t.slice(0, 2000)))) {
        if (o.html) throw usage('--html is for run or check results; merging a grade writes its summary page into --out');
        return mergeGradeFiles(paths, texts, o);
      }
      if (o.csv || o.out || o.moodle || o.canvas) throw usage('--csv, --out, --moodle and --canvas are for the shards of a grade; these are run or check results');
      const { mergeFiles } = await import('../matrix/merge.js');
      const m = await mergeFiles(files, { dir: process.cwd(), resultsJson: '' });
      if (o.json) process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
      else {
        const { renderMatrixText } = await import('../report/matrix-text.js');
        process.stdout.write(renderMatrixText(m, styleFor(o)));
      }
      if (o.markdown) {
        const { renderMarkdown } = await import('../report/markdown.js');
        const { writeFile } = await import('node:fs/promises');
        await writeFile(o.markdown, renderMarkdown(m));
      }
      const { writeCiOutputs } = await import('./on-kernels.js');
      await writeCiOutputs(m, o.junit, o.html);
      process.exitCode = m.exitCode;
    });
}

interface MergeCliOptions {
  moodle?: string;
  canvas?: string;
  canvasAssignment?: string;
  json?: boolean;
  junit?: string;
  markdown?: string;
  html?: string;
  csv?: string;
  out?: string;
  color?: boolean;
}

/** Shards of one grade as one class: the page and roster over all, each shard's feedback files copied beside them. */
async function mergeGradeFiles(paths: readonly string[], texts: readonly string[], o: MergeCliOptions): Promise<void> {
  if (o.junit || o.markdown) throw usage('--junit and --markdown are for run and check results; a grade merges to --csv, --out, --moodle, --canvas and --json');
  const { parseGrade, mergeGrades } = await import('../grade/summary.js');
  const { writeGradeFiles } = await import('../commands/grade-files.js');
  const { dirname } = await import('node:path');
  const shards = texts.map((t, i) => parseGrade(t, paths[i]!));
  const merged = mergeGrades(shards, resolve(o.out ?? '.'));
  const shardOf = new Map(shards.flatMap((s, i) => s.submissions.map((r) => [r.slug, dirname(paths[i]!)] as const)));
  const { report, sheets } = await writeGradeFiles(merged, { csv: o.csv, moodle: o.moodle, canvas: o.canvas, canvasAssignment: o.canvasAssignment }, { kind: 'copy', shardDir: (slug) => shardOf.get(slug) });
  for (const s of sheets) process.stderr.write(`${s.platform}: ${s.filled.matched.length} grades written to ${s.path}\n`);
  const { renderGradeText } = await import('../report/grade-text.js');
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : renderGradeText(report, styleFor(o)));
  process.exitCode = report.exitCode;
}

export interface ProgramOptions {
  /** Where the project config file is searched from (default: the current directory). */
  cwd?: string;
}

export function buildProgram(opts: ProgramOptions = {}): Command {
  const program = new Command('mmaplab')
    .description('Build a Linux driver and a test program, boot a real Debian kernel in QEMU, map the driver from userspace, and explain what happens.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    // What follows `mmaplab config <command>` is that command's, not config's.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`mmaplab: ${str}`) })
    .addHelpText(
      'after',
      `
Exit codes: 0 every outcome as expected, 1 an outcome differs, 2 usage error,
3 infrastructure failure (missing tool, kernel fetch, build, boot).
Cache: ${cacheRoot()} (MMAPLAB_CACHE_DIR). Runs: ${stateRoot()}/runs (MMAPLAB_STATE_DIR).`,
    );
  for (const add of [addRun, addCheck, addGrade, addShell, addDebug, addParse, addKernels, addMerge, addDoctor]) add(program);
  // `config` parses the command line it is given with a program of its own.
  addConfig(program, () => buildProgram(opts));
  // The project's settings, where the command line and the environment left a default.
  program.hook('preAction', (_program, command) => applyProjectConfig(command, opts.cwd ?? process.cwd(), (line) => process.stderr.write(`${line}\n`)));
  return program;
}
