import { describe, expect, it } from 'vitest';
import { buildMistakesFor } from '../../src/diagnose/build-mistakes.js';
import { suiteFor } from '../../src/diagnose/api-changes.js';
import { checkItems } from '../../src/diagnose/verdicts.js';
import { parseDiagnostics } from '../../src/kbuild/diagnostics.js';
import { patternChoice } from '../../src/model/pattern.js';
import { fixture } from '../helpers.js';

// Build logs of drivers written as students write them (by someone who had not seen mmaplab), captured from real Kbuild runs on 6.1.
const mistakes = (log: string) => buildMistakesFor(parseDiagnostics(fixture('builds', log))).map((m) => m.id);
const buildItem = (log: string) =>
  checkItems({ build: { ok: false, message: 'does not compile', diagnostics: parseDiagnostics(fixture('builds', log)) }, results: [], problems: [], vmallocLeft: [], tainted: undefined, moduleName: '', pattern: patternChoice(0xddccbbaa, 'default', false) })[0]!;

describe('common C mistakes the kernel flags make errors', () => {
  it("the 32-bit lab's int read()/write(): one line with the ssize_t fix, not a generic pointer-type error", () => {
    expect(mistakes('student-int-read-write-32bit.log')).toEqual(['int-read-write']);
    expect(buildItem('student-int-read-write-32bit.log').hint).toMatch(/^declare them static ssize_t my_read\(/);
  });

  it('a missing return, an implicit declaration', () => {
    expect(mistakes('student-missing-return.log')).toEqual(['missing-return']);
    expect(mistakes('student-implicit-decl.log')).toEqual(['implicit-declaration']);
    expect(mistakes('compile-error.log')).toEqual([]);
  });

  it('-Wint-conversion, a warning on gcc 12 and an error on gcc 14, is named in either form', () => {
    const line = (sev: string, flag: string) => `shmap.c:50:14: ${sev}: assignment to ‘long unsigned int’ from ‘char *’ makes integer from pointer without a cast [${flag}]`;
    expect(buildMistakesFor(parseDiagnostics(line('warning', '-Wint-conversion'))).map((m) => m.id)).toEqual(['int-conversion']);
    expect(buildMistakesFor(parseDiagnostics(line('error', '-Wint-conversion'))).map((m) => m.id)).toEqual(['int-conversion']);
  });

  it('an #include of a host file (absolute, or climbing out with ../../): the sandbox shows only the submission', () => {
    // What gcc printed for the hostile fixture's #include "/tmp/.../secret.h" in the sandbox.
    const line = (path: string) => `drv/secret_path.h:1:10: fatal error: ${path}: No such file or directory`;
    expect(buildMistakesFor(parseDiagnostics(line('/tmp/mmaplab-hostile-yX3Cs6/secret.h'))).map((m) => m.id)).toEqual(['include-outside']);
    expect(buildMistakesFor(parseDiagnostics(line('../../../etc/secret.h'))).map((m) => m.id)).toEqual(['include-outside']);
    // A missing kernel header is not that: the kernel's headers are there.
    expect(buildMistakesFor(parseDiagnostics(line('linux/foo.h'))).map((m) => m.id)).toEqual([]);
  });

  it('a userspace program given as the driver: said to be one, not a missing header', () => {
    const item = buildItem('student-userspace-program.log');
    expect(item.reason).toBe('this is a userspace program, not a kernel module: a module has no main() and cannot include the C library (<stdio.h>, <sys/mman.h>)');
  });
});

describe('which Debian kernel builds a driver as written', () => {
  it('code from before a removal builds on the newest suite older than it; code needing an addition on the oldest that has it', () => {
    expect(suiteFor('6.1', 'removed')).toBe('debian:bullseye');
    expect(suiteFor('6.3', 'removed')).toBe('debian:bookworm');
    expect(suiteFor('6.3', 'added')).toBe('debian:trixie');
    expect(suiteFor('3.7', 'removed')).toBeUndefined();
  });

  it('the 5.x lab solution that walks mm->mmap: check it on bullseye, says the build verdict', () => {
    const item = buildItem('api-drift-7.2.log');
    expect(item.apiChanges?.find((c) => c.id === 'vma-list-removed')?.buildsOn).toBe('debian:bullseye');
    expect(item.hint).toMatch(/--kernel debian:bullseye/);
  });
});

describe('checking on an older kernel instead', () => {
  it('only when every error is a kernel API removal, on the oldest suite any of them needs', async () => {
    const { olderKernelFor } = await import('../../src/diagnose/api-changes.js');
    const err = (message: string) => ({ severity: 'error' as const, message });
    expect(olderKernelFor([err('‘struct mm_struct’ has no member named ‘mmap’'), err('‘struct vm_area_struct’ has no member named ‘vm_next’')])?.suite).toBe('debian:bullseye');
    expect(olderKernelFor([err('assignment of read-only member ‘vm_flags’'), err('‘struct mm_struct’ has no member named ‘mmap’')])?.suite).toBe('debian:bullseye');
    expect(olderKernelFor([err('assignment of read-only member ‘vm_flags’')])?.suite).toBe('debian:bookworm');
    // One error of the driver's own: no kernel builds it as written.
    expect(olderKernelFor([err('‘struct mm_struct’ has no member named ‘mmap’'), err('expected ‘;’ before ‘return’')])).toBeUndefined();
    // A struct of the driver's own that has no such member is not the kernel's change.
    expect(olderKernelFor([err('‘struct my_dev’ has no member named ‘mmap’')])).toBeUndefined();
  });
});
