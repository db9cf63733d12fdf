/**
 * The kernel dimension: one entry per kernel (its report, or why there is
 * none), the rows whose outcome differs between kernels, and one status.
 * Pure: built by `run`/`check` with several kernels and by `merge` alike.
 */
import { apiChangesFor } from '../diagnose/api-changes.js';
import { matrixStatus } from '../model/exit.js';
import { outcomeCode } from '../model/outcome.js';
import { SCHEMA_VERSION, type KernelEntry, type KernelError, type MatrixReport, type MatrixRow } from '../model/report.js';
import { isMmaplabError } from '../util/errors.js';
import { VERSION } from '../util/version.js';

export function kernelError(e: unknown): KernelError {
  if (!isMmaplabError(e)) return { kind: 'internal', message: e instanceof Error ? e.message : String(e), details: [], hint: undefined, locations: [], apiChanges: [], artifacts: {} };
  return {
    kind: e.kind,
    message: e.message,
    details: [...e.details],
    hint: e.hint,
    locations: [...e.locations],
    apiChanges: e.kind === 'build' ? apiChangesFor(e.locations) : [],
    artifacts: { ...e.artifacts },
  };
}

/** The row that says whether the driver built: `build` in a run matrix, `builds` (the check's own item) in a check matrix. */
export function buildRow(command: MatrixReport['command']): string {
  return command === 'check' ? 'builds' : 'build';
}

/**
 * A kernel's rows: the build first, then its cells (run) or items (check).
 * A cell's value is its outcome's code (model/outcome), part of the schema and
 * never a display label, so renaming what the terminal shows changes no JSON.
 */
export function rowsOf(entry: KernelEntry, command: MatrixReport['command']): Map<string, { value: string; ok: boolean }> {
  const rows = new Map<string, { value: string; ok: boolean }>();
  switch (entry.kind) {
    case 'error':
      rows.set(buildRow(command), { value: entry.error.kind === 'build' ? 'does not build' : `${entry.error.kind} error`, ok: false });
      break;
    case 'run':
      rows.set('build', { value: 'ok', ok: true });
      for (const r of entry.report.results) rows.set(`${r.strategy} / ${r.check}`, { value: `${outcomeCode(r.outcome)}${r.matchesExpected ? '' : '!'}`, ok: r.matchesExpected });
      break;
    case 'check':
      for (const i of entry.report.items) rows.set(i.id, { value: i.verdict, ok: i.verdict !== 'fail' });
      break;
  }
  return rows;
}

export function matrixRows(kernels: readonly KernelEntry[], command: MatrixReport['command']): MatrixRow[] {
  const per = kernels.map((k) => ({ spec: k.spec, rows: rowsOf(k, command) }));
  const keys: string[] = [];
  for (const p of per) for (const k of p.rows.keys()) if (!keys.includes(k)) keys.push(k);
  return keys.map((key) => ({
    key,
    cells: per.map((p) => {
      const v = p.rows.get(key);
      return v ? { spec: p.spec, value: v.value, ok: v.ok } : { spec: p.spec, value: undefined, ok: false as const };
    }),
  }));
}

/**
 * Rows whose outcome is not the same on every kernel. A kernel with no value
 * (it did not build) is not a difference of its own, except on the build row.
 */
export function differences(rows: readonly MatrixRow[], command: MatrixReport['command']): MatrixRow[] {
  const build = buildRow(command);
  return rows.filter((r) => new Set(r.cells.filter((c) => c.value !== undefined || r.key === build).map((c) => (c.value === undefined ? '(none)' : `${c.value} ${c.ok}`))).size > 1);
}

export function assembleMatrix(p: { command: 'run' | 'check'; kernels: KernelEntry[]; dir: string; resultsJson: string; totalMs: number }): MatrixReport {
  return {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'mmaplab', version: VERSION },
    kind: 'matrix',
    command: p.command,
    ...matrixStatus(p.kernels),
    kernels: p.kernels,
    differences: differences(matrixRows(p.kernels, p.command), p.command),
    artifacts: { dir: p.dir, resultsJson: p.resultsJson },
    timings: { totalMs: p.totalMs },
  };
}
