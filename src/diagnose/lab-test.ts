/**
 * The lab's own test program's runs judged as its author meant them: test 1
 * prints "matched" for every page that starts with aa bb cc dd, test 2 checks
 * that a write through the mapping is seen by read() and back, test 3 prints
 * how much the process's mappings grew over a 10 MiB mmap, read from the
 * driver's /proc entry.
 */
import type { LabTestPlan } from '../kbuild/lab-test.js';
import { signalOfStatus, type LabProgramRun } from '../parse/job-records.js';
import type { LabTestReport, LabTestRun } from '../model/report.js';
import { visibleControls } from '../util/safe-text.js';

/** How a run ended, when not by itself with status 0: a signal, a status, mmaplab's deadline. */
function ending(r: LabProgramRun): string | undefined {
  if (r.status === undefined) return 'it did not finish (the guest stopped)';
  if (r.stopped === 'deadline') return 'it did not finish within the step deadline and was killed';
  if (r.stopped === 'after-result' || r.status === 0) return undefined;
  const signal = signalOfStatus(r.status);
  if (signal) return `it was killed by ${signal.name} (${signal.description})`;
  return `it exited with status ${r.status}`;
}

function judge(r: LabProgramRun, pages: number): Omit<LabTestRun, 'run' | 'output'> {
  const lines = r.output;
  const last = lines.filter((l) => l.trim()).at(-1);
  const ended = ending(r);
  if (r.run === 1) {
    const matched = lines.filter((l) => l.trim() === 'matched').length;
    const wrong = lines.find((l) => /^0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+$/.test(l.trim()));
    if (matched === pages && !ended) return { verdict: 'pass', reason: `${matched}/${pages} pages matched aa bb cc dd` };
    // The lab's program prints a page's four bytes where they differ; a student's own variant, its own words.
    const first = lines.find((l) => l.trim() && l.trim() !== 'matched');
    const said = wrong ? `a page starts with ${wrong.trim()}` : first ? `it printed "${first.trim()}"` : undefined;
    return { verdict: 'fail', reason: `${matched}/${pages} pages matched aa bb cc dd${said ? `; ${said}` : ''}${ended ? `; ${ended}` : ''}` };
  }
  if (r.run === 2) {
    if (!ended && !lines.some((l) => /read\/write test/.test(l))) return { verdict: 'pass', reason: 'a write through the mapping was read back by read(), and a write() seen through the mapping' };
    return { verdict: 'fail', reason: `the read/write test failed: ${last ?? ended ?? 'no output'}${ended && last ? ` (${ended})` : ''}` };
  }
  const grew = lines.map((l) => /^mmaped :(\d+) MB/.exec(l.trim())?.[1]).find((x) => x !== undefined);
  if (grew === '10') return { verdict: 'pass', reason: "the driver's /proc entry saw the process's mappings grow by the 10 MB mapped" };
  if (grew !== undefined) return { verdict: 'fail', reason: `the driver's /proc entry saw the mappings grow by ${grew} MB, not the 10 MB mapped` };
  return { verdict: 'fail', reason: lines.some((l) => /failed to show memory usage|open \/proc/.test(l)) ? `the driver's /proc entry could not be read: ${lines.find((l) => /open \/proc|failed to show/.test(l))!.trim()}` : `no memory usage printed: ${last ?? ended ?? 'no output'}` };
}

/** The report of the lab's program: the plan's refusal or compile errors, or each of its runs judged. */
export function labTestReport(plan: LabTestPlan, runs: readonly LabProgramRun[] | undefined): LabTestReport {
  if (plan.kind !== 'built') return plan;
  const judged = plan.runs.map((n): LabTestRun => {
    const r = runs?.find((x) => x.run === n);
    if (!r) return { run: n, verdict: 'skip', reason: 'it did not run: the guest stopped before it', output: [] };
    // The program is the submission's: its escape sequences are shown, never sent to a terminal.
    return { run: n, ...judge(r, plan.pages), output: r.output.slice(0, 40).map((l) => visibleControls(l.slice(0, 500))) };
  });
  return { kind: 'ran', program: plan.program, command: plan.command, node: plan.node, runs: judged };
}
