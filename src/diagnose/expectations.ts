/**
 * What the lab expects of each driver strategy under each mapping mode: the
 * one place that says so. A kernel that behaves differently shows up as a
 * mismatch (exit 1), not as a silent change.
 */
import type { MapMode } from '../guest/protocol.js';
import type { Expected, Outcome } from '../report/model.js';

export const EXPECTATIONS: Readonly<Record<string, Readonly<Record<MapMode, Expected>>>> = {
  // The question's driver: per-page remap_pfn_range() on a copy-on-write
  // mapping fails, is ignored, and the first read faults.
  seed: { private: { kind: 'sigbus', page: 0 }, shared: { kind: 'ok' } },
};

export const STRATEGIES = Object.keys(EXPECTATIONS);

/** A driver of the user's own (run --module-dir): it should simply work in every mode. */
export const CUSTOM_DRIVER = 'custom';

export function expectationFor(strategy: string, mode: MapMode): Expected {
  return EXPECTATIONS[strategy]?.[mode] ?? { kind: 'ok' };
}

export function matchesExpected(outcome: Outcome, expected: Expected): boolean {
  if (outcome.kind !== expected.kind) return false;
  if (expected.page !== undefined && (outcome.kind === 'sigbus' || outcome.kind === 'sigsegv')) return outcome.page === expected.page;
  return true;
}

export function describeExpected(e: Expected): string {
  switch (e.kind) {
    case 'ok':
      return 'every page reads the pattern';
    case 'sigbus':
    case 'sigsegv':
      return `${e.kind.toUpperCase()}${e.page === undefined ? '' : ` at page ${e.page}`}`;
    default:
      return e.kind;
  }
}
