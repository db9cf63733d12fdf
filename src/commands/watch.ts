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
import { resolveDriverSource } from '../kbuild/driver-source.js';
import { setUpWatchLab, type ModuleOutcome, type WatchLab } from '../machines/setup.js';
import type { CheckItem, CheckReport } from '../model/report.js';
import { RunDir } from '../rundir/run-dir.js';
import { MmaplabError } from '../util/errors.js';
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
  | { kind: 'started'; n: number; saved: string[] }
  /** Files were saved, but the driver's sources are as they were checked last. */
  | { kind: 'unchanged'; saved: string[] };

export interface WatchOptions extends CheckOptions {
  /** How long saves must stop before a check starts (an editor's save is several events). */
  quietMs?: number;
  /** Stop watching: the check under way finishes, nothing is left running. */
  signal: AbortSignal;
}

/** The driver's sources as they are now, as one hash: a save that changed nothing is not checked again. */
async function sourcesHash(source: string): Promise<string> {
  const src = await resolveDriverSource(source).catch(() => undefined);
  if (!src) return 'unreadable';
  const h = new Hasher();
  for (const f of src.files) h.add(f, await readFile(join(src.root, f)).catch(() => ''));
  return h.digest();
}

/** The folder to watch: the submission's root (the lab layout's test/ beside the driver included). */
async function folderOf(source: string): Promise<string> {
  const src = await resolveDriverSource(source).catch(() => undefined);
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

export async function watchCheck(opts: WatchOptions, on: (e: WatchEvent) => void): Promise<CheckReport | undefined> {
  if (opts.target) throw new MmaplabError('usage', '--watch checks in a guest kept waiting on this machine, not on an SSH target: leave out --target');
  const session = await RunDir.create(opts);
  const folder = await folderOf(opts.source);
  // Watching starts before the first build: a save made while it runs is the first change.
  const watcher: FolderWatch = await watchFolder(folder, { quietMs: opts.quietMs ?? 150 });
  const stopped = new Promise<undefined>((resolve) => opts.signal.addEventListener('abort', () => resolve(undefined), { once: true }));
  let lab: WatchLab | undefined;
  let last: CheckReport | undefined;
  try {
    let checkedHash = await sourcesHash(opts.source);
    lab = await setUpWatchLab({ ...opts, shareGuests: false }, opts.source, session, opts.cacheDir ?? cacheRoot(), []);
    let known: CheckItem[] | undefined;
    const announce = (n: number, report: CheckReport, saved: string[], t: { savedAt: number; buildMs: number; checkMs: number }) => {
      on({ kind: 'checked', n, report, changes: verdictChanges(known, report), saved, timings: { sinceSaveMs: performance.now() - t.savedAt, buildMs: t.buildMs, checkMs: t.checkMs } });
      known = knownVerdicts(known ?? [], report);
      last = report;
    };
    const t0 = performance.now();
    const first = await checkOnce(opts, lab, session, 1, lab.first);
    announce(1, first, [], { savedAt: t0, buildMs: lab.first.kind === 'built' ? lab.first.buildMs : 0, checkMs: performance.now() - t0 });
    for (let n = 2; !opts.signal.aborted; ) {
      const saved = await Promise.race([watcher.next(), stopped]);
      if (!saved || opts.signal.aborted) break;
      const savedAt = performance.now();
      const hash = await sourcesHash(opts.source);
      if (hash === checkedHash) {
        on({ kind: 'unchanged', saved });
        continue;
      }
      checkedHash = hash;
      on({ kind: 'started', n, saved });
      const built = await lab.rebuild();
      const tCheck = performance.now();
      const report = await checkOnce(opts, lab, session, n, built);
      announce(n, report, saved, { savedAt, buildMs: built.kind === 'built' ? built.buildMs : tCheck - savedAt, checkMs: performance.now() - tCheck });
      n++;
    }
  } finally {
    await watcher.close();
    await lab?.machine.close();
  }
  return last;
}
