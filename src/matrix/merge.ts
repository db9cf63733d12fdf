/**
 * `mmaplab merge`: the results of separate jobs (one per kernel, as a CI
 * matrix runs them) into one matrix report. Each input is a run or check
 * report, or a matrix (itself possibly a merge); a kernel seen twice is an error.
 */
import { readFile } from 'node:fs/promises';
import type { KernelEntry, MatrixReport } from '../model/report.js';
import { parseResults, validateResults, type SavedResults } from '../rundir/run-dir.js';
import { MmaplabError } from '../util/errors.js';
import { assembleMatrix } from './model.js';
import { splitEntry } from '../kernel/spec.js';

function entriesOf(saved: SavedResults): KernelEntry[] {
  switch (saved.kind) {
    case 'matrix':
      return saved.report.kernels;
    case 'run':
      return [{ spec: saved.report.kernel.spec, kind: 'run', report: saved.report }];
    case 'check':
      return [{ spec: saved.report.kernel.spec, kind: 'check', report: saved.report }];
  }
}

/**
 * An entry's architecture: its report's (amd64 in results from before
 * mmaplab knew others), its name's (<spec>/<arch>), or, for a kernel that
 * could not be tried, that of the other entries of its own file (one CI job,
 * one architecture).
 */
function archOf(e: KernelEntry, sameFile: readonly KernelEntry[]): string | undefined {
  if (e.kind !== 'error') return e.report.kernel.arch ?? 'amd64';
  const named = splitEntry(e.spec).arch;
  if (named) return named;
  const others = new Set(sameFile.filter((x) => x.kind !== 'error').map((x) => archOf(x, [])));
  return others.size === 1 ? [...others][0] : undefined;
}

/**
 * Entries of several architectures (separate CI jobs per arch, each naming its
 * kernel debian:bookworm) are named <spec>/<arch>, as one matrix of them names
 * them; an entry named so already keeps its name.
 */
function namedByArch(entries: ReadonlyArray<{ entry: KernelEntry; path: string }>): Array<{ entry: KernelEntry; path: string }> {
  const arched = entries.map((x) => ({ ...x, arch: archOf(x.entry, entries.filter((y) => y.path === x.path).map((y) => y.entry)) }));
  if (new Set(arched.map((x) => x.arch).filter((a) => a !== undefined)).size < 2) return [...entries];
  return arched.map(({ entry, path, arch }) => (arch && splitEntry(entry.spec).arch === undefined ? { path, entry: { ...entry, spec: `${entry.spec}/${arch}` } } : { path, entry }));
}

export function mergeDocuments(docs: ReadonlyArray<{ path: string; doc: unknown }>, out: { dir: string; resultsJson: string }): MatrixReport {
  const entries: Array<{ entry: KernelEntry; path: string }> = [];
  let command: 'run' | 'check' | undefined;
  for (const { path, doc } of docs) {
    const saved = validateResults(doc, path);
    const c = saved.report.command;
    if (command && c !== command) throw new MmaplabError('usage', `${path} holds '${c}' results, the files before it '${command}' results`, { hint: 'merge run results and check results separately' });
    command = c;
    for (const entry of entriesOf(saved)) entries.push({ entry, path });
  }
  if (!command) throw new MmaplabError('usage', 'nothing to merge', { hint: 'give one or more results.json files' });
  const kernels: KernelEntry[] = [];
  const from = new Map<string, string>();
  for (const { entry, path } of namedByArch(entries)) {
    const seen = from.get(entry.spec);
    if (seen) throw new MmaplabError('usage', `kernel ${entry.spec} is in both ${seen} and ${path}`, { hint: 'give each kernel once' });
    from.set(entry.spec, path);
    kernels.push(entry);
  }
  return assembleMatrix({ command, kernels, dir: out.dir, resultsJson: out.resultsJson, totalMs: 0 });
}

export async function mergeFiles(paths: readonly string[], out: { dir: string; resultsJson: string }): Promise<MatrixReport> {
  const docs = [];
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      throw new MmaplabError('usage', `cannot read ${path}`);
    }
    docs.push({ path, doc: parseResults(text, path).report as unknown });
  }
  return mergeDocuments(docs, out);
}
