/**
 * `mmaplab parse <run dir | console.log>`: re-read what a run kept, with the
 * same parsers, and return the same report, so a saved run (a student's, a CI
 * artefact) can be looked at again without a guest.
 *
 * Every directory mmaplab writes reads back: a run's or a check's (each job
 * re-assessed from its records and the console of its boot; results.json
 * supplies what only the run itself knew: kernel, machine, module, how each
 * job ended), a matrix's (each kernel's directory in turn), an SSH target's
 * (its followed kernel log is its console), and a killed run's (what its
 * console and the records of the jobs that ended hold). A console.log alone
 * gives its kernel problems. Anything else is a usage error in one line.
 */
import { basename, dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { assembleCheckReport, assembleReport, checksLeft } from '../diagnose/assemble.js';
import { assessJob, type Assessment, type JobEnd } from '../diagnose/assess.js';
import { symbolizeFindings, symbolizer } from '../kbuild/symbolize.js';
import { LAB_TEST_JOB } from '../diagnose/lab-test.js';
import { kernelSlug } from '../kernel/spec.js';
import { assembleMatrix } from '../matrix/model.js';
import { LAB_WORD, patternChoice, type PatternChoice } from '../model/pattern.js';
import { STUDENT_CHECKS } from '../diagnose/verdicts.js';
import { CHECK_NAMES, isCheckName, type CheckName } from '../model/checks.js';
import type { KernelLine, KernelProblem } from '../model/kernel-log.js';
import type { CheckReport, KernelEntry, MatrixReport, RunReport } from '../model/report.js';
import { findProblems, parseKernelLog, reachedInit } from '../parse/kmsg.js';
import { RunDir, type SavedJob, type SavedResults } from '../rundir/run-dir.js';
import { isMmaplabError, usageError } from '../util/errors.js';

export type ParseResult =
  | { kind: 'run'; report: RunReport }
  | { kind: 'check'; report: CheckReport }
  | { kind: 'matrix'; report: MatrixReport }
  | { kind: 'console'; path: string; lines: KernelLine[]; problems: KernelProblem[]; reachedInit: boolean };

/** The checks a job ran, in the order it started them. */
function checksOf(jobs: readonly SavedJob[]): CheckName[] {
  const seen: CheckName[] = [];
  for (const j of jobs) for (const r of j.records) if (r.t === 'start' && isCheckName(r.check) && !seen.includes(r.check)) seen.push(r.check);
  return seen.length ? CHECK_NAMES.filter((c) => seen.includes(c)) : [...CHECK_NAMES];
}

/**
 * results.json, validated. One that is damaged or not mmaplab's does not stop a
 * directory with records from being read: the records are re-assessed without it.
 */
async function readResultsOrNote(dir: RunDir, jobs: SavedJob[] | undefined): Promise<{ saved: SavedResults | undefined; passedOver: string | undefined }> {
  try {
    return { saved: await dir.readResults(), passedOver: undefined };
  } catch (e) {
    if (!jobs?.length || !isMmaplabError(e)) throw e;
    return { saved: undefined, passedOver: e.message };
  }
}

/** The bytes the check expected: as it said (results.json), else the word the test program looked for, strictly (earlier versions). */
function patternOf(jobs: readonly SavedJob[], saved: PatternChoice | undefined): PatternChoice {
  if (saved) return saved;
  for (const j of jobs) for (const r of j.records) if (r.t === 'start') return patternChoice(Number.parseInt(r.pattern, 16), 'option', true);
  return patternChoice(LAB_WORD, 'default', false);
}

export async function parseSaved(path: string): Promise<ParseResult> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw usageError(`${path} does not exist`);
  const dir = RunDir.at(info.isDirectory() ? path : dirname(path));
  const consoleName = info.isDirectory() ? 'console.log' : basename(path);
  const jobs = await dir.readJobs();
  // A console given by itself is read by itself; beside records, results.json says what only the run knew.
  const { saved, passedOver } = info.isDirectory() || jobs?.length ? await readResultsOrNote(dir, jobs) : { saved: undefined, passedOver: undefined };
  if (saved?.kind === 'matrix') return { kind: 'matrix', report: await parseMatrix(dir, saved.report) };
  if (jobs?.length) return reassess(dir, consoleName, jobs, saved, passedOver);
  // A check whose driver did not build ran no job: its results are all there is.
  if (saved?.kind === 'check' && !jobs) return saved;
  const text = await dir.read(consoleName);
  if (text === undefined) {
    if (saved) return saved;
    throw usageError(`${path} is not a directory mmaplab wrote: it has no console.log, records.jsonl or results.json`, 'give a run, check or matrix directory (mmaplab prints its path as "artefacts"), or a console log');
  }
  const lines = parseKernelLog(text);
  return { kind: 'console', path: dir.file(consoleName), lines, problems: findProblems(lines), reachedInit: reachedInit(text) };
}

/** Each job assessed again from its records and the console of the boot that ran it. */
async function reassess(dir: RunDir, consoleName: string, jobs: SavedJob[], saved: SavedResults | undefined, passedOver: string | undefined): Promise<ParseResult> {
  const prior = saved?.kind === 'run' || saved?.kind === 'check' ? saved : undefined;
  // What wrote the records: results.json says, else the records themselves (runs of earlier versions: a run).
  const isCheck = prior ? prior.kind === 'check' : jobs.some((j) => j.ending?.command === 'check');
  const checks = prior?.kind === 'run' ? prior.report.checks : checksOf(jobs);
  const assessments: Assessment[] = [];
  // check's passes: each ran the checks the pass before it left not run, as checkDriver does.
  let remaining: readonly CheckName[] = STUDENT_CHECKS;
  // Jobs that ran side by side may have ended in any order: assess them in the order they were sent.
  // check's job of the lab's own test program is no pass of the checks: its verdict is kept as saved.
  for (const j of [...jobs].filter((x) => x.strategy !== LAB_TEST_JOB).sort((a, b) => a.id - b.id)) {
    const before = prior?.kind === 'run' ? prior.report.strategies.find((s) => s.strategy === j.strategy) : undefined;
    const boot = j.ending?.boot ?? before?.boot ?? 1;
    // How the job ended, as its machine saw it (records of earlier versions: from results.json, else guessed).
    const end: JobEnd = j.ending?.end ?? before?.end ?? (j.records.some((r) => r.t === 'job-done') ? 'done' : 'timeout');
    const ran = isCheck ? remaining : checks;
    // A job its machine never began (an SSH target lost before it) had no console of its own.
    const console = j.ending?.console === false ? '' : await dir.consoleOf({ id: j.id, boot }, consoleName);
    const flood = j.ending?.flood ? { flood: j.ending.flood } : {};
    const a = assessJob({ strategy: j.strategy, ...(isCheck ? { label: '' } : {}), checks: ran, jobId: j.id, end, records: j.records, console, boot, ...flood });
    assessments.push(a);
    remaining = checksLeft(a);
  }
  // The run kept its module: oops frames in it can still be resolved to source lines
  // (the copy in the directory itself first: a CI artefact is read where it was downloaded).
  const keptModule = prior?.report.artifacts.module;
  const moduleName = prior?.kind === 'run' ? prior.report.module.name : prior?.report.driver.module;
  const moduleCopy = keptModule ? [dir.file(basename(keptModule)), keptModule].find((p) => existsSync(p)) : undefined;
  if (moduleCopy && moduleName) {
    const symbols = await symbolizer(moduleCopy, moduleName).catch(() => undefined);
    if (symbols) for (const a of assessments) await symbolizeFindings(a.strategy.problems, a.results.flatMap((r) => r.traced), symbols);
  }
  const rederived = (n: string) => assessments.some((a) => a.notes.includes(n));
  const unknown = 'unknown (not in the saved run)';
  const kernel = prior?.report.kernel ?? { spec: unknown, release: unknown, packageVersion: unknown, flavour: unknown };
  const missing = passedOver ? `results.json was passed over (${passedOver})` : 'results.json is missing (the run was killed, or is still running)';
  const notes = prior ? prior.report.notes.filter((n) => !rederived(n)) : [`${missing}: what the kernel and machine were is unknown`];
  if (isCheck) {
    const p = prior?.kind === 'check' ? prior.report : undefined;
    const report = assembleCheckReport({
      kernel,
      machine: p?.machine,
      driver: p?.driver ?? { source: unknown, module: undefined, compiler: undefined, buildWarnings: [] },
      build: { ok: true, warnings: p?.driver.buildWarnings ?? [] },
      assessments,
      pattern: patternOf(jobs, p?.pattern),
      notes,
      artifacts: p?.artifacts ?? { dir: dir.path, consoleLog: dir.file(consoleName), resultsJson: dir.resultsJson, module: undefined },
    });
    if (p?.labTest) report.labTest = p.labTest;
    return { kind: 'check', report };
  }
  const p = prior?.kind === 'run' ? prior.report : undefined;
  const report = assembleReport({
    kernel,
    machine: p?.machine ?? { accel: 'tcg', accelReason: unknown, qemu: unknown, boots: Math.max(...assessments.map((a) => a.strategy.boot)), bootAttempts: 0 },
    module: p?.module ?? { name: 'unknown', compiler: unknown, buildCached: false, buildWarnings: [] },
    checks,
    assessments,
    notes,
    artifacts: p?.artifacts ?? { dir: dir.path, consoleLog: dir.file(consoleName), resultsJson: dir.resultsJson, module: '', testProgram: '' },
    timings: p?.timings ?? { totalMs: 0, kernelMs: 0, buildMs: 0, bootMs: 0, guestReadyMs: 0, jobMs: 0 },
  });
  return { kind: 'run', report };
}

/** Each kernel's run re-read from its own directory; a kernel that never ran stays as saved. */
async function parseMatrix(dir: RunDir, saved: MatrixReport): Promise<MatrixReport> {
  const kernels: KernelEntry[] = [];
  for (const k of saved.kernels) {
    const sub = RunDir.at(dir.file(kernelSlug(k.spec)));
    if (k.kind !== 'error' && (await sub.readJobs())?.length) {
      const r = await parseSaved(sub.path);
      kernels.push(r.kind === 'run' ? { spec: k.spec, kind: 'run', report: r.report } : r.kind === 'check' ? { spec: k.spec, kind: 'check', report: r.report } : k);
    } else {
      kernels.push(k);
    }
  }
  return assembleMatrix({ command: saved.command, kernels, dir: dir.path, resultsJson: dir.resultsJson, totalMs: saved.timings.totalMs });
}
