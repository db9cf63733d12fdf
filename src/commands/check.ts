/**
 * `mmaplab check <dir | file.c>`: a student's own driver, as it is, through
 * the lab's checks in a guest or on an SSH target (never the host's kernel,
 * unless the user insists): builds, loads, the
 * device opens, MAP_SHARED shows the pattern on every page and every page is a
 * different page, MAP_PRIVATE works or fails cleanly, a write reaches the
 * driver, rmmod, a clean kernel log, no vmalloc area left, taint. A check that
 * crashes the guest fails and the checks after it run in a fresh boot; one that
 * hangs it fails at the deadline, and the checks after it are not run.
 */
import { appendFile, copyFile, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { resolveDriverSource } from '../kbuild/driver-source.js';
import { deprecationNotes } from '../diagnose/api-changes.js';
import { symbolizeProblems, symbolizer } from '../kbuild/symbolize.js';
import { assessJob, type Assessment } from '../diagnose/assess.js';
import { CUSTOM_DRIVER } from '../diagnose/expectations.js';
import { checkItems } from '../diagnose/verdicts.js';
import { checksStatus } from '../model/exit.js';
import type { CheckName } from '../model/checks.js';
import { labJob } from '../guest/job.js';
import { kernelPgReservedBit } from '../kernel/page-flags.js';
import { SCHEMA_VERSION, type CheckReport } from '../model/report.js';
import { type CheckResult } from '../model/outcome.js';

import { cacheRoot } from '../util/paths.js';
import { VERSION } from '../util/version.js';
import { setUpLab, type SetupOptions } from '../machines/setup.js';
import { makeRunDir } from '../vm/boot.js';

export interface CheckOptions extends SetupOptions {
  /** The student's driver: a folder or a .c file. */
  source: string;
  /** The device node to open, when discovery cannot find it. */
  device: string | undefined;
  pages: number;
  /** The 32-bit word every page must start with (the seed writes 0xaabbccdd; the lab's aa bb cc dd is 0xddccbbaa). */
  pattern: number;
}


/** The mapping checks `check` runs, in order. */
export const STUDENT_CHECKS: readonly CheckName[] = ['shared', 'private', 'shared-write', 'oversize'];

export async function checkDriver(opts: CheckOptions): Promise<CheckReport> {
  const progress = opts.onProgress ?? (() => {});
  const cacheDir = opts.cacheDir ?? cacheRoot();
  const runDir = await makeRunDir(opts);
  const display = relative(process.cwd(), opts.source) || '.';
  const pattern = `0x${opts.pattern.toString(16).padStart(8, '0')}`;
  const notes: string[] = [];

  const lab = await setUpLab(opts, opts.source, runDir, cacheDir, notes);
  const base = { schemaVersion: SCHEMA_VERSION as typeof SCHEMA_VERSION, tool: { name: 'mmaplab' as const, version: VERSION }, command: 'check' as const, kernel: lab.kernel };
  if (lab.kind === 'build-failed') {
    // A driver that does not compile is the first failed check, not an infrastructure failure.
    const items = checkItems({
      build: { ok: false, message: lab.error.message, diagnostics: lab.error.locations.map((l) => ({ ...l })) },
      results: [], problems: [], vmallocLeft: [], tainted: undefined, moduleName: '', pattern,
    });
    const report: CheckReport = {
      ...base, ...checksStatus(items),
      driver: { source: display, module: undefined, compiler: undefined, buildWarnings: [] },
      machine: undefined, items, results: [], kernelLog: { lines: [], problems: [] }, notes, consoleTail: [],
      artifacts: { dir: runDir, consoleLog: undefined, resultsJson: join(runDir, 'results.json'), module: undefined },
    };
    await writeFile(report.artifacts.resultsJson, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  }
  const { module } = lab;

  // PG_reserved's bit comes from the guest kernel's headers; a target is not watched for it.
  const pgReserved = lab.guestKernel ? await kernelPgReservedBit(lab.guestKernel) : undefined;
  // What builds today but is on its way out on this kernel (.mmap from 6.17).
  const src = await resolveDriverSource(opts.source);
  const texts = await Promise.all(src.files.filter((f) => /\.[ch]$/.test(f)).map((f) => readFile(join(src.root, f), 'utf8')));
  notes.push(...deprecationNotes(texts, lab.kernel.release));
  const assessments: Assessment[] = [];
  let remaining = [...STUDENT_CHECKS];
  // In a matrix, guests wait for a slot (the host takes it); fetching and building above do not.
  try {
    // Each pass runs the checks left; one that crashes or hangs the guest ends the pass.
    for (let id = 1; remaining.length > 0 && id <= STUDENT_CHECKS.length; id++) {
      progress('job', `${module.name}: ${remaining.join(', ')}`);
      const job = {
        ...labJob({ id, strategy: CUSTOM_DRIVER, modulePath: module.jobKo, moduleName: module.name, moduleParams: [], testProgram: lab.testProgram, checks: remaining, pages: opts.pages }),
        deviceName: '',
        device: opts.device ?? '',
        pattern: opts.pattern,
        inspect: true,
        testFlags: ['--no-index', '--pfns'],
        ...(pgReserved === undefined ? {} : { pgReservedBit: pgReserved }),
      };
      const r = await lab.host.runJob(job);
      await appendFile(join(runDir, 'records.jsonl'), r.records.map((rec) => `${JSON.stringify({ job: id, strategy: CUSTOM_DRIVER, ...rec })}\n`).join(''));
      const a = assessJob({ strategy: CUSTOM_DRIVER, checks: remaining, jobId: id, end: r.end, records: r.records, console: r.console, boot: r.boot });
      assessments.push(a);
      // A hang would most likely hang again, a deadline at a time; a lost target is gone: the checks after it are left not run.
      if (r.end === 'done' || r.end === 'timeout' || r.end === 'connection-lost') break;
      // The checks the stopped guest never reached run again in a fresh boot.
      const notRun = a.results.filter((res) => res.outcome.kind === 'not-run').map((res) => res.check);
      remaining = remaining.filter((c) => notRun.includes(c));
    }
  } finally {
    // What a target kept is reported as machine.leftBehind.
    await lab.close();
  }

  const symbols = await symbolizer(module.ko, module.name);
  if (symbols) for (const a of assessments) await symbolizeProblems(a.strategy.problems, symbols);
  // Each check's result from the pass that ran it.
  const results = STUDENT_CHECKS.flatMap((c) => {
    const ran = assessments.map((a) => a.results.find((r) => r.check === c)).filter((r): r is CheckResult => !!r);
    return ran.find((r) => r.outcome.kind !== 'not-run') ?? ran[ran.length - 1] ?? [];
  });
  const last = assessments[assessments.length - 1];
  const problems = assessments.flatMap((a) => a.strategy.problems);
  const items = checkItems({
    build: { ok: true, warnings: module.warnings },
    insmod: assessments[0]?.strategy.insmod,
    device: assessments.find((a) => a.inspect.device)?.inspect.device,
    rmmod: last?.strategy.rmmod,
    results,
    problems,
    vmallocLeft: last?.inspect.vmallocLeft ?? [],
    tainted: last?.inspect.tainted,
    reservedFreed: last?.inspect.reservedFreed,
    moduleName: module.name,
    pattern,
  });
  const moduleCopy = join(runDir, `${module.name}.ko`);
  if (module.ko !== moduleCopy) await copyFile(module.ko, moduleCopy);
  const report: CheckReport = {
    ...base,
    ...checksStatus(items),
    driver: { source: display, module: module.name, compiler: module.compiler, buildWarnings: module.warnings },
    machine: lab.machine(),
    items,
    results,
    kernelLog: { lines: assessments.flatMap((a) => a.kernelLog), problems },
    notes: [...notes, ...assessments.flatMap((a) => a.notes)],
    consoleTail: assessments.find((a) => a.consoleTail.length)?.consoleTail ?? [],
    artifacts: { dir: runDir, consoleLog: lab.consoleLogs()[0], resultsJson: join(runDir, 'results.json'), module: moduleCopy },
  };
  await writeFile(report.artifacts.resultsJson, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}
