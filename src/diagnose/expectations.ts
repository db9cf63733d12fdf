/**
 * What the lab expects of each driver strategy under each check: the one
 * place that says so. The integration tests assert that the real grid on
 * Debian bookworm equals this table, so a kernel that behaves differently
 * shows up as a mismatch (exit 1), not as a silent change.
 */
import type { CheckName } from '../model/checks.js';
import type { Expected, Outcome } from '../model/outcome.js';

const ok: Expected = { kind: 'ok' };
const refused = (errno: string): Expected => ({ kind: 'mmap-failed', errno });
function mapsEverything(oversize: Expected): Record<CheckName, Expected> {
  return { private: ok, shared: ok, 'private-per-page': ok, 'shared-write': ok, 'private-isolation': ok, mprotect: ok, offset: ok, oversize, readonly: ok };
}
/** The per-page loops map from the start of the buffer whatever vm_pgoff asks for. */
const ignoresOffset: Expected = { kind: 'wrong-data' };

const CHECKED: Record<CheckName, Expected> = {
  private: refused('EINVAL'),
  shared: ok,
  'private-per-page': ignoresOffset,
  'shared-write': ok,
  'private-isolation': refused('EINVAL'),
  mprotect: refused('EINVAL'),
  offset: ignoresOffset,
  oversize: refused('EIO'),
  readonly: ok,
};

export const EXPECTATIONS: Readonly<Record<string, Readonly<Record<CheckName, Expected>>>> = {
  // The question's driver: per-page remap_pfn_range() on a copy-on-write
  // mapping fails, is ignored, and the first read faults.
  seed: {
    private: { kind: 'sigbus', page: 0 },
    shared: ok,
    'private-per-page': ignoresOffset,
    'shared-write': ok,
    'private-isolation': { kind: 'sigbus', page: 0 },
    mprotect: { kind: 'sigbus', page: 0 },
    offset: ignoresOffset,
    oversize: refused('EIO'),
    readonly: ok,
  },
  // The same loop, error returned: MAP_PRIVATE now fails cleanly at mmap().
  checked: CHECKED,
  // VM_MAYWRITE cleared: private read-only works, a writable private mapping is refused.
  'no-maywrite': {
    private: ok,
    shared: ok,
    'private-per-page': ignoresOffset,
    'shared-write': ok,
    'private-isolation': refused('EACCES'),
    mprotect: { kind: 'mprotect-denied', errno: 'EACCES' },
    offset: ignoresOffset,
    oversize: refused('EIO'),
    readonly: ok,
  },
  // Real pages mapped honouring vm_pgoff: everything works; each refuses the
  // oversize mapping in its own words.
  'remap-vmalloc-range': mapsEverything(refused('EINVAL')),
  'insert-page': mapsEverything(refused('ENXIO')),
  fault: mapsEverything(refused('EINVAL')),
  contiguous: mapsEverything(refused('EINVAL')),
  // checked's loop with PAGE_SHARED for vma->vm_page_prot: it all reads right,
  // but a read-only mapping can write the buffer.
  'page-shared': { ...CHECKED, readonly: { kind: 'write-allowed' } },
};

export const STRATEGIES = Object.keys(EXPECTATIONS);

/** A driver of the user's own (run --module-dir): it should work, and refuse what it cannot map. */
export const CUSTOM_DRIVER = 'custom';
const CUSTOM = mapsEverything({ kind: 'mmap-failed' });

export function expectationFor(strategy: string, check: CheckName): Expected {
  return EXPECTATIONS[strategy]?.[check] ?? CUSTOM[check];
}

export function matchesExpected(outcome: Outcome, expected: Expected): boolean {
  // A check that cannot judge the driver neither passes nor fails it.
  if (outcome.kind === 'skipped') return true;
  if (outcome.kind !== expected.kind) return false;
  if (expected.page !== undefined && (outcome.kind === 'sigbus' || outcome.kind === 'sigsegv')) return outcome.page === expected.page;
  if (expected.errno !== undefined && (outcome.kind === 'mmap-failed' || outcome.kind === 'mprotect-denied')) return outcome.errno === expected.errno;
  return true;
}

export function describeExpected(e: Expected): string {
  switch (e.kind) {
    case 'ok':
      return 'every page as written';
    case 'sigbus':
    case 'sigsegv':
      return `${e.kind.toUpperCase()}${e.page === undefined ? '' : ` at page ${e.page}`}`;
    case 'mmap-failed':
      return `mmap() refused${e.errno ? ` with ${e.errno}` : ''}`;
    case 'mprotect-denied':
      return `mprotect() refused${e.errno ? ` with ${e.errno}` : ''}`;
    default:
      return e.kind;
  }
}
