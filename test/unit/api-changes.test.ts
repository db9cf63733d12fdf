/** API changes named from real gcc output: builds captured from Debian's 5.10, 6.12 and 7.2 (test/fixtures/builds). */
import { describe, expect, it } from 'vitest';
import { parseDiagnostics } from '../../src/build/diagnostics.js';
import { apiChangesFor } from '../../src/diagnose/api-changes.js';
import { checkItems } from '../../src/diagnose/verdicts.js';
import { fixture } from '../helpers.js';

const changes = (log: string) => apiChangesFor(parseDiagnostics(fixture('builds', log))).map((c) => c.id);

describe('kernel API changes behind a failed build', () => {
  it('names the read-only vm_flags (6.3) on 6.12', () => {
    expect(changes('old-vm-flags-6.12.log')).toEqual(['vm-flags-read-only']);
  });

  it('names vm_flags_set() missing before 6.3, and VM_RESERVED, on 5.10', () => {
    expect(changes('api-drift-5.10.log')).toEqual(['vm-flags-accessors-missing', 'vm-reserved-removed']);
  });

  it("names class_create()'s lost argument (6.4), VM_RESERVED and the VMA list (6.1) on 7.2", () => {
    expect(changes('api-drift-7.2.log')).toEqual(['class-create-one-argument', 'vm-reserved-removed', 'vma-list-removed']);
  });

  it('says nothing for an ordinary mistake', () => {
    expect(changes('compile-error.log')).toEqual([]);
  });

  it("puts the change and its fix into check's build verdict", () => {
    const diagnostics = parseDiagnostics(fixture('builds', 'old-vm-flags-6.12.log'));
    const [builds] = checkItems({ build: { ok: false, message: 'does not compile', diagnostics }, results: [], problems: [], vmallocLeft: [], tainted: undefined, moduleName: '', pattern: '0xaabbccdd' });
    expect(builds?.verdict).toBe('fail');
    expect(builds?.apiChanges?.[0]).toMatchObject({ id: 'vm-flags-read-only', since: '6.3' });
    expect(builds?.hint).toMatch(/vm_flags_set\(vma, FLAGS\)/);
    expect(builds?.details).toContainEqual(expect.stringMatching(/old_vm_flags\.c:22:\d+: error: assignment of read-only member/));
  });
});
