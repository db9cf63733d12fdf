/**
 * `mmaplab check --watch <driver>`: the student's inner loop. The lab is set
 * up once (kernel, machine); the first check runs as `check` does; then on
 * every save in the driver's folder the driver is rebuilt (confined as ever)
 * and checked again in a guest restored ahead and waiting, and each check is
 * handed on with what changed since the last. One session run directory holds
 * every guest's console and a check-<n>/ folder per check; its results.json is
 * the latest check's. Returns data through `on`; never prints.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stat } from 'node:fs/promises';
import { knownVerdicts, verdictChanges, type VerdictChange } from '../diagnose/changes.js';
import { driverSourceOrRefused, resolveDriverSource } from '../kbuild/driver-source.js';
import { choosePattern } from '../kbuild/lab-pattern.js';
import { setUpWatchLab, type ModuleOutcome, type SetupOptions, type WatchLab } from '../machines/setup.js';
import type { CheckItem, CheckReport, RunReport } from '../model/report.js';
import { cellChanges, type CellChange } from '../diagnose/changes.js';
import { runBuilt, type RunOptions } from './run.js';
import { RunDir } from '../rundir/run-dir.js';
import { MmaplabError } from '../util/errors.js';
import { errorExitCode } from '../model/exit.js';
import { watchFolder, type FolderWatch } from '../util/file-watch.js';
import { Hasher } from '../util/fsx.js';
import { cacheRoot } from '../util/paths.js';
import { checkBuilt, checkInputs, failedBuildReport, type CheckOptions } from './check.js';
import { STUDENT_CHECKS } from '../diagnose/verdicts.js';

export type WatchEvent =
  /** A check done: the first one (first: true), or one after a save. */
  | {
      kind: 'checked';
      n: number;
      report: CheckReport;
      /** The checks whose verdict turned since the last (the first check: its failures). */
      changes: VerdictChange[];
      /** The files whose save started it (none for the first). */
      saved: string[];
      /** From the last save to the verdict, and the build's and the jobs' part of it. */
      timings: { sinceSaveMs: number; buildMs: number; checkMs: number };
    }
  /** Files were saved and the sources changed: the rebuild and the check start. */
  | { kind: 'started'; n: number; saved: string[]; what: 'check' | 'run' }
  /** Files were saved, but the driver's sources are as they were checked last. */
  | { kind: 'unchanged'; saved: string[] };

export interface WatchOptions extends CheckOptions {
  /** How long saves must stop before a check starts (an editor's save is several events). */
  quietMs?: number;
  /** Stop watching: the check under way finishes, nothing is left running. */
  signal: AbortSignal;
}

/** What a check is made of, as one hash: the driver's sources and the pattern they and the lab's test program say (a save that changes neither is not checked again). */
async function sourcesHash(source: string, override?: number): Promise<string> {
  const src = await resolveDriverSource(source).catch(() => undefined);
  if (!src) return 'unreadable';
  const h = new Hasher();
  for (const f of src.files) h.add(f, await readFile(join(src.root, f)).catch(() => ''));
  const pattern = await choosePattern({ source, driverFiles: src.files.map((f) => join(src.root, f)), override }).catch(() => undefined);
  h.add('pattern', JSON.stringify(pattern ?? null));
  return h.digest();
}

/** The folder to watch: the submission's root (the lab layout's test/ beside the driver included). */
async function folderOf(source: string): Promise<string> {
  // A path that does not exist is the user's mistake (usage), as for check; a refused submission is watched where it is.
  const src = await driverSourceOrRefused(source);
  if (src) return src.root;
  return (await stat(source)).isFile() ? dirname(source) : source;
}

/** One check of the driver as its build came out, on the lab kept for the next. */
async function checkOnce(opts: WatchOptions, lab: WatchLab, session: RunDir, n: number, built: ModuleOutcome): Promise<CheckReport> {
  const runDir = await RunDir.create({ outputDir: session.below(`check-${n}`) });
  // Jobs are numbered apart across the session: every guest's console is in the session's console.log.
  const inputs = await checkInputs(opts, runDir, (n - 1) * STUDENT_CHECKS.length + 1);
  const report =
    built.kind === 'build-failed'
      ? await failedBuildReport(lab, built.error, inputs)
      : await checkBuilt(opts, inputs, { ...lab, module: built.module, buildMs: built.buildMs }, async () => lab.machine.prepare());
  await session.writeResults(report);
  return report;
}

/** What the loop hands on of each build and its jobs. */
interface LoopEvent<R> {
  n: number;
  result: R;
  saved: string[];
  timings: WatchTimings;
}

type WatchTimings = { sinceSaveMs: number; buildMs: number; checkMs: number };

/**
 * The loop both watches share: the lab set up once, the first build, then one
 * build and run of it per save that changed the sources, until stopped; the
 * machine is closed whatever happens.
 */
async function watchLoop<R>(
  opts: SetupOptions & Pick<WatchOptions, 'source' | 'quietMs' | 'signal'> & { pattern?: number | undefined },
  once: (n: number, lab: WatchLab, session: RunDir, built: ModuleOutcome) => Promise<R>,
  on: (e: LoopEvent<R>) => void,
  note: (e: Extract<WatchEvent, { kind: 'started' | 'unchanged' }>) => void,
  what: 'check' | 'run',
): Promise<void> {
  if (opts.target) throw new MmaplabError('usage', '--watch runs in a guest kept waiting on this machine, not on an SSH target: leave out --target');
  const session = await RunDir.create(opts);
  // Watching starts before the first build: a save made while it runs is the first change.
  const watcher: FolderWatch = await watchFolder(await folderOf(opts.source), { quietMs: opts.quietMs ?? 100 });
  const stopped = new Promise<undefined>((resolve) => opts.signal.addEventListener('abort', () => resolve(undefined), { once: true }));
  let lab: WatchLab | undefined;
  const t0 = performance.now();
  try {
    let checkedHash = await sourcesHash(opts.source, opts.pattern);
    lab = await setUpWatchLab({ ...opts, shareGuests: false }, opts.source, session, opts.cacheDir ?? cacheRoot(), []);
    const tCheck = performance.now();
    const first = await once(1, lab, session, lab.first);
    on({ n: 1, result: first, saved: [], timings: { sinceSaveMs: performance.now() - t0, buildMs: lab.first.kind === 'built' ? lab.first.buildMs : 0, checkMs: performance.now() - tCheck } });
    for (let n = 2; !opts.signal.aborted; ) {
      const saved = await Promise.race([watcher.next(), stopped]);
      if (!saved || opts.signal.aborted) break;
      const savedAt = performance.now();
      const hash = await sourcesHash(opts.source, opts.pattern);
      if (hash === checkedHash) {
        note({ kind: 'unchanged', saved });
        continue;
      }
      checkedHash = hash;
      note({ kind: 'started', n, saved, what });
      const built = await lab.rebuild();
      const tCheck = performance.now();
      const result = await once(n, lab, session, built);
      on({ n, result, saved, timings: { sinceSaveMs: performance.now() - savedAt, buildMs: tCheck - savedAt, checkMs: performance.now() - tCheck } });
      n++;
    }
  } finally {
    await watcher.close();
    await lab?.dispose();
  }
}

export async function watchCheck(opts: WatchOptions, on: (e: WatchEvent) => void): Promise<CheckReport | undefined> {
  let known: CheckItem[] | undefined;
  let last: CheckReport | undefined;
  await watchLoop(
    opts,
    (n, lab, session, built) => checkOnce(opts, lab, session, n, built),
    ({ n, result: report, saved, timings }) => {
      on({ kind: 'checked', n, report, changes: verdictChanges(known, report), saved, timings });
      known = knownVerdicts(known ?? [], report);
      last = report;
    },
    on,
    'check',
  );
  return last;
}

/** run --watch: the grid of a driver of the user's own, or the compile errors that stopped it. */
export type RunWatchResult = { kind: 'ran'; report: RunReport } | { kind: 'build-failed'; error: MmaplabError };

export type RunWatchEvent =
  | { kind: 'ran'; n: number; result: RunWatchResult; changes: CellChange[]; saved: string[]; timings: WatchTimings }
  | Extract<WatchEvent, { kind: 'started' | 'unchanged' }>;

/** run --watch ends with the last run's exit status; a driver that did not build last is the error a plain run would end with. */
export async function watchRun(opts: RunOptions & Pick<WatchOptions, 'quietMs' | 'signal'>, on: (e: RunWatchEvent) => void): Promise<{ exitCode: number } | undefined> {
  let known: RunReport | undefined;
  let last: RunWatchResult | undefined;
  await watchLoop(
    { ...opts, source: opts.moduleDir },
    async (n, lab, session, built): Promise<RunWatchResult> => {
      if (built.kind === 'build-failed') return built;
      const runDir = await RunDir.create({ outputDir: session.below(`run-${n}`) });
      // Jobs are numbered apart across the session: every guest's console is in the session's console.log.
      const report = await runBuilt(opts, { ...lab, module: built.module, buildMs: built.buildMs }, { runDir, notes: [], t0: performance.now(), firstJob: (n - 1) * 100 + 1 }, async () => lab.machine.prepare());
      await session.writeResults(report);
      return { kind: 'ran', report };
    },
    ({ n, result, saved, timings }) => {
      on({ kind: 'ran', n, result, changes: result.kind === 'ran' ? cellChanges(known, result.report) : [], saved, timings });
      if (result.kind === 'ran') known = result.report;
      last = result;
    },
    on,
    'run',
  );
  return last && { exitCode: last.kind === 'ran' ? last.report.exitCode : errorExitCode(last.error.kind) };
}
