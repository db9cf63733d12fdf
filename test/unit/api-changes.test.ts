/** API changes named from real gcc output: builds captured from Debian's 5.10, 6.12 and 7.2 (test/fixtures/builds). */
import { patternChoice } from '../../src/model/pattern.js';
import { describe, expect, it } from 'vitest';
import { parseDiagnostics } from '../../src/kbuild/diagnostics.js';
import { apiChangesFor, deprecationNotes } from '../../src/diagnose/api-changes.js';
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
    const [builds] = checkItems({ build: { ok: false, message: 'does not compile', diagnostics }, results: [], problems: [], vmallocLeft: [], tainted: undefined, moduleName: '', pattern: patternChoice(0xaabbccdd, 'option', true) });
    expect(builds?.verdict).toBe('fail');
    expect(builds?.apiChanges?.[0]).toMatchObject({ id: 'vm-flags-read-only', since: '6.3' });
    expect(builds?.hint).toMatch(/vm_flags_set\(vma, FLAGS\)/);
    expect(builds?.details).toContainEqual(expect.stringMatching(/old_vm_flags\.c:22:\d+: error: assignment of read-only member/));
  });
});

describe('what still builds but is on its way out', () => {
  const source = fixture('drivers', 'old-vm-flags', 'old_vm_flags.c');

  it('notes .mmap on kernels from 6.17 (sid 7.2), not before', () => {
    expect(deprecationNotes([source], '7.2.13+deb14-cloud-amd64')).toEqual([expect.stringMatching(/^f_op->mmap is deprecated since Linux 6\.17 in favour of f_op->mmap_prepare/)]);
    expect(deprecationNotes([source], '6.12.117+deb13-cloud-amd64')).toEqual([]);
    expect(deprecationNotes([source.replace('.mmap = old_mmap', '.mmap_prepare = old_mmap_prepare')], '7.2.13')).toEqual([]);
  });
});
