/** Putting a run's pieces together into the RunReport: pure, shared by `run`, `parse` and the tests. */
import type { Diagnostic } from '../model/diagnostic.js';
import type { Assessment } from './assess.js';
import type { CheckName } from '../model/checks.js';
import { VERSION } from '../util/version.js';
import { SCHEMA_VERSION, type RunReport } from '../model/report.js';
import { runStatus } from '../model/exit.js';

export interface ReportParts {
  kernel: RunReport['kernel'];
  machine: RunReport['machine'];
  module: { name: string; compiler: string; buildCached: boolean; buildWarnings: Diagnostic[] };
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
    notes: [...p.notes, ...p.assessments.flatMap((a) => a.notes)],
    consoleTail: p.assessments.find((a) => a.consoleTail.length)?.consoleTail ?? [],
    artifacts: p.artifacts,
    timings: p.timings,
  };
}
