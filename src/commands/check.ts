/**
 * `mmaplab check <dir | file.c>`: a student's own driver, as it is, through
 * the lab's checks in a guest or on an SSH target (never the host's kernel,
 * unless the user insists): builds, loads, the
 * device opens, MAP_SHARED shows the pattern on every page and every page is a
 * different page, MAP_PRIVATE works or fails cleanly, a write reaches the
 * driver, rmmod, a clean kernel log, no vmalloc area left, taint. A check that
 * crashes the guest fails and the checks after it run in a fresh boot; one that
 * hangs it fails at the deadline, and the checks after it are not run.
 * Returns data; never prints.
 */
import { copyFile, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { driverSourceOrRefused, type DriverSource } from '../kbuild/driver-source.js';
import { choosePattern } from '../kbuild/lab-pattern.js';
import { fileIn, symbolizeFindings, symbolizer } from '../kbuild/symbolize.js';
import { deprecationNotes, olderKernelFor } from '../diagnose/api-changes.js';
import { assembleCheckReport, checksLeft } from '../diagnose/assemble.js';
import { assessJob, type Assessment } from '../diagnose/assess.js';
import { CUSTOM_DRIVER } from '../diagnose/expectations.js';
import { STUDENT_CHECKS } from '../diagnose/verdicts.js';
import { labJob, type LabJob } from '../guest/job.js';
import type { LabTestPlan } from '../kbuild/lab-test.js';
import { LAB_TEST_JOB, labTestReport } from '../diagnose/lab-test.js';
import { observeJob } from '../parse/job-records.js';
import { kernelPgReservedBit } from '../kernel/page-flags.js';
import { jobTiming, type Machine } from '../machines/machine.js';
import type { JobTiming } from '../model/timing.js';
import { setUpLab, type BuiltLab, type LabSetup, type SetupOptions } from '../machines/setup.js';
import type { CheckName } from '../model/checks.js';
import type { CheckReport, LabTestReport } from '../model/report.js';
import { RunDir } from '../rundir/run-dir.js';
import { cacheRoot } from '../util/paths.js';
import { isMmaplabError, type MmaplabError } from '../util/errors.js';
import type { PatternChoice } from '../model/pattern.js';

export interface CheckOptions extends SetupOptions {
  /** The student's driver: a folder or a .c file. */
  source: string;
  /** The device node to open, when discovery cannot find it. */
  device: string | undefined;
  pages: number;
  /** --expect-pattern: the 32-bit word every page must start with (the lab's aa bb cc dd is 0xddccbbaa); else found in the sources. */
  pattern: number | undefined;
  /**
   * The user named no kernel: a driver that fails to build only on kernel API
   * removals is checked on the older Debian kernel that builds it as written.
   */
  olderOnDrift?: boolean;
  /** Notes from before this check (the build that sent it to an older kernel). */
  carriedNotes?: readonly string[];
}

/**
 * The checks in passes: each pass runs the checks left; one that crashes the
 * guest ends its pass, and the checks it never reached run again in a fresh
 * guest; a pass that finished no check (the driver crashes as it loads) is not
 * tried again, the crash is the verdict. A hang would most likely hang again, a deadline at a time, and a lost
 * target is gone: after either, the checks left are not run.
 */
async function runPasses(machine: Machine, jobFor: (id: number, checks: readonly CheckName[]) => LabJob, runDir: RunDir, onPass: (checks: readonly CheckName[]) => void, timings: JobTiming[], firstJob: number): Promise<Assessment[]> {
  const assessments: Assessment[] = [];
  let remaining: readonly CheckName[] = STUDENT_CHECKS;
  for (let id = firstJob; remaining.length > 0 && id < firstJob + STUDENT_CHECKS.length; id++) {
    onPass(remaining);
    const job = jobFor(id, remaining);
    const r = await machine.runJob(job);
    if (r.timing) timings.push(jobTiming(id, remaining[0]!, r.timing));
    const flood = r.flood ? { flood: r.flood } : {};
    await runDir.appendRecords(job, r.records, { end: r.end, boot: r.boot, command: 'check', console: r.console !== '', ...flood });
    const a = assessJob({ strategy: CUSTOM_DRIVER, label: '', checks: remaining, jobId: id, end: r.end, records: r.records, console: r.console, boot: r.boot, ...flood });
    assessments.push(a);
    // A flood would flood again, a deadline at a time.
    if (r.end === 'done' || r.end === 'timeout' || r.end === 'flooded' || r.end === 'connection-lost') break;
    // A pass that got no check done (a crash in init, a guest that died loading the driver) would do the same again.
    if (a.results.every((x) => x.outcome.kind === 'not-run')) break;
    // A hang the kernel reported (a lockup stops the guest before the deadline) would hang again.
    if (a.results.some((x) => x.outcome.kind === 'hang')) break;
    remaining = checksLeft(a);
  }
  return assessments;
}

/**
 * The lab's own test program in a job of its own (a guest fresh from the
 * snapshot, the driver loaded anew), its runs judged. Not after checks that
 * hung, lost the target or could not load the driver: it would only do the
 * same. Its job is labelled apart (mmaplab parse leaves it out of the checks).
 */
async function runLabTest(machine: Machine, plan: LabTestPlan, base: LabJob, runDir: RunDir, passes: readonly Assessment[], timings: JobTiming[]): Promise<LabTestReport> {
  if (plan.kind !== 'built') return labTestReport(plan, undefined);
  const last = passes.at(-1)?.strategy;
  const why = last?.end === 'timeout' || last?.end === 'connection-lost' || last?.end === 'flooded' ? `the checks before it ended in a ${last.end}` : last?.insmod && !last.insmod.ok ? 'the driver did not load' : undefined;
  if (why) return { kind: 'skipped', program: plan.program, reason: `not run: ${why}` };
  const job: LabJob = { ...base, strategy: LAB_TEST_JOB, testProgram: plan.path, checks: [], lab: { runs: plan.runs, node: plan.makesNode ? '' : plan.node } };
  try {
    const r = await machine.runJob(job);
    if (r.timing) timings.push(jobTiming(job.id, LAB_TEST_JOB, r.timing));
    await runDir.appendRecords(job, r.records, { end: r.end, boot: r.boot, command: 'check', console: r.console !== '', ...(r.flood ? { flood: r.flood } : {}) });
    const obs = observeJob(r.records, []);
    if (obs.steps.insmod && !obs.steps.insmod.ok) return { kind: 'skipped', program: plan.program, reason: 'not run: the driver did not load in its guest' };
    return labTestReport(plan, obs.labRuns);
  } catch (e) {
    // The checks' report stands whatever became of this job.
    return { kind: 'skipped', program: plan.program, reason: `not run: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * A driver that fails to build only on kernel API removals, checked on the
 * older Debian kernel that builds it as written; undefined (with a note why)
 * when that kernel cannot be had or does not build it either.
 */
async function onOlderKernel(opts: CheckOptions, lab: Extract<LabSetup, { kind: 'build-failed' }>, runDir: RunDir, notes: string[]): Promise<CheckReport | undefined> {
  const older = olderKernelFor(lab.error.locations);
  if (!older) return undefined;
  const why = older.changes.map((c) => c.summary.replace(/\.$/, '')).join('; ');
  // Kept under its own name: with --output-dir the older kernel's check writes into this same directory.
  const firstLog = runDir.file(`module-build-${lab.kernel.release}.log`);
  await copyFile(runDir.file('module-build.log'), firstLog).catch(() => undefined);
  const note = `the driver does not build on ${lab.kernel.release}, only because of kernel API changes (${why}); it was checked on ${older.suite}, which builds it as written (pass --kernel to choose; the build log on ${lab.kernel.release}: ${firstLog})`;
  try {
    const there = await checkDriver({ ...opts, kernel: older.suite, olderOnDrift: false, carriedNotes: [note] });
    // Only a build that worked there makes the note true; otherwise this kernel's failure is the verdict.
    if (there.items.find((i) => i.id === 'builds')?.verdict === 'pass') return there;
    notes.push(`it does not build on ${older.suite} either`);
  } catch (e) {
    // No network for that kernel, say: the verdict on this one stands.
    if (!isMmaplabError(e) || e.kind === 'usage') throw e;
    notes.push(`it would build on ${older.suite}, which could not be tried: ${e.message}`);
  }
  return undefined;
}

/** What a check knows before any build: its run directory, the driver's sources as the user sees them, the pattern, its notes. */
export interface CheckInputs {
  t0: number;
  runDir: RunDir;
  display: string;
  src: DriverSource | undefined;
  pattern: PatternChoice;
  notes: string[];
  /** The first pass's job id (check --watch numbers its checks' jobs apart in one session). */
  firstJob: number;
}

export async function checkInputs(opts: CheckOptions, runDir: RunDir, firstJob = 1): Promise<CheckInputs> {
  const t0 = performance.now();
  const display = relative(process.cwd(), opts.source) || '.';
  // A submission refused as it is read (a symlink out of it) is a failed build, reported once the kernel is known.
  const src = await driverSourceOrRefused(opts.source);
  const pattern = await choosePattern({ source: opts.source, driverFiles: src ? src.files.map((f) => join(src.root, f)) : [], override: opts.pattern });
  return { t0, runDir, display, src, pattern, notes: [...(opts.carriedNotes ?? [])], firstJob };
}

export async function checkDriver(opts: CheckOptions): Promise<CheckReport> {
  const inputs = await checkInputs(opts, await RunDir.create(opts));
  const { runDir, notes } = inputs;
  const lab = await setUpLab({ ...opts, labTest: opts.labTest ?? true }, opts.source, runDir, opts.cacheDir ?? cacheRoot(), notes);
  if (lab.kind === 'build-failed' && opts.olderOnDrift) {
    const there = await onOlderKernel(opts, lab, runDir, notes);
    if (there) return there;
  }
  if (lab.kind === 'build-failed') return failedBuildReport(lab, lab.error, inputs);
  // What a target kept is reported as machine.leftBehind: the machine is closed before the report is made.
  return checkBuilt(opts, inputs, lab, () => lab.machine.close());
}

/** A driver that does not compile is the first failed check, not an infrastructure failure. */
export async function failedBuildReport(lab: Pick<LabSetup, 'kernel' | 'isolation'>, error: MmaplabError, inputs: CheckInputs): Promise<CheckReport> {
  const { runDir } = inputs;
  const report = assembleCheckReport({
    kernel: lab.kernel,
    machine: undefined,
    driver: { source: inputs.display, module: undefined, compiler: undefined, buildWarnings: [], isolation: lab.isolation },
    build: { ok: false, message: error.message, diagnostics: error.locations.map((l) => ({ ...l })), ...(error.hint ? { hint: error.hint } : {}) },
    assessments: [],
    pattern: inputs.pattern,
    notes: inputs.notes,
    artifacts: { dir: runDir.path, consoleLog: undefined, resultsJson: runDir.resultsJson, module: undefined },
  });
  await runDir.writeResults(report);
  return report;
}

/** The built driver through the checks on the lab's machine; afterJobs runs once the jobs are done (close the machine, or keep it for the next). */
export async function checkBuilt(opts: CheckOptions, inputs: CheckInputs, lab: BuiltLab, afterJobs: () => Promise<unknown>): Promise<CheckReport> {
  const progress = opts.onProgress ?? (() => {});
  const { runDir, src, pattern, notes } = inputs;
  const { module, machine } = lab;

  // PG_reserved's bit comes from the guest kernel's headers; a target is not watched for it.
  const pgReserved = lab.guestKernel ? await kernelPgReservedBit(lab.guestKernel) : undefined;
  // What builds today but is on its way out on this kernel (.mmap from 6.17).
  const texts = await Promise.all((src?.files ?? []).filter((f) => /\.[ch]$/.test(f)).map((f) => readFile(join(src!.root, f), 'utf8')));
  notes.push(...deprecationNotes(texts, lab.kernel.release));
  const jobFor = (id: number, checks: readonly CheckName[]): LabJob => ({
    ...labJob({ id, strategy: CUSTOM_DRIVER, modulePath: module.jobKo, moduleName: module.name, moduleParams: [], testProgram: lab.testProgram, checks, pages: opts.pages }),
    deviceName: '',
    device: opts.device ?? '',
    pattern: Number.parseInt(pattern.word, 16),
    inspect: true,
    // Either byte order passes in the guest; the verdict says whether the other one is wrong.
    testFlags: ['--no-index', '--pfns', '--either-order'],
    ...(pgReserved === undefined ? {} : { pgReservedBit: pgReserved }),
  });
  let assessments: Assessment[];
  let labTest: LabTestReport | undefined;
  const jobTimings: JobTiming[] = [];
  try {
    assessments = await runPasses(machine, jobFor, runDir, (remaining) => progress('job', `${module.name}: ${remaining.join(', ')}`, { lane: CUSTOM_DRIVER }), jobTimings, inputs.firstJob);
    if (lab.labTest) {
      progress('job', `${module.name}: the lab's test program (${lab.labTest.program})`, { lane: CUSTOM_DRIVER });
      labTest = await runLabTest(machine, lab.labTest, { ...jobFor(inputs.firstJob + STUDENT_CHECKS.length, []), testFlags: [] }, runDir, assessments, jobTimings);
    }
    progress('job', 'done', { lane: CUSTOM_DRIVER, finished: true });
  } finally {
    await afterJobs();
  }

  const symbols = await symbolizer(module.ko, module.name);
  // Only the submission's own files are quoted (the debug info naming them is the driver's to write).
  const quotable = fileIn((src?.files ?? []).map((f) => join(src!.root, f)));
  if (symbols) for (const a of assessments) await symbolizeFindings(a.strategy.problems, a.results.flatMap((r) => r.traced), symbols, quotable);
  const moduleCopy = runDir.file(`${module.name}.ko`);
  if (module.ko !== moduleCopy) await copyFile(module.ko, moduleCopy);
  const report = assembleCheckReport({
    kernel: lab.kernel,
    machine: machine.describe(),
    driver: { source: inputs.display, module: module.name, compiler: module.compiler, buildWarnings: module.warnings, isolation: module.isolation, ...(module.replayed ? { replayed: module.replayed } : {}) },
    build: { ok: true, warnings: module.warnings },
    assessments,
    pattern,
    notes,
    artifacts: { dir: runDir.path, consoleLog: machine.consoleLogs()[0], resultsJson: runDir.resultsJson, module: moduleCopy },
  });
  if (labTest) report.labTest = labTest;
  report.timings = { totalMs: Math.round(performance.now() - inputs.t0), kernelMs: Math.round(lab.kernelMs), buildMs: Math.round(lab.buildMs), jobs: jobTimings };
  await runDir.writeResults(report);
  return report;
}
