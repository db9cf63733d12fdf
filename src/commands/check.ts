/**
 * `mmaplab check <dir | file.c>`: a student's own driver, as it is, through
 * the lab's checks in a guest (never the host's kernel): builds, loads, the
 * device opens, MAP_SHARED shows the pattern on every page and every page is a
 * different page, MAP_PRIVATE works or fails cleanly, a write reaches the
 * driver, rmmod, a clean kernel log, no vmalloc area left, taint. A check that
 * crashes the guest fails and the checks after it run in a fresh boot; one that
 * hangs it fails at the deadline, and the checks after it are not run.
 */
import { appendFile, copyFile, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { resolveDriverSource } from '../build/driver-source.js';
import { buildModule, type ModuleBuild } from '../build/kbuild.js';
import { deprecationNotes } from '../diagnose/api-changes.js';
import { symbolizeProblems, symbolizer } from '../build/symbolize.js';
import { buildTestProgram } from '../build/userspace.js';
import { assessJob, type Assessment } from '../diagnose/assess.js';
import { CUSTOM_DRIVER } from '../diagnose/expectations.js';
import { checkItems, checksStatus } from '../diagnose/verdicts.js';
import type { CheckName } from '../guest/checks.js';
import { buildInitramfs } from '../guest/initramfs.js';
import { jobPayload, labJob } from '../guest/job.js';
import { kernelPgReservedBit } from '../kernel/page-flags.js';
import { SCHEMA_VERSION, type CheckReport, type CheckResult } from '../report/model.js';

export type { CheckReport } from '../report/model.js';
import { isMmaplabError } from '../util/errors.js';
import { NO_LIMIT } from '../util/limiter.js';
import { cacheRoot, projectPaths } from '../util/paths.js';
import { requireTool } from '../util/tools.js';
import { VERSION } from '../util/version.js';
import { chooseAccel } from '../vm/accel.js';
import type { GuestVm } from '../vm/guest-vm.js';
import { qemuInfo } from '../vm/qemu.js';
import { acquireFor, bootGuest, buildArchive, GuestBoots, kvmProbe, makeRunDir, type GuestOptions } from './session.js';

export interface CheckOptions extends GuestOptions {
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
  const qemu = await qemuInfo();
  for (const tool of ['gcc', 'make']) requireTool(tool);
  const display = relative(process.cwd(), opts.source) || '.';
  const pattern = `0x${opts.pattern.toString(16).padStart(8, '0')}`;

  const kernel = await acquireFor(opts, cacheDir, progress);
  const kernelInfo = { spec: kernel.spec, release: kernel.release, packageVersion: kernel.packageVersion, flavour: kernel.flavour };
  const base = { schemaVersion: SCHEMA_VERSION as typeof SCHEMA_VERSION, tool: { name: 'mmaplab' as const, version: VERSION }, command: 'check' as const, kernel: kernelInfo };

  progress('build', `building ${display} for ${kernel.release}`);
  const [built, program, initramfs] = await Promise.all([
    buildModule({ source: opts.source, kernel, cacheDir, logDir: runDir, archive: buildArchive(opts), onProgress: (m) => progress('build', m) }).catch((e: unknown) => e),
    buildTestProgram(join(projectPaths.userspace, 'mmap-test.c'), cacheDir),
    buildInitramfs(kernel, cacheDir),
  ]);
  if (!(built && typeof built === 'object' && 'ko' in built)) {
    // A driver that does not compile is the first failed check, not an infrastructure failure.
    if (!isMmaplabError(built) || built.kind !== 'build') throw built;
    const items = checkItems({
      build: { ok: false, message: built.message, diagnostics: built.locations.map((l) => ({ ...l })) },
      results: [], problems: [], vmallocLeft: [], tainted: undefined, moduleName: '', pattern,
    });
    const report: CheckReport = {
      ...base, ...checksStatus(items),
      driver: { source: display, module: undefined, compiler: undefined, buildWarnings: [] },
      machine: undefined, items, results: [], kernelLog: { lines: [], problems: [] }, notes: [], consoleTail: [],
      artifacts: { dir: runDir, consoleLog: undefined, resultsJson: join(runDir, 'results.json'), module: undefined },
    };
    await writeFile(report.artifacts.resultsJson, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  }
  const module = built as ModuleBuild;

  const accel = await chooseAccel({ requested: opts.accel, cacheDir, qemuVersion: qemu.version, probe: kvmProbe(qemu, kernel, initramfs.path, runDir, opts.memoryMb) });
  const pgReserved = await kernelPgReservedBit(kernel);
  // What builds today but is on its way out on this kernel (.mmap from 6.17).
  const src = await resolveDriverSource(opts.source);
  const texts = await Promise.all(src.files.filter((f) => /\.[ch]$/.test(f)).map((f) => readFile(join(src.root, f), 'utf8')));
  const notes: string[] = deprecationNotes(texts, kernel.release);
  const assessments: Assessment[] = [];
  let remaining = [...STUDENT_CHECKS];
  let vm: GuestVm | undefined;
  const guests = new GuestBoots(
    (consoleLog) => bootGuest(qemu, accel.accel, kernel, initramfs.path, opts, notes, consoleLog),
    runDir,
    (after) => progress('boot', `booting ${kernel.release} under ${accel.accel.toUpperCase()}${after}`),
  );
  // In a matrix, guests wait for a slot; fetching and building above do not.
  await (opts.guestSlots ?? NO_LIMIT).run(async () => {
    try {
      // Each pass runs the checks left; one that crashes or hangs the guest ends the pass.
      for (let id = 1; remaining.length > 0 && id <= STUDENT_CHECKS.length; id++) {
        vm ??= await guests.boot();
        progress('job', `${module.name}: ${remaining.join(', ')}`);
        const job = {
          ...labJob({ id, strategy: CUSTOM_DRIVER, modulePath: module.guestKo, moduleName: module.name, moduleParams: [], testProgram: program.path, checks: remaining, pages: opts.pages }),
          deviceName: '',
          device: opts.device ?? '',
          pattern: opts.pattern,
          inspect: true,
          testFlags: ['--no-index', '--pfns'],
          ...(pgReserved === undefined ? {} : { pgReservedBit: pgReserved }),
        };
        const end = await vm.runJob(job.id, await jobPayload(job, { inGuest: vm.filesInGuest }), opts.timeoutS * 1000);
        await appendFile(join(runDir, 'records.jsonl'), end.records.map((r) => `${JSON.stringify({ job: id, strategy: CUSTOM_DRIVER, ...r })}\n`).join(''));
        const a = assessJob({ strategy: CUSTOM_DRIVER, checks: remaining, jobId: id, end: end.kind, records: end.records, console: vm.console, boot: guests.boots });
        assessments.push(a);
        if (end.kind === 'done') break;
        await vm.kill();
        vm = undefined;
        // A hang would most likely hang again, a deadline at a time: the checks after it are left not run.
        if (end.kind === 'timeout') break;
        // The checks the stopped guest never reached run again in a fresh boot.
        const notRun = a.results.filter((r) => r.outcome.kind === 'not-run').map((r) => r.check);
        remaining = remaining.filter((c) => notRun.includes(c));
      }
    } finally {
      if (vm) await vm.powerOff(10_000);
    }
  });

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
  await copyFile(module.ko, moduleCopy);
  const report: CheckReport = {
    ...base,
    ...checksStatus(items),
    driver: { source: display, module: module.name, compiler: module.compiler, buildWarnings: module.warnings },
    machine: { accel: accel.accel, accelReason: accel.reason, qemu: qemu.version, boots: guests.boots, bootAttempts: guests.attempts, bootImage: guests.first?.image ?? 'bzimage' },
    items,
    results,
    kernelLog: { lines: assessments.flatMap((a) => a.kernelLog), problems },
    notes: [...notes, ...assessments.flatMap((a) => a.notes)],
    consoleTail: assessments.find((a) => a.consoleTail.length)?.consoleTail ?? [],
    artifacts: { dir: runDir, consoleLog: guests.consoleLogs[0], resultsJson: join(runDir, 'results.json'), module: moduleCopy },
  };
  await writeFile(report.artifacts.resultsJson, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}
