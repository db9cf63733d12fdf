/**
 * The bundled driver on a kernel past the vm_flags change (6.3: vma->vm_flags
 * read-only, vm_flags_set()/vm_flags_clear() instead): Debian's 6.12 from
 * bookworm-backports, built with the host's gcc-12.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EXPECTATIONS, STRATEGIES } from '../../src/diagnose/expectations.js';
import type { RunReport } from '../../src/report/model.js';
import { qemuProcesses, runCli } from './cli.js';

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

describe('debian:bookworm-backports (6.12)', () => {
  it('builds every strategy and the whole grid equals the expectations table', async () => {
    const r = await runCli(['run', '--json', '--kernel', 'debian:bookworm-backports']);
    expect(r.stderr).toBe('');
    const rep = JSON.parse(r.stdout) as RunReport;
    expect(rep.kernel.release).toMatch(/^6\.12\./);
    const odd = rep.results.filter((x) => !x.matchesExpected).map((x) => `${x.strategy}/${x.check}: ${x.outcome.kind}, expected ${EXPECTATIONS[x.strategy]![x.check].kind}`);
    expect(odd).toEqual([]);
    expect(rep.strategies.map((s) => s.strategy)).toEqual(STRATEGIES);
    expect(r.exitCode).toBe(0);
  }, 300_000);
});
