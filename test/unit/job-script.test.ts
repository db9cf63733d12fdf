/**
 * The job script (vm/job.sh) and the agent (vm/init) as code: shellcheck over
 * every shell script mmaplab runs, the one JSON writer they share run for real
 * by the shells and awks it meets (busybox in the guest, dash and mawk on a
 * Debian target), and the facts it reports judged by parse/job-records.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { GuestRecord } from '../../src/guest/protocol.js';
import { deviceStep, observeJob, vmallocLeftOver } from '../../src/parse/job-records.js';
import { findStaticBusybox } from '../../src/guest/initramfs.js';
import { ROOT } from '../helpers.js';

const SCRIPTS = ['vm/init', 'vm/job.sh', 'bin/install-deps', 'test/capture-fixtures.sh', 'test/support/target-init.sh', 'bin/autograders/gradescope/setup.sh', 'bin/autograders/gradescope/run_autograder'];

describe('shell scripts', () => {
  it('pass shellcheck (POSIX sh)', () => {
    const r = spawnSync('shellcheck', ['--shell=sh', '--external-sources', ...SCRIPTS], { cwd: ROOT, encoding: 'utf8' });
    expect(r.error, 'shellcheck is needed by the tests: install the Debian/Ubuntu package shellcheck (bin/install-deps does)').toBeUndefined();
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('the JSON writer of vm/job.sh', async () => {
  const busybox = await findStaticBusybox();
  // The guest's shell and awk (busybox), and this machine's (dash or bash, with mawk or gawk: what an SSH target has).
  const shells: Array<[string, string[]]> = [
    ['busybox sh', [busybox, 'sh']],
    ['sh', ['sh']],
  ];
  const nasty = 'a "quoted" \\back\\slash\ttab\nnewline \x1b[31mESC\x1b[0m ünïcødé';

  for (const [name, shell] of shells) {
    it(`keeps every character of a value, under ${name}`, () => {
      const out = execFileSync(shell[0]!, [...shell.slice(1), '-c', 'MMAPLAB_JOB_LIB=1; . ./vm/job.sh; emit step step=insmod status:=0 output="$OUT"; emit device how=name path=/dev/x major:=244 mknod:=1 error=no:=number; printf \'one\\n# comment\\ntwo "2" \\\\ end\\n\' | emit -l vmalloc when=before'], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, OUT: nasty },
      });
      const records = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records).toEqual([
        // Every character is kept: control characters other than tab and newline as JSON \u00XX escapes (the host shows them as \xNN).
        { t: 'step', step: 'insmod', status: 0, output: nasty },
        // A `:=` value that is not a number is written as a string, never as broken JSON.
        { t: 'device', how: 'name', path: '/dev/x', major: 244, mknod: 1, error: 'no:=number' },
        { t: 'vmalloc', when: 'before', line: 'one' },
        { t: 'vmalloc', when: 'before', line: 'two "2" \\ end' },
      ]);
    });
  }
});

describe('the JSON writer without a process (emit_plain)', async () => {
  const busybox = await findStaticBusybox();
  const cases = [
    'step step=insmod status:=0 output=',
    'device how=name path=/dev/mmaplab0 major:=244 name=mmaplab mknod:=0 error=',
    'x n:=-5 m:=-- d:=- t:=true f:=false z:=null e:= s:=12a w=a:=b sp="a b  c" tilde=~',
    'guest-state when=before modules="virtio_ring virtio" chrdevs="1 mem|4 /dev/vc/0" tainted:=12288',
  ];
  for (const [name, shell] of [['busybox sh', [busybox, 'sh']], ['sh', ['sh']]] as const) {
    it(`writes what awk writes, and leaves to awk what needs escaping, under ${name}`, () => {
      const run = (script: string) => execFileSync(shell[0], [...shell.slice(1), '-c', `MMAPLAB_JOB_LIB=1; . ./vm/job.sh; ${script}`], { cwd: ROOT, encoding: 'utf8' });
      for (const c of cases) {
        const plain = run(`emit_plain ${c} && echo PLAIN`);
        expect(plain, c).toMatch(/PLAIN\n$/);
        expect(plain.replace(/PLAIN\n$/, ''), c).toBe(run(`emit_awk ${c}`));
      }
      // A quote, a backslash, a control or non-ASCII character: not plain.
      for (const v of ['"q"', 'b\\s', 'a\tb', 'ü', '\x1b[31m']) {
        const r = execFileSync(shell[0], [...shell.slice(1), '-c', 'MMAPLAB_JOB_LIB=1; . ./vm/job.sh; emit_plain x v="$V" || echo AWK'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, V: v } });
        expect(r, JSON.stringify(v)).toBe('AWK\n');
      }
    });
  }
});

describe('what the job reports, judged', () => {
  it('finds the vmalloc areas that outlived rmmod, each repeat counted, addresses aside', () => {
    const before = ['0xffffc90000000000-0xffffc90000005000   20480 irq_init_percpu_irqstack+0x114/0x180 vmap', '0xffffc90000400000-0xffffc90000402000    8192 bpf_prog_alloc+0x3c/0xb0 pages=1 vmalloc'];
    const after = [
      '0xffffc90000000000-0xffffc90000005000   20480 irq_init_percpu_irqstack+0x114/0x180 vmap',
      '0xffffc90000600000-0xffffc90000602000    8192 bpf_prog_alloc+0x3c/0xb0 pages=1 vmalloc',
      '0xffffc90000600000-0xffffc90000602000    8192 bpf_prog_alloc+0x3c/0xb0 pages=1 vmalloc',
      '0xffffc90000700000-0xffffc90000711000   69632 0xffffffffc023d015 pages=16 vmalloc N0=16',
    ];
    expect(vmallocLeftOver(before, after)).toEqual(['8192 bpf_prog_alloc+0x3c/0xb0 pages=1 vmalloc', '69632 0xffffffffc023d015 pages=16 vmalloc N0=16']);
  });

  it('reads the areas the same when the kernel prints "(____ptrval____)" for their addresses (pointer hashing not yet seeded)', () => {
    const ptr = (rest: string) => `0x(____ptrval____)-0x(____ptrval____)   ${rest}`;
    expect(vmallocLeftOver([ptr('20480 irq_init_percpu_irqstack+0x114/0x180 vmap')], [ptr('20480 irq_init_percpu_irqstack+0x114/0x180 vmap'), ptr('69632 0xffffffffc023d015 pages=16 vmalloc N0=16')])).toEqual(['69632 0xffffffffc023d015 pages=16 vmalloc N0=16']);
  });

  it('reads the vmalloc areas again only when rmmod succeeded', () => {
    const recs = (rmmod: number): GuestRecord[] => [
      { t: 'vmalloc', when: 'before', line: '0x1-0x2 1 x' },
      { t: 'step', step: 'insmod', status: 0, output: '' },
      { t: 'step', step: 'rmmod', status: rmmod, output: '' },
      { t: 'vmalloc', when: 'after', line: '0x3-0x4 2 leaked [drv]' },
    ];
    expect(observeJob(recs(0), []).vmallocLeft).toEqual(['2 leaked [drv]']);
    expect(observeJob(recs(1), []).vmallocLeft).toEqual([]);
  });

  it('words the device step from how the job found it', () => {
    expect(deviceStep({ t: 'device', how: 'name', path: '/dev/mmaplab0', major: 244, name: 'mmaplab', mknod: 0, error: '' })).toEqual({ ok: true, status: 0, output: '/dev/mmaplab0 244:0 (mmaplab)' });
    expect(deviceStep({ t: 'device', how: 'devtmpfs', path: '/dev/miscmap' })).toEqual({ ok: true, status: 0, output: '/dev/miscmap (made by devtmpfs)' });
    expect(deviceStep({ t: 'device', how: 'given', path: '/dev/x' }).output).toBe('/dev/x (given)');
    expect(deviceStep({ t: 'device', how: 'none', looked: 'mmaplab' })).toEqual({ ok: false, status: 1, output: "no new character device after insmod (looked for 'mmaplab' in /proc/devices)" });
    expect(deviceStep({ t: 'device', how: 'new-chrdev', path: '/dev/mmaplab-x', major: 240, name: 'x', mknod: 1, error: 'mknod: Read-only file system' })).toEqual({ ok: false, status: 1, output: '/dev/mmaplab-x 240:0 (x) mknod: Read-only file system' });
  });
});

describe('the test program (userspace/mmap-test.c)', () => {
  it("writes a device path the driver's own name made (quotes, backslashes) as valid JSON", async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { buildStaticProgram } = await import('../../src/kbuild/userspace.js');
    const cache = mkdtempSync(join(tmpdir(), 'mmaplab-mmaptest-'));
    try {
      const test = await buildStaticProgram(join(ROOT, 'userspace', 'mmap-test.c'), cache);
      // A node that does not exist: the program only opens it and says so, on this machine too.
      const device = join(cache, 'mmaplab-evil "dev" \\x');
      const out = execFileSync(test.path, ['--device', device, '--checks', 'shared'], { encoding: 'utf8' });
      const records = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records[0]).toMatchObject({ t: 'start', check: 'shared', device });
      expect(records[1]).toMatchObject({ t: 'open', ok: false, err: 'ENOENT' });
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
