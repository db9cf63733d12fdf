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

/** The lab test's job's strategy label: its records are told apart from the checks' (mmaplab parse). */
export const LAB_TEST_JOB = 'lab-test';

/** A line the program printed, as a reason may quote it: its control characters shown, cut short. */
const quoted = (l: string) => visibleControls(l.trim().slice(0, 200));

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
  const lines = r.output.map(quoted);
  const last = lines.filter((l) => l).at(-1);
  const ended = ending(r);
  if (r.run === 1) {
    const matched = lines.filter((l) => l === 'matched').length;
    const wrong = lines.find((l) => /^0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+$/.test(l));
    if (matched === pages && !ended) return { verdict: 'pass', reason: `${matched}/${pages} pages matched aa bb cc dd` };
    // The lab's program prints a page's four bytes where they differ; a student's own variant, its own words.
    const first = lines.find((l) => l && l !== 'matched');
    const said = wrong ? `a page starts with ${wrong}` : first ? `it printed "${first}"` : undefined;
    return { verdict: 'fail', reason: `${matched}/${pages} pages matched aa bb cc dd${said ? `; ${said}` : ''}${ended ? `; ${ended}` : ''}` };
  }
  if (r.run === 2) {
    // The lab's read/write test prints a page's bytes where write() was not seen through the mapping or read() did not return
    // the buffer, and exits 0 either way: every page of test 1 and of both halves must say matched.
    const matched = lines.filter((l) => l === 'matched').length;
    const wrong = lines.find((l) => /^0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+$/.test(l));
    const failed = lines.find((l) => /read\/write test/.test(l));
    if (!ended && !wrong && !failed && matched >= 3 * pages) return { verdict: 'pass', reason: `every page matched after write() and through read() (${matched}/${3 * pages})` };
    const said = failed ?? (wrong ? `a page showed ${wrong}` : last ? `its last line: ${last}` : 'it printed nothing');
    return { verdict: 'fail', reason: `the read/write test failed: ${matched}/${3 * pages} matched; ${said}${ended ? `; ${ended}` : ''}` };
  }
  // The lab's program prints "mmaped :N MB" even when it could not read the /proc entry: that comes first.
  const unread = lines.find((l) => /^open \/proc|failed to show memory usage/.test(l));
  if (unread) return { verdict: 'fail', reason: `the driver's /proc entry could not be read: ${unread}` };
  const grew = lines.map((l) => /^mmaped :(\d+) MB/.exec(l)?.[1]).find((x) => x !== undefined);
  if (grew === '10') return { verdict: 'pass', reason: "the driver's /proc entry saw the process's mappings grow by the 10 MB mapped" };
  if (grew !== undefined) return { verdict: 'fail', reason: `the driver's /proc entry saw the mappings grow by ${grew} MB, not the 10 MB mapped` };
  return { verdict: 'fail', reason: `no memory usage printed: ${last ?? ended ?? 'no output'}` };
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
