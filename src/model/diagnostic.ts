/** Compiler diagnostics and the kernel API changes behind them, as data (parsed in kbuild/, matched in diagnose/). */

export type Severity = 'error' | 'warning' | 'note';

export interface Diagnostic {
  severity: Severity;
  /** Path as the user knows it (mapped back from the build copy). */
  file: string | undefined;
  line: number | undefined;
  column: number | undefined;
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file ? `${d.file}${d.line === undefined ? '' : `:${d.line}`}${d.column === undefined ? '' : `:${d.column}`}: ` : '';
  return `${where}${d.severity}: ${d.message}`;
}


/** A kernel API change a failed build met (see diagnose/api-changes). */
export interface ApiChange {
  /** Stable key. */
  id: string;
  /** The kernel version the change arrived in, e.g. "6.3". */
  since: string;
  /** One sentence: what changed. */
  summary: string;
  /** One sentence: how to write it instead. */
  fix: string;
  /** The Debian kernel that builds the code as written, e.g. "debian:bullseye" (5.10). */
  buildsOn?: string;
}

/** A C mistake the kernel's flags make an error (or a warning worth fixing), in one line, with the fix. */
export interface BuildMistake {
  id: string;
  summary: string;
  fix: string;
}

/** One line for a report: the change, when it came, and the fix. */
export function describeApiChange(a: ApiChange): string {
  return `API change (Linux ${a.since}): ${a.summary} Fix: ${a.fix}`;
}
