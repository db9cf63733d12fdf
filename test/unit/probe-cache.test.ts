/**
 * Kbuild's compiler probes answered from a record (kbuild/probe-cache.ts): what
 * is recorded, and the wrapper run for real by the shell, against a stand-in
 * compiler that says when it is called.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseProbeRecords, probeKey, wrapperScript } from '../../src/kbuild/probe-cache.js';

const dir = mkdtempSync(join(tmpdir(), 'mmaplab-probes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const probe = (flag: string, tmp: string) => ['-Werror', '-D__KERNEL__', flag, '-c', '-x', 'c', '/dev/null', '-o', `/build/src/.tmp_${tmp}/tmp`];

describe("Kbuild's compiler probes", () => {
  it('are recorded by their arguments, the temporary output aside; calls that are not probes are not', () => {
    const answers = parseProbeRecords([
      ['0', ...probe('-mno-red-zone', '123')].join('\n') + '\n',
      ['1', ...probe('-fno-such-flag', '124')].join('\n') + '\n',
      // A compile of a real file, --version, a probe without its -o: never answered from the record.
      ['0', '-c', 'driver.c', '-o', 'driver.o'].join('\n'),
      ['0', '--version'].join('\n'),
      ['0', '-E', '-x', 'c', '/dev/null'].join('\n'),
      // From 6.13, Kbuild builds from inside M=: the temporary folder is relative.
      ['0', '-Werror', '-mgeneral-regs-only', '-c', '-x', 'c', '/dev/null', '-o', '.tmp_104/tmp'].join('\n'),
    ]);
    expect([...answers]).toEqual([
      [probeKey(probe('-mno-red-zone', '999')), 0],
      [probeKey(probe('-fno-such-flag', '1')), 1],
      [probeKey(['-Werror', '-mgeneral-regs-only', '-c', '-x', 'c', '/dev/null', '-o', '.tmp_9/tmp']), 0],
    ]);
  });

  it('are answered by the wrapper without the compiler; every other call reaches it with its arguments intact', () => {
    const log = join(dir, 'calls');
    const cc = join(dir, 'fake-cc');
    writeFileSync(cc, `#!/bin/sh\nprintf '%s|' "$@" >> '${log}'\necho >> '${log}'\nexit 7\n`);
    chmodSync(cc, 0o755);
    const answers = new Map([[probeKey(probe('-mno-red-zone', '1')), 0], [probeKey(probe("it's \"odd\" $x *", '1')), 1]]);
    const wrapper = join(dir, 'cc');
    writeFileSync(wrapper, wrapperScript(cc, answers, 'test'));
    chmodSync(wrapper, 0o755);
    const status = (args: string[]) => spawnSync(wrapper, args).status;
    expect(status(probe('-mno-red-zone', '555'))).toBe(0);
    expect(status(probe("it's \"odd\" $x *", '556'))).toBe(1);
    expect(() => readFileSync(log, 'utf8')).toThrow();
    // Not recorded: the compiler runs, and its status is the answer.
    expect(status(probe('-mother', '557'))).toBe(7);
    expect(status(['-c', 'a b.c', '-o', 'a.o'])).toBe(7);
    expect(readFileSync(log, 'utf8')).toBe(`${probe('-mother', '557').join('|')}|\n-c|a b.c|-o|a.o|\n`);
    // The wrapper is plain POSIX sh.
    expect(execFileSync('shellcheck', ['--shell=sh', wrapper], { encoding: 'utf8' })).toBe('');
  });
});
