/**
 * The run directory: the one owner of what a run keeps. It makes the
 * directory, names its files, appends the job records (records.jsonl, each
 * record tagged with its job and strategy), writes results.json, and reads
 * them back validated, tagged by the command that wrote them: `run`, `check`
 * or a matrix. Machines write their consoles to the paths it names.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseRecordLine, type GuestRecord } from '../guest/protocol.js';
import type { Flood, StrategyRun } from '../model/outcome.js';
import type { CheckReport, MatrixReport, RunReport } from '../model/report.js';
import type { GradeReport } from '../model/grade.js';
import { SCHEMA_VERSION } from '../model/report.js';
import { MmaplabError, usageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import { stateRoot } from '../util/paths.js';

/** What results.json holds, tagged by what wrote it. */
export type SavedResults = { kind: 'run'; report: RunReport } | { kind: 'check'; report: CheckReport } | { kind: 'matrix'; report: MatrixReport };

/** How a job ended as its machine saw it, which boot ran it, for which command, and whether it had a console: kept after its records. */
export interface JobEnding {
  end: StrategyRun['end'];
  boot: number;
  command: 'run' | 'check';
  /** False for a job its machine never began (an SSH target lost or hung before it): no console is its own. */
  console: boolean;
  /** end 'flooded': how much the guest printed before it was stopped. */
  flood?: Flood;
}

/** One job's records as records.jsonl keeps them (ending: absent in runs of earlier versions). */
export interface SavedJob {
  id: number;
  strategy: string;
  records: GuestRecord[];
  ending?: JobEnding;
}

/** The line records.jsonl ends a job with: written by the host, not a guest record. */
const ENDED = 'mmaplab-job-ended';

export class RunDir {
  private constructor(readonly path: string) {}

  /** --output-dir, or a fresh directory under the state directory's runs/. */
  static async create(opts: { outputDir?: string | undefined; stateDir?: string | undefined }): Promise<RunDir> {
    if (opts.outputDir) {
      const dir = resolve(opts.outputDir);
      await mkdir(dir, { recursive: true });
      return new RunDir(dir);
    }
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
    const dir = join(opts.stateDir ?? stateRoot(), 'runs', `${stamp}-${randomBytes(3).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    return new RunDir(dir);
  }

  /** A directory a run wrote earlier (for reading). */
  static at(path: string): RunDir {
    return new RunDir(resolve(path));
  }

  /** Every guest's console (or a target's kernel log), in order. */
  get consoleLog(): string {
    return this.file('console.log');
  }

  get resultsJson(): string {
    return this.file('results.json');
  }

  get recordsJsonl(): string {
    return this.file('records.jsonl');
  }

  /** mmaplab debug's gdb script: the symbols, the breakpoint, then the connection. */
  get gdbScript(): string {
    return this.file('debug.gdb');
  }

  /** The same without the connection (what an IDE sources before it connects itself). */
  get gdbSymbolsScript(): string {
    return this.file('debug-symbols.gdb');
  }

  /** The VS Code launch.json snippet of a debug session. */
  get launchJson(): string {
    return this.file('launch.json');
  }

  /** Where gdb's mmaplab-map asks for the mapping test. */
  get mapSocket(): string {
    return this.file('gdb-map.sock');
  }

  /** Any other artefact: a later boot's console, a build log, the module. Names may come from a driver: none leaves the directory. */
  file(name: string): string {
    if (!/^[\w.+-]{1,128}$/.test(name) || name === '.' || name === '..') throw new MmaplabError('internal', `not a name for a file in the run directory: ${JSON.stringify(name)}`);
    return join(this.path, name);
  }

  /** A path below the directory (a grade's submissions/<slug>), every part a name file() accepts. */
  below(...parts: string[]): string {
    for (const p of parts) this.file(p);
    return join(this.path, ...parts);
  }

  /** A job's records and how it ended, as it finishes, so a run killed later keeps the jobs done before. */
  async appendRecords(job: { id: number; strategy: string }, records: readonly GuestRecord[], ending: JobEnding): Promise<void> {
    const tag = { job: job.id, strategy: job.strategy };
    const lines = [...records.map((r) => ({ ...tag, ...r })), { ...tag, t: ENDED, ...ending }];
    await appendFile(this.recordsJsonl, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  }

  /**
   * The console of the guest that ran a job: its part of console.log where
   * guests were restored (each under a heading naming its job), else the
   * console of the boot that ran it (console.log, then console-bootN.log).
   */
  async consoleOf(job: { id: number; boot: number }, consoleName = 'console.log'): Promise<string> {
    const text = (await this.read(consoleName)) ?? '';
    const parts = text.split(new RegExp(`^(?=${HEADING})`, 'm'));
    const mine = parts.find((p) => p.startsWith(HEADING) && headingNames(p, job.id));
    if (mine) return mine;
    if (job.boot === 1 || parts.length > 1) return text;
    return (await this.read(`console-boot${job.boot}.log`)) ?? '';
  }

  /**
   * console.log from the consoles of several guests, in order, each under its
   * heading; `remove` are the files that then go. Written whole or not at all:
   * an interrupted CLI exits as soon as this settles.
   */
  async foldConsoles(parts: ReadonlyArray<{ label: string; path: string }>, remove: readonly string[]): Promise<void> {
    let text = '';
    for (const p of parts) {
      const body = (await readIfExists(p.path).catch(() => undefined)) ?? '';
      text += `${HEADING}${p.label} =====\n${body}${body.endsWith('\n') || body === '' ? '' : '\n'}`;
    }
    await writeFileAtomic(this.consoleLog, text);
    await Promise.all(remove.map((p) => rm(p, { force: true })));
  }

  /** Written whole or not at all, so a run killed meanwhile never leaves half a document. */
  async writeResults(doc: RunReport | CheckReport | MatrixReport | GradeReport): Promise<void> {
    await writeFileAtomic(this.resultsJson, `${JSON.stringify(doc, null, 2)}\n`);
  }

  /** results.json, validated; undefined when the run never wrote it (killed, or still running). */
  async readResults(): Promise<SavedResults | undefined> {
    const text = await readIfExists(this.resultsJson);
    return text === undefined ? undefined : parseResults(text, this.resultsJson);
  }

  /** records.jsonl split into jobs; undefined when there is none. */
  async readJobs(): Promise<SavedJob[] | undefined> {
    const text = await readIfExists(this.recordsJsonl);
    return text === undefined ? undefined : splitJobs(text);
  }

  /** A file of the directory as text; undefined when it is not there. */
  read(name: string): Promise<string | undefined> {
    return readIfExists(this.file(name));
  }

}

/** What starts each guest's part of console.log. */
const HEADING = '===== mmaplab: ';

/** The label of a console part that ran a job: consoleOf finds the job's part by it. */
export function jobConsoleLabel(jobs: ReadonlyArray<{ id: number; strategy: string }>, where: string): string {
  return `${jobs.length === 1 ? 'job' : 'jobs'} ${jobs.map((j) => `${j.id} (${j.strategy})`).join(', ')}, ${where}`;
}

/** Whether a console part's heading names the job (a guest that served several names them all). */
function headingNames(part: string, id: number): boolean {
  const heading = part.slice(HEADING.length, part.indexOf('\n') >>> 0);
  const m = /^jobs? (.*?), in /.exec(heading);
  return !!m && new RegExp(`(^|, )${id} \\(`).test(m[1]!);
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export function splitJobs(text: string): SavedJob[] {
  const jobs: SavedJob[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let tagged: { job?: unknown; strategy?: unknown };
    try {
      tagged = JSON.parse(line) as { job?: unknown; strategy?: unknown };
    } catch {
      continue;
    }
    const { job, strategy, ...rest } = tagged;
    if (typeof job !== 'number' || typeof strategy !== 'string') continue;
    let j = jobs.find((x) => x.id === job);
    if (!j) jobs.push((j = { id: job, strategy, records: [] }));
    const r = rest as { t?: unknown; end?: unknown; boot?: unknown };
    if (r.t === ENDED) {
      const { command, console, flood } = rest as { command?: unknown; console?: unknown; flood?: Partial<Flood> };
      if (typeof r.end === 'string' && ENDS.includes(r.end as JobEnding['end']) && typeof r.boot === 'number' && (command === 'run' || command === 'check')) {
        const f = typeof flood?.lines === 'number' && typeof flood.seconds === 'number' ? { flood: { lines: flood.lines, seconds: flood.seconds } } : {};
        j.ending = { end: r.end as JobEnding['end'], boot: r.boot, command, console: console !== false, ...f };
      }
      continue;
    }
    j.records.push(parseRecordLine(JSON.stringify(rest)));
  }
  return jobs;
}

const ENDS: readonly JobEnding['end'][] = ['done', 'guest-died', 'timeout', 'stalled', 'flooded', 'connection-lost'];

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The fields each document must have for mmaplab to read it: objects and arrays, by name. */
const REQUIRED: Record<SavedResults['kind'], { objects: string[]; arrays: string[] }> = {
  run: { objects: ['kernel', 'machine', 'module', 'kernelLog', 'artifacts', 'timings'], arrays: ['strategies', 'checks', 'results', 'notes', 'consoleTail'] },
  check: { objects: ['driver', 'kernel', 'kernelLog', 'artifacts'], arrays: ['items', 'results', 'notes', 'consoleTail'] },
  matrix: { objects: ['artifacts', 'timings'], arrays: ['kernels', 'differences'] },
};

/**
 * A document mmaplab wrote (results.json, `--json`), checked before it is
 * trusted: mmaplab's, a schema this version reads, and the fields its kind
 * needs. Anything else is a usage error naming the file and what is wrong.
 */
export function parseResults(text: string, path: string): SavedResults {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw usageError(`${path} is not JSON`, 'was the run killed while writing it? mmaplab parse reads its directory instead');
  }
  return validateResults(doc, path);
}

export function validateResults(doc: unknown, path: string): SavedResults {
  const bad = (why: string) => new MmaplabError('usage', `${path} is not an mmaplab result: ${why}`, { hint: 'give a results.json that mmaplab run or check wrote (or --json printed)' });
  if (!isObject(doc) || !isObject(doc.tool) || doc.tool.name !== 'mmaplab' || typeof doc.schemaVersion !== 'number') throw bad('no tool/schemaVersion');
  if (doc.schemaVersion > SCHEMA_VERSION) {
    throw new MmaplabError('usage', `${path} has schemaVersion ${doc.schemaVersion}; this mmaplab reads up to ${SCHEMA_VERSION}`, { hint: 'read it with the mmaplab version that wrote it' });
  }
  const kind = doc.kind === 'matrix' ? 'matrix' : doc.command === 'run' || doc.command === 'check' ? doc.command : undefined;
  if (!kind) throw bad(`neither a run, a check nor a matrix (command ${JSON.stringify(doc.command)})`);
  const need = REQUIRED[kind];
  const missing = [...need.objects.filter((f) => !isObject(doc[f])), ...need.arrays.filter((f) => !Array.isArray(doc[f]))];
  // A check whose driver did not build ran on no machine; every other document names one.
  if (kind === 'check' && doc.machine !== undefined && !isObject(doc.machine)) missing.push('machine');
  if (missing.length) throw bad(`a ${kind} document without ${missing.join(', ')}`);
  if (kind === 'matrix') {
    if (doc.command !== 'run' && doc.command !== 'check') throw bad('a matrix of neither run nor check results');
    const broken = (doc.kernels as unknown[]).findIndex((k) => !isObject(k) || typeof k.spec !== 'string' || !['run', 'check', 'error'].includes(String(k.kind)));
    if (broken >= 0) throw bad(`kernel entry ${broken + 1} has no spec or kind`);
    // Each kernel's own report is held to the same rules.
    for (const k of doc.kernels as Json[]) {
      if (k.kind === 'error') continue;
      const inner = validateResults(k.report, `${path} (kernel ${String(k.spec)})`);
      if (inner.kind !== k.kind) throw bad(`kernel ${String(k.spec)} is marked ${String(k.kind)} but holds a ${inner.kind} report`);
    }
    return { kind, report: doc as unknown as MatrixReport };
  }
  return kind === 'run' ? { kind, report: doc as unknown as RunReport } : { kind, report: doc as unknown as CheckReport };
}
