/** Captured real runs (test/capture-fixtures.sh), split into their jobs, assessed as `run` does. */
import { assessJob, type Assessment, type JobEnd } from '../../src/diagnose/assess.js';
import { CHECK_NAMES } from '../../src/model/checks.js';
import { parseRecordLine, type GuestRecord } from '../../src/guest/protocol.js';
import { assembleReport } from '../../src/diagnose/assemble.js';
import type { RunReport } from '../../src/model/report.js';
import { fixture } from '../helpers.js';

export interface FixtureJob {
  id: number;
  strategy: string;
  records: GuestRecord[];
}

export function fixtureJobs(name: string): FixtureJob[] {
  const jobs: FixtureJob[] = [];
  for (const line of fixture('consoles', `${name}.records.jsonl`).split('\n').filter(Boolean)) {
    const { job, strategy, ...rest } = JSON.parse(line) as { job: number; strategy: string };
    let j = jobs.find((x) => x.id === job);
    if (!j) jobs.push((j = { id: job, strategy, records: [] }));
    j.records.push(parseRecordLine(JSON.stringify(rest)));
  }
  // Jobs that ran side by side are recorded as they ended: in the order they were sent.
  return jobs.sort((a, b) => a.id - b.id);
}

/** Assess every job of a captured run; `end` says how the job ended (the capture does not record it). */
export function assessFixture(name: string, end: JobEnd = 'done'): Assessment[] {
  const console = fixture('consoles', `${name}.console.log`);
  return fixtureJobs(name).map((j) => assessJob({ strategy: j.strategy, checks: CHECK_NAMES, jobId: j.id, end, records: j.records, console }));
}

/** A RunReport of a captured run, as `run` would assemble it. */
export function fixtureReport(name: string, end: JobEnd = 'done'): RunReport {
  return assembleReport({
    kernel: { spec: 'debian:bookworm', release: '6.1.0-56-cloud-amd64', packageVersion: '6.1.192-2', flavour: 'cloud-amd64' },
    machine: { accel: 'tcg', accelReason: 'TCG: no /dev/kvm', qemu: '7.2.22', boots: 1, bootAttempts: 1 },
    module: { name: 'mmaplab', compiler: 'gcc-12 12.2.0', buildCached: true, buildWarnings: [] },
    checks: CHECK_NAMES,
    assessments: assessFixture(name, end),
    notes: [],
    artifacts: { dir: '/runs/x', consoleLog: '/runs/x/console.log', resultsJson: '/runs/x/results.json', module: '/runs/x/mmaplab.ko', testProgram: '/runs/x/mmap-test' },
    timings: { totalMs: 3000, kernelMs: 1, buildMs: 1, bootMs: 2200, guestReadyMs: 1700, jobMs: 600 },
  });
}
