/** A report's explanations, one per distinct failure, each with the cells it explains (the terminal and HTML reports list them so). */
import type { CheckResult, Explanation } from '../model/outcome.js';

export function explanationGroups(results: readonly CheckResult[]): Array<{ explanation: Explanation; cells: CheckResult[] }> {
  const groups = new Map<string, { explanation: Explanation; cells: CheckResult[] }>();
  for (const r of results) {
    if (!r.explanation) continue;
    const g = groups.get(r.explanation.id) ?? { explanation: r.explanation, cells: [] };
    g.cells.push(r);
    groups.set(r.explanation.id, g);
  }
  return [...groups.values()];
}
