/** gcc, Kbuild and modpost diagnostics, as data. */

import type { Diagnostic } from '../model/diagnostic.js';

const GCC_LINE = /^(.+?):(\d+):(?:(\d+):)?\s+(fatal error|error|warning|note):\s+(.*)$/;
const MODPOST_LINE = /^(ERROR|WARNING): modpost: (.*)$/;

/**
 * Parse compiler output. `mapPath` turns a path in the out-of-tree build copy
 * back into the path of the user's source file.
 */
export function parseDiagnostics(output: string, mapPath: (p: string) => string = (p) => p): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const line of output.split('\n')) {
    const g = GCC_LINE.exec(line);
    if (g) {
      out.push({
        severity: g[4] === 'note' ? 'note' : g[4] === 'warning' ? 'warning' : 'error',
        file: mapPath(g[1]!),
        line: Number(g[2]),
        column: g[3] === undefined ? undefined : Number(g[3]),
        message: g[5]!,
      });
      continue;
    }
    const m = MODPOST_LINE.exec(line);
    if (m) out.push({ severity: m[1] === 'ERROR' ? 'error' : 'warning', file: undefined, line: undefined, column: undefined, message: `modpost: ${mapPath(m[2]!)}` });
  }
  return out;
}

/** Replace every occurrence of the build copy's directory with the source directory. */
export function pathMapper(buildDir: string, sourceDir: string): (p: string) => string {
  return (p) => p.split(`${buildDir}/`).join(`${sourceDir}/`).split(buildDir).join(sourceDir);
}
