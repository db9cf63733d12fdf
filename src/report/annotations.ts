/** GitHub Actions workflow commands: annotations at the driver's file and line. */
import type { MatrixReport } from '../model/report.js';
import type { SourceLocation } from '../util/errors.js';

/** GitHub Actions turns these stdout lines into annotations at the file and line. */
export function githubAnnotations(locations: readonly SourceLocation[]): string[] {
  const esc = (v: string) => v.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const prop = (v: string) => esc(v).replace(/:/g, '%3A').replace(/,/g, '%2C');
  return locations
    .filter((l) => l.file && l.severity !== 'note')
    .map((l) => `::${l.severity} file=${prop(l.file!)}${l.line ? `,line=${l.line}` : ''}${l.column ? `,col=${l.column}` : ''}::${esc(l.message)}`);
}

/** One annotation per distinct compiler diagnostic, naming the kernels it happened on. */
export function matrixAnnotations(matrix: MatrixReport): string[] {
  const byLine = new Map<string, string[]>();
  for (const k of matrix.kernels) {
    const locations =
      k.kind === 'error'
        ? k.error.locations
        : k.kind === 'check'
          ? (k.report.items.find((i) => i.id === 'builds' && i.verdict === 'fail')?.details ?? [])
              .map((d) => /^(.+?):(\d+):(?:(\d+):)? (error|warning): (.*)$/.exec(d))
              .filter((m): m is RegExpExecArray => !!m)
              .map((m) => ({ severity: m[4] as 'error' | 'warning', file: m[1], line: Number(m[2]), column: m[3] ? Number(m[3]) : undefined, message: m[5]! }))
          : [];
    for (const a of githubAnnotations(locations)) byLine.set(a, [...(byLine.get(a) ?? []), k.spec]);
  }
  return [...byLine].map(([a, kernels]) => (matrix.kernels.length > 1 ? `${a} (on ${kernels.join(', ')})` : a));
}

