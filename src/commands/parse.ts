/**
 * `mmaplab parse <run dir | console.log>`: re-read what a run kept, with the
 * same parsers, and return the same report, so a saved run (a student's, a CI
 * artefact) can be looked at again without a guest.
 *
 * A run directory (or a console.log beside records.jsonl) gives back the full
 * report: each job re-assessed from its records and the console of its boot;
 * results.json, when present, supplies what only the run itself knew (kernel,
 * machine, module, how each job ended). A console.log alone gives its kernel
 * problems.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { symbolizeProblems, symbolizer } from '../kbuild/symbolize.js';
import { assessJob, type Assessment } from '../diagnose/assess.js';
import { CHECK_NAMES, isCheckName, type CheckName } from '../model/checks.js';
import { parseRecordLine, type GuestRecord } from '../guest/protocol.js';
import { findProblems, parseKernelLog, reachedInit } from '../parse/kmsg.js';
import { type KernelLine, type KernelProblem } from '../model/kernel-log.js';
import { assembleReport } from '../diagnose/assemble.js';
import type { RunReport } from '../model/report.js';
import { kernelSlug } from '../kernel/spec.js';
import { assembleMatrix } from '../matrix/model.js';
import { type KernelEntry, type MatrixReport } from '../model/report.js';
import { MmaplabError } from '../util/errors.js';
import { exists } from '../util/fsx.js';

export type ParseResult =
  | { kind: 'run'; report: RunReport }
  | { kind: 'matrix'; report: MatrixReport }
  | { kind: 'console'; path: string; lines: KernelLine[]; problems: KernelProblem[]; reachedInit: boolean };

interface Job {
  id: number;
  strategy: string;
  records: GuestRecord[];
}

function splitJobs(text: string): Job[] {
  const jobs: Job[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let tagged: { job?: number; strategy?: string };
    try {
      tagged = JSON.parse(line) as { job?: number; strategy?: string };
    } catch {
      continue;
    }
    const { job, strategy, ...rest } = tagged;
    if (typeof job !== 'number' || typeof strategy !== 'string') continue;
    let j = jobs.find((x) => x.id === job);
    if (!j) jobs.push((j = { id: job, strategy, records: [] }));
    j.records.push(parseRecordLine(JSON.stringify(rest)));
  }
  return jobs;
}

/** The checks a job ran, in the order it started them. */
function checksOf(jobs: readonly Job[]): CheckName[] {
  const seen: CheckName[] = [];
  for (const j of jobs) for (const r of j.records) if (r.t === 'start' && isCheckName(r.check) && !seen.includes(r.check)) seen.push(r.check);
  return seen.length ? CHECK_NAMES.filter((c) => seen.includes(c)) : [...CHECK_NAMES];
}

async function readIfExists(path: string): Promise<string | undefined> {
  return (await exists(path)) ? readFile(path, 'utf8') : undefined;
}

export async function parseSaved(path: string): Promise<ParseResult> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new MmaplabError('usage', `${path} does not exist`);
  const dir = info.isDirectory() ? path : dirname(path);
  const recordsText = await readIfExists(join(dir, 'records.jsonl'));
  const consolePath = info.isDirectory() ? join(dir, 'console.log') : path;

  if (!recordsText && info.isDirectory()) {
    // A matrix directory: its results.json names the kernels, each kept in a directory of its own.
    const saved = await readIfExists(join(dir, 'results.json'));
    const doc = saved ? (JSON.parse(saved) as Partial<MatrixReport>) : undefined;
    if (doc?.kind === 'matrix' && Array.isArray(doc.kernels)) return { kind: 'matrix', report: await parseMatrix(dir, doc as MatrixReport) };
  }

  if (!recordsText) {
    const text = await readIfExists(consolePath);
    if (text === undefined) throw new MmaplabError('usage', `${path}: no console.log or records.jsonl to read`);
    const lines = parseKernelLog(text);
    return { kind: 'console', path: consolePath, lines, problems: findProblems(lines), reachedInit: reachedInit(text) };
  }

  const saved = (await readIfExists(join(dir, 'results.json'))) ?? undefined;
  const prior = saved ? (JSON.parse(saved) as RunReport) : undefined;
  const jobs = splitJobs(recordsText);
  if (!jobs.length) throw new MmaplabError('usage', `${join(dir, 'records.jsonl')} holds no job records`);
  const checks = prior?.checks ?? checksOf(jobs);
  const consoles = new Map<number, string>();
  const consoleOf = async (boot: number) => {
    if (!consoles.has(boot)) consoles.set(boot, (await readIfExists(join(dir, boot === 1 ? basename(consolePath) : `console-boot${boot}.log`))) ?? '');
    return consoles.get(boot)!;
  };
  const assessments: Assessment[] = [];
  for (const j of jobs) {
    const before = prior?.strategies.find((s) => s.strategy === j.strategy);
    const boot = before?.boot ?? 1;
    const end = before?.end ?? (j.records.some((r) => r.t === 'job-end') ? 'done' : 'timeout');
    assessments.push(assessJob({ strategy: j.strategy, checks, jobId: j.id, end, records: j.records, console: await consoleOf(boot), boot }));
  }
  // The run kept its module: oops frames in it can still be resolved to source lines.
  if (prior?.artifacts.module && (await exists(prior.artifacts.module))) {
    const symbols = await symbolizer(prior.artifacts.module, prior.module.name);
    if (symbols) for (const a of assessments) await symbolizeProblems(a.strategy.problems, symbols);
  }
  const unknown = 'unknown (not in the saved run)';
  const report = assembleReport({
    kernel: prior?.kernel ?? { spec: unknown, release: unknown, packageVersion: unknown, flavour: unknown },
    machine: prior?.machine ?? { accel: 'tcg', accelReason: unknown, qemu: unknown, boots: Math.max(...assessments.map((a) => a.strategy.boot)), bootAttempts: 0 },
    module: prior?.module ?? { name: 'unknown', compiler: unknown, buildCached: false, buildWarnings: [] },
    checks,
    assessments,
    notes: prior ? prior.notes.filter((n) => !assessments.some((a) => a.notes.includes(n))) : [],
    artifacts: prior?.artifacts ?? { dir, consoleLog: consolePath, resultsJson: join(dir, 'results.json'), module: '', testProgram: '' },
    timings: prior?.timings ?? { totalMs: 0, kernelMs: 0, buildMs: 0, bootMs: 0, guestReadyMs: 0, jobMs: 0 },
  });
  return { kind: 'run', report };
}

/** Each kernel's run re-read from its own directory; a check or a kernel that never ran stays as saved. */
async function parseMatrix(dir: string, saved: MatrixReport): Promise<MatrixReport> {
  const kernels: KernelEntry[] = [];
  for (const k of saved.kernels) {
    const sub = join(dir, kernelSlug(k.spec));
    if (k.kind === 'run' && (await exists(join(sub, 'records.jsonl')))) {
      const r = await parseSaved(sub);
      kernels.push(r.kind === 'run' ? { spec: k.spec, kind: 'run', report: r.report } : k);
    } else {
      kernels.push(k);
    }
  }
  return assembleMatrix({ command: saved.command, kernels, dir, resultsJson: join(dir, 'results.json'), totalMs: saved.timings.totalMs });
}
