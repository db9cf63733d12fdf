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

const archOf = (e: KernelEntry): string | undefined => (e.kind === 'error' ? undefined : e.report.kernel.arch);

/**
 * Entries of several architectures (separate CI jobs per arch, each naming its
 * kernel debian:bookworm) are named <spec>/<arch>, as one matrix of them names
 * them; an entry named so already keeps its name.
 */
function namedByArch(entries: ReadonlyArray<{ entry: KernelEntry; path: string }>): Array<{ entry: KernelEntry; path: string }> {
  const arches = new Set(entries.map((x) => archOf(x.entry)).filter((a) => a !== undefined));
  if (arches.size < 2) return [...entries];
  return entries.map((x) => {
    const arch = archOf(x.entry);
    return arch && splitEntry(x.entry.spec).arch === undefined ? { ...x, entry: { ...x.entry, spec: `${x.entry.spec}/${arch}` } } : x;
  });
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
