/**
 * `mmaplab grade` as commander declares it: a class folder in, the class
 * table (or --json) out, the feedback files and summary page in the grade's
 * directory, the roster and the platforms' sheets on request. Exit 0 when
 * every submission was graded, whatever the scores; 3 when mmaplab could not
 * grade one.
 */
import { Option, type Command } from 'commander';
import { resolve } from 'node:path';
import { DEFAULT_KERNEL } from '../kernel/spec.js';
import type { SubmissionResult } from '../model/grade.js';
import { makeStyle } from '../report/style.js';
import { terminalSafe } from '../util/safe-text.js';
import type { Arch } from '../kernel/arch.js';
import { ACCELS, archOption, flavourOption, configOption, kernelSpecValue, noConfigOption, parseBuildTimeout, parseJobs, parseMemory, parseTimeout, setupOptions, usage, type GuestCliOptions } from './options.js';
import { cpus } from 'node:os';
import { interrupted } from './signals.js';

interface GradeCliOptions {
  rubric?: string;
  printRubric?: boolean;
  kernel?: string;
  jobs: number;
  timeout: number;
  buildTimeout: number;
  memory: number;
  accel: 'auto' | 'kvm' | 'tcg';
  flavour?: string;
  arch?: Arch;
  archiveUri?: string;
  securityUri?: string;
  json?: boolean;
  csv?: string;
  out?: string;
  moodle?: string;
  canvas?: string;
  canvasAssignment?: string;
  force?: boolean;
  shard?: { index: number; count: number };
  skeleton?: string;
  color?: boolean;
  verbose?: boolean;
}

/** "2/5": the second of five slices. */
function shardArg(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || count > 1000 || index < 1 || index > count) throw usage(`--shard takes i/n with 1 <= i <= n (e.g. 1/4), not '${v}'`);
  return { index, count };
}

function progressLine(r: SubmissionResult, done: number, total: number): string {
  const what = r.status === 'error' ? `not graded: ${r.error?.message ?? ''}` : `${r.score}/${r.maxScore} ${r.status}`;
  return `[${done}/${total}] ${terminalSafe(r.name)}${r.id ? ` (${terminalSafe(r.id)})` : ''}: ${what}${r.check?.cached ? ' (cached)' : ''}, ${(r.durationMs / 1000).toFixed(1)} s\n`;
}

export function addGrade(program: Command): void {
  program
    .command('grade')
    .description("grade a class: every submission in the folder (as Moodle or Canvas download them) checked as `check` checks it, scored by the rubric")
    .argument('[folder]', 'the class folder: one folder, .c or archive (.zip, .tar, .tar.gz) per student, or the platform\'s flat files')
    .option('--rubric <file>', 'points per check, YAML or JSON (default: the lab\'s; see --print-rubric)')
    .option('--print-rubric', 'print the default rubric and exit')
    .addOption(new Option('--kernel <spec>', 'the kernel every submission is checked on: debian:<suite>, or debian:<suite>@<version> to grade again on exactly the kernel a grade recorded').default(DEFAULT_KERNEL).argParser(kernelSpecValue))
    .addOption(new Option('--jobs <n>', 'submissions checked at once, each in its own guest').default(cpus().length, 'the number of cores').argParser(parseJobs))
    .addOption(new Option('--timeout <seconds>', "a job's deadline in the guest: a submission that hangs costs this much").default(60).argParser(parseTimeout))
    .addOption(new Option('--build-timeout <seconds>', "a submission's build is stopped after this long").default(120).argParser(parseBuildTimeout))
    .addOption(new Option('--memory <MiB>', 'guest memory').default(256).argParser(parseMemory))
    .addOption(new Option('--accel <accel>', 'accelerator').choices(ACCELS).default('auto'))
    .addOption(archOption()).addOption(flavourOption())
    .addOption(new Option('--archive-uri <uri>', "Debian archive (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_ARCHIVE'))
    .addOption(new Option('--security-uri <uri>', "Debian security archive (default: from this host's apt sources)").env('MMAPLAB_DEBIAN_SECURITY_ARCHIVE'))
    .option('--json', 'print the class as one JSON document')
    .option('--csv <file>', 'write the roster: name, id, score, maximum, status, points per check')
    .option('--out <dir>', 'the grade\'s directory: feedback files, the summary page (index.html), results.json (default: a new one in the state directory)')
    .option('--moodle <worksheet.csv>', "fill in Moodle's grading worksheet (written as moodle-grades.csv in the grade's directory)")
    .option('--canvas <gradebook.csv>', "fill in a Canvas gradebook export (written as canvas-grades.csv in the grade's directory)")
    .option('--canvas-assignment <column>', "the Canvas export's assignment column to fill (needed when it has several)")
    .option('--force', 'check every submission again, even those checked before')
    .addOption(new Option('--shard <i/n>', 'grade only the i-th of every n submissions (a CI matrix; join with mmaplab merge)').argParser(shardArg))
    .option('--skeleton <dir>', "the lab's skeleton: its lines are left out when submissions are compared")
    .option('--no-color', 'plain output even on a terminal')
    .option('-v, --verbose', 'show progress')
    .addOption(configOption())
    .addOption(noConfigOption())
    .action(async (folder: string | undefined, o: GradeCliOptions) => {
      const { loadRubric, DEFAULT_RUBRIC_TEXT } = await import('../grade/rubric.js');
      if (o.printRubric) {
        process.stdout.write(DEFAULT_RUBRIC_TEXT);
        return;
      }
      if (!folder) throw usage('grade needs the class folder (or --print-rubric)');
      if (o.canvasAssignment && !o.canvas) throw usage('--canvas-assignment goes with --canvas');
      const rubric = await loadRubric(o.rubric ? resolve(o.rubric) : undefined);
      const { gradeClass } = await import('../commands/grade.js');
      const { checkSheets, writeGradeFiles } = await import('../commands/grade-files.js');
      const sheets = { csv: o.csv, moodle: o.moodle, canvas: o.canvas, canvasAssignment: o.canvasAssignment };
      await checkSheets(sheets);
      const { renderGradeText } = await import('../report/grade-text.js');
      const err = makeStyle({ color: o.color === false ? false : undefined, stream: process.stderr });
      const guest: GuestCliOptions = { ...o, arch: o.arch ? [o.arch] : undefined, kernel: [o.kernel ?? DEFAULT_KERNEL], junit: undefined, refreshKernel: false, connectTimeout: 20, outputDir: o.out ? resolve(o.out) : undefined };
      const graded = await gradeClass({
        ...setupOptions(guest, !!o.verbose),
        folder: resolve(folder),
        rubric,
        jobs: o.jobs,
        pages: 16,
        force: !!o.force,
        ...(o.shard ? { shard: o.shard } : {}),
        ...(o.skeleton ? { skeleton: resolve(o.skeleton) } : {}),
        onGraded: (r, done, total) => {
          if (!interrupted()) process.stderr.write(err.dim(progressLine(r, done, total)));
        },
        stopped: () => interrupted() !== undefined,
      });
      const { report, sheets: filled } = await writeGradeFiles(graded, sheets);
      const style = makeStyle({ color: o.color === false ? false : undefined });
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : renderGradeText(report, style));
      for (const s of filled) {
        const missing = s.filled.unmatched.length ? `; not in the sheet: ${s.filled.unmatched.join(', ')}` : '';
        process.stderr.write(`${s.platform}: ${s.filled.matched.length} grades written to ${s.path}${missing}\n`);
      }
      if (o.csv) process.stderr.write(`roster: ${o.csv}\n`);
      process.exitCode = report.exitCode;
    });
}
