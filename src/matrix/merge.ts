/**
 * `mmaplab merge`: the results of separate jobs (one per kernel, as a CI
 * matrix runs them) into one matrix report. Each input is a run or check
 * report, or a matrix (itself possibly a merge); a kernel seen twice is an error.
 */
import { readFile } from 'node:fs/promises';
import type { CheckReport, RunReport } from '../model/report.js';
import { MmaplabError } from '../util/errors.js';
import { assembleMatrix } from './model.js';
import { type KernelEntry, type MatrixReport } from '../model/report.js';

type Doc = RunReport | CheckReport | MatrixReport;

function entriesOf(doc: Doc): KernelEntry[] {
  if ('kind' in doc && doc.kind === 'matrix') return doc.kernels;
  const d = doc as RunReport | CheckReport;
  return d.command === 'run' ? [{ spec: d.kernel.spec, kind: 'run', report: d }] : [{ spec: d.kernel.spec, kind: 'check', report: d }];
}

export function mergeDocuments(docs: ReadonlyArray<{ path: string; doc: unknown }>, out: { dir: string; resultsJson: string }): MatrixReport {
  const kernels: KernelEntry[] = [];
  const from = new Map<string, string>();
  let command: 'run' | 'check' | undefined;
  for (const { path, doc } of docs) {
    const d = doc as Partial<Doc> | null;
    if (!d || typeof d !== 'object' || d.tool?.name !== 'mmaplab' || typeof d.schemaVersion !== 'number') {
      throw new MmaplabError('usage', `${path} is not an mmaplab result (no tool/schemaVersion)`, { hint: 'give the files that `mmaplab run --json` or `check --json` wrote' });
    }
    if (d.schemaVersion > 2) throw new MmaplabError('usage', `${path} has schemaVersion ${d.schemaVersion}; this mmaplab reads up to 2`, { hint: 'merge with the mmaplab version that wrote it' });
    const c = (d as Doc).command;
    if (command && c !== command) throw new MmaplabError('usage', `${path} holds '${c}' results, the files before it '${command}' results`, { hint: 'merge run results and check results separately' });
    command = c;
    for (const e of entriesOf(d as Doc)) {
      const seen = from.get(e.spec);
      if (seen) throw new MmaplabError('usage', `kernel ${e.spec} is in both ${seen} and ${path}`, { hint: 'give each kernel once' });
      from.set(e.spec, path);
      kernels.push(e);
    }
  }
  if (!command) throw new MmaplabError('usage', 'nothing to merge', { hint: 'give one or more results.json files' });
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
    try {
      docs.push({ path, doc: JSON.parse(text) as unknown });
    } catch {
      throw new MmaplabError('usage', `${path} is not JSON`, { hint: 'was the job killed while writing it? Its run directory keeps results.json' });
    }
  }
  return mergeDocuments(docs, out);
}
