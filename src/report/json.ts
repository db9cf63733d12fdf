/** The machine report: the RunReport itself, versioned by schemaVersion. */
import type { RunReport } from '../model/report.js';

export function renderRunJson(report: RunReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
