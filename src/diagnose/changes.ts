/**
 * What changed between checks of the same driver (check --watch): the checks
 * whose verdict turned, from what to what, with the new reason. A build that
 * fails reaches none of the checks after it; their last verdicts stay known,
 * so the build that works again announces only what differs from before. Pure.
 */
import type { CheckItem, CheckReport, RunReport, Verdict } from '../model/report.js';
import { outcomeCode } from '../model/outcome.js';

export interface VerdictChange {
  id: string;
  title: string;
  /** undefined: no check before this one reached it. */
  from: Verdict | undefined;
  to: Verdict;
  reason: string;
  hint?: string;
}

/** Each check's last verdict: this report's, and for the checks it did not reach, the one before. */
export function knownVerdicts(known: readonly CheckItem[], now: CheckReport): CheckItem[] {
  const reached = new Set(now.items.filter((i) => !isUnreached(i)).map((i) => i.id));
  return [...now.items.filter((i) => reached.has(i.id)), ...known.filter((i) => !reached.has(i.id))];
}

/** A check skipped because the driver did not build or load says nothing of the driver's mapping. */
function isUnreached(i: CheckItem): boolean {
  return i.verdict === 'skip' && /did not (build|load)/.test(i.reason);
}

/** The checks whose verdict differs from the last known one, in this report's order; a first check announces its failures only. */
export function verdictChanges(known: readonly CheckItem[] | undefined, now: CheckReport): VerdictChange[] {
  const before = new Map((known ?? []).map((i) => [i.id, i]));
  const changes: VerdictChange[] = [];
  for (const i of now.items) {
    if (isUnreached(i)) continue;
    const was = before.get(i.id);
    if (was?.verdict === i.verdict) continue;
    if (!known && i.verdict !== 'fail') continue;
    changes.push({ id: i.id, title: i.title, from: was?.verdict, to: i.verdict, reason: i.reason, ...(i.hint ? { hint: i.hint } : {}) });
  }
  return changes;
}

/** A cell of run's grid whose outcome changed since the last run of the same driver. */
export interface CellChange {
  strategy: string;
  check: string;
  /** The outcome's short code then (undefined: the cell was not in the last run) and now. */
  from: string | undefined;
  to: string;
  /** Whether the outcome now is what the lab expects. */
  expected: boolean;
}

export function cellChanges(last: RunReport | undefined, now: RunReport): CellChange[] {
  const before = new Map((last?.results ?? []).map((r) => [`${r.strategy}/${r.check}`, r]));
  const changes: CellChange[] = [];
  for (const r of now.results) {
    const was = before.get(`${r.strategy}/${r.check}`);
    const to = outcomeCode(r.outcome);
    const from = was ? outcomeCode(was.outcome) : undefined;
    if (from === to && was?.matchesExpected === r.matchesExpected) continue;
    // A first run announces what the lab did not expect only.
    if (!last && r.matchesExpected) continue;
    changes.push({ strategy: r.strategy, check: r.check, from, to, expected: r.matchesExpected });
  }
  return changes;
}
