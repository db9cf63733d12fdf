/** The grid of a run as strategy -> check -> outcome kind, and the one the expectations table says: equal when every cell is as expected. */
import { EXPECTATIONS, STRATEGIES } from '../../src/diagnose/expectations.js';
import { CHECK_NAMES } from '../../src/model/checks.js';
import type { RunReport } from '../../src/model/report.js';

export function gridOf(r: Pick<RunReport, 'results'>): Record<string, Record<string, string>> {
  return Object.fromEntries(STRATEGIES.map((s) => [s, Object.fromEntries(r.results.filter((x) => x.strategy === s).map((x) => [x.check, x.outcome.kind]))]));
}

export function expectedGrid(): Record<string, Record<string, string>> {
  return Object.fromEntries(STRATEGIES.map((s) => [s, Object.fromEntries(CHECK_NAMES.map((c) => [c, EXPECTATIONS[s]![c].kind]))]));
}

/** The size argument of every traced remap_pfn_range() call of a strategy, from a run's records.jsonl. */
export function remapSizes(records: string, strategy: string): string[] {
  return [...records.matchAll(new RegExp(`"strategy":"${strategy}".*remap_pfn_range_args: .* addr=0x[0-9a-f]+ pfn=0x[0-9a-f]+ size=(0x[0-9a-f]+)`, 'g'))].map((m) => m[1]!);
}
