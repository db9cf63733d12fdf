/**
 * Putting a command's pieces together into its report: `run`'s RunReport and
 * `check`'s CheckReport, from the jobs' assessments and what the setup knew.
 * Pure, shared by the commands, `parse` (which re-assesses a saved run) and
 * the tests; the status comes from the one exit policy.
 */
import type { CheckName } from '../model/checks.js';
import { checksStatus, runStatus } from '../model/exit.js';
import type { CheckResult } from '../model/outcome.js';
import type { PatternChoice } from '../model/pattern.js';
import { SCHEMA_VERSION, type CheckReport, type RunReport } from '../model/report.js';
import { VERSION } from '../util/version.js';
import type { Assessment } from './assess.js';
import { checkItems, STUDENT_CHECKS, type CheckFindings } from './verdicts.js';

export interface ReportParts {
  kernel: RunReport['kernel'];
  machine: RunReport['machine'];
  module: RunReport['module'];
  checks: readonly CheckName[];
  assessments: readonly Assessment[];
  notes: readonly string[];
  artifacts: RunReport['artifacts'];
  timings: RunReport['timings'];
}

export function assembleReport(p: ReportParts): RunReport {
  const results = p.assessments.flatMap((a) => a.results);
  const problems = p.assessments.flatMap((a) => a.strategy.problems);
  return {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'mmaplab', version: VERSION },
    command: 'run',
    ...runStatus(results, problems),
    kernel: p.kernel,
    machine: p.machine,
    module: p.module,
    strategies: p.assessments.map((a) => a.strategy),
    checks: [...p.checks],
    results,
    kernelLog: { lines: p.assessments.flatMap((a) => a.kernelLog), problems },
    notes: once([...p.notes, ...p.assessments.flatMap((a) => a.notes)]),
    consoleTail: p.assessments.find((a) => a.consoleTail.length)?.consoleTail ?? [],
    artifacts: p.artifacts,
    timings: p.timings,
  };
}

export interface CheckParts {
  kernel: CheckReport['kernel'];
  machine: CheckReport['machine'];
  driver: CheckReport['driver'];
  /** The build: its warnings, or the diagnostics it failed with (then there are no assessments). */
  build: CheckFindings['build'];
  /** One per pass: a pass that crashed or hung its guest leaves the checks after it to the next. */
  assessments: readonly Assessment[];
  /** The bytes every page must start with, and what said so. */
  pattern: PatternChoice;
  notes: readonly string[];
  artifacts: CheckReport['artifacts'];
}

/** The checks a pass of `check` never reached: the next pass runs them (checkDriver, and parse reading it back). */
export function checksLeft(a: Assessment): CheckName[] {
  return a.results.filter((r) => r.outcome.kind === 'not-run').map((r) => r.check);
}

/** The same note from several passes (a crash in init repeats in each) once, in order. */
function once(notes: readonly string[]): string[] {
  return [...new Set(notes)];
}

export function assembleCheckReport(p: CheckParts): CheckReport {
  const { assessments } = p;
  // Each check's result from the pass that ran it.
  const results = STUDENT_CHECKS.flatMap((c) => {
    const ran = assessments.map((a) => a.results.find((r) => r.check === c)).filter((r): r is CheckResult => !!r);
    return ran.find((r) => r.outcome.kind !== 'not-run') ?? ran[ran.length - 1] ?? [];
  });
  const last = assessments[assessments.length - 1];
  const problems = assessments.flatMap((a) => a.strategy.problems);
  const items = checkItems({
    build: p.build,
    insmod: assessments[0]?.strategy.insmod,
    device: assessments.find((a) => a.inspect.device)?.inspect.device,
    rmmod: last?.strategy.rmmod,
    results,
    problems,
    vmallocLeft: last?.inspect.vmallocLeft ?? [],
    tainted: last?.inspect.tainted,
    reservedFreed: last?.inspect.reservedFreed,
    moduleName: p.driver.module ?? '',
    pattern: p.pattern,
  });
  return {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'mmaplab', version: VERSION },
    command: 'check',
    ...checksStatus(items),
    driver: p.driver,
    kernel: p.kernel,
    machine: p.machine,
    items,
    pattern: p.pattern,
    results,
    kernelLog: { lines: assessments.flatMap((a) => a.kernelLog), problems },
    notes: once([...p.notes, ...assessments.flatMap((a) => a.notes)]),
    consoleTail: assessments.find((a) => a.consoleTail.length)?.consoleTail ?? [],
    artifacts: p.artifacts,
  };
}
