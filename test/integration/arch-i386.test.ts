/**
 * The lab's own machine: a real i386 guest (Debian bookworm's 686-pae kernel
 * under qemu-system-i386, a 32-bit busybox and test program), the whole grid
 * run on it, and a driver written for the lab's 32-bit VM checked there.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CheckReport, GuestMachine, MatrixReport, RunReport } from '../../src/model/report.js';
import { qemuProcesses, runCli } from './cli.js';
import { parseValidResults } from '../support/schema.js';
import { expectedGrid, gridOf } from '../support/grid.js';

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

const tmp = mkdtempSync(join(tmpdir(), 'mmaplab-i386-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('mmaplab run --arch i386 on debian:bookworm', () => {
  let grid: { exitCode: number | undefined; stdout: string; stderr: string };
  const junit = join(tmp, 'junit.xml');

  beforeAll(async () => {
    grid = await runCli(['run', '--arch', 'i386', '--json', '--junit', junit]);
  });

  it("boots the 686-pae kernel and the real grid equals the expectations table, as on amd64", () => {
    expect(grid.stderr).toBe('');
    const r = parseValidResults<RunReport & { machine: GuestMachine }>(grid.stdout);
    expect(r.kernel).toMatchObject({ spec: 'debian:bookworm', flavour: '686-pae', arch: 'i386', release: expect.stringMatching(/^6\.1\.0-\d+-686-pae$/) });
    expect(gridOf(r)).toEqual(expectedGrid());
    expect(r.kernelLog.problems).toEqual([]);
    expect(grid.exitCode).toBe(0);
  });

  it("reproduces the seed: SIGBUS at page 0 under MAP_PRIVATE after 16 traced -EINVALs (the fourth argument, on i386's stack, read right), 16/16 under MAP_SHARED", () => {
    const r = parseValidResults<RunReport>(grid.stdout);
    expect(r.strategies.every((s) => s.insmod?.ok && s.rmmod?.ok && s.tracing)).toBe(true);
    const cell = (check: string) => r.results.find((x) => x.strategy === 'seed' && x.check === check)!;
    expect(cell('private')).toMatchObject({ outcome: { kind: 'sigbus', page: 0 }, matchesExpected: true });
    expect(cell('private').traced).toEqual([expect.objectContaining({ fn: 'remap_pfn_range', calls: 16, returns: { '-22': 16 } })]);
    expect(cell('shared')).toMatchObject({ outcome: { kind: 'ok', pagesOk: 16 }, matchesExpected: true });
    // remap_pfn_range(vma, addr, pfn, size, prot): size is $arg4, on the stack on i386; one page per call.
    const records = readFileSync(join(r.artifacts.dir, 'records.jsonl'), 'utf8');
    const sizes = [...records.matchAll(/"strategy":"seed".*remap_pfn_range_args: .* addr=0x[0-9a-f]{1,8} pfn=0x[0-9a-f]+ size=(0x[0-9a-f]+)/g)].map((m) => m[1]);
    expect(sizes.length).toBeGreaterThanOrEqual(16);
    expect(new Set(sizes)).toEqual(new Set(['0x1000']));
  });

  it('the JUnit names the architecture', () => {
    expect(readFileSync(junit, 'utf8')).toMatch(/<property name="arch" value="i386"\/>/);
  });
});

describe('a driver written on the lab\'s 32-bit VM: read()/write() return int', () => {
  const driver = 'test/fixtures/students/int-read-write-32bit';

  it('does not build on amd64, with the explanation and the way to check it as the lab runs it', async () => {
    const r = await runCli(['check', '--json', driver]);
    const report = parseValidResults<CheckReport>(r.stdout);
    const build = report.items.find((i) => i.id === 'builds')!;
    expect(build.verdict).toBe('fail');
    expect(build.hint).toMatch(/--arch i386/);
    expect(r.exitCode).not.toBe(0);
  });

  it('passes every check on i386, as in the lab', async () => {
    const r = await runCli(['check', '--json', '--arch', 'i386', driver]);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.kernel).toMatchObject({ arch: 'i386' });
    expect(report.items.filter((i) => i.verdict === 'fail').map((i) => i.id)).toEqual([]);
    expect(report.items.find((i) => i.id === 'shared')!.reason).toMatch(/^16\/16 pages start with aa bb cc dd/);
    expect(r.exitCode).toBe(0);
  });
});

describe("the lab's own test program, beside mmaplab's checks", () => {
  const lab = 'test/fixtures/students/lab-vmmap-layout';
  const ran = (report: CheckReport) => (report.labTest?.kind === 'ran' ? report.labTest.runs.map((x) => [x.run, x.verdict]) : report.labTest);

  it('is built -m32 -static by mmaplab and run as the lab runs it on i386: ./mmap-test 1, 2 and 3 with its /dev/mymmap and /proc/my-vma-stats', async () => {
    const r = await runCli(['check', '--json', '--arch', 'i386', lab]);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.labTest).toMatchObject({ kind: 'ran', program: `${lab}/test/mmap-test.c`, node: '/dev/mymmap', command: expect.stringMatching(/-static .*-o mmap-test mmap-test\.c$/) });
    expect(ran(report)).toEqual([[1, 'pass'], [2, 'pass'], [3, 'pass']]);
    expect(r.exitCode).toBe(0);
  });

  it("runs a program that makes its node every time (mknod c 42 0, rm at exit), as the lab's own does, three times over", async () => {
    const report = parseValidResults<CheckReport>((await runCli(['check', '--json', '--arch', 'i386', 'test/fixtures/students/lab-mknod-always'])).stdout);
    expect(ran(report)).toEqual([[1, 'pass'], [2, 'pass'], [3, 'pass']]);
  });

  it('runs the same 32-bit program on amd64, whose kernel has IA32 emulation', async () => {
    const r = await runCli(['check', '--json', lab]);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.kernel.arch).toBe('amd64');
    expect(ran(report)).toEqual([[1, 'pass'], [2, 'pass'], [3, 'pass']]);
  });

  it('on drivers written from the lab\'s description by someone who had not seen mmaplab: a correct kmmap passes 1, 2 and 3 (amd64); a /proc entry summing one VMA fails 3 only (i386)', async () => {
    const kmmap = parseValidResults<CheckReport>((await runCli(['check', '--json', 'test/fixtures/students/lab-kmmap-indep/kmmap'])).stdout);
    expect(ran(kmmap)).toEqual([[1, 'pass'], [2, 'pass'], [3, 'pass']]);
    const vmmap = parseValidResults<CheckReport>((await runCli(['check', '--json', '--arch', 'i386', 'test/fixtures/students/lab-vmmap-proc-first-vma/vmmap'])).stdout);
    expect(ran(vmmap)).toEqual([[1, 'pass'], [2, 'pass'], [3, 'fail']]);
    expect(vmmap.labTest?.kind === 'ran' && vmmap.labTest.runs[2]!.reason).toBe("the driver's /proc entry saw the mappings grow by 0 MB, not the 10 MB mapped");
  });

  it("says what the student's own variant of it printed when it fails (a driver writing dd cc bb aa)", async () => {
    const r = await runCli(['check', '--json', '--arch', 'i386', 'test/fixtures/students/wrong-byte-order/kernel']);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.labTest).toMatchObject({ kind: 'ran', node: '/dev/pagemap', runs: [{ run: 1, verdict: 'fail', reason: expect.stringMatching(/^0\/16 pages matched aa bb cc dd; it printed "page 0: expected aa bb cc dd, got dd cc bb aa"; it exited with status 1$/) }] });
  });

  it("is compiled in the sandbox: its #include of a host file finds nothing, which --trust-driver would have read", async () => {
    const base = mkdtempSync(join(tmp, 'labtest-'));
    const token = randomBytes(8).toString('hex');
    const secret = join(base, 'secret.h');
    writeFileSync(secret, `SECRET-${token}\n`);
    cpSync(lab, join(base, 'driver'), { recursive: true });
    const program = join(base, 'driver', 'test', 'mmap-test.c');
    writeFileSync(program, `#include "${secret}"\n${readFileSync(program, 'utf8')}`);
    const r = await runCli(['check', '--json', '--arch', 'i386', join(base, 'driver')]);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.labTest).toMatchObject({ kind: 'build-failed', details: [expect.stringMatching(/mmap-test\.c:1:\d+: (fatal )?error: .*secret\.h: No such file or directory/)] });
    expect(r.stdout + r.stderr).not.toContain(token);
    // The fixture is what it claims: trusted, gcc reads the file (and stumbles on its first line).
    const trusted = parseValidResults<CheckReport>((await runCli(['check', '--json', '--arch', 'i386', '--trust-driver', join(base, 'driver')])).stdout);
    expect(trusted.labTest).toMatchObject({ kind: 'build-failed', details: expect.arrayContaining([expect.stringMatching(/secret\.h:1:\d+: error: /)]) });
  });
});

describe('a matrix of kernels x arches', () => {
  it('runs each kernel on each architecture, the JSON and JUnit naming every entry <spec>/<arch>', async () => {
    const junit = join(tmp, 'matrix.xml');
    const r = await runCli(['run', '--json', '--strategy', 'seed', '--check', 'private,shared', '--arch', 'amd64,i386', '--junit', junit]);
    const m = JSON.parse(r.stdout) as MatrixReport;
    expect(m.kernels.map((k) => [k.spec, k.kind === 'run' ? k.report.kernel.arch : k.kind])).toEqual([['debian:bookworm/amd64', 'amd64'], ['debian:bookworm/i386', 'i386']]);
    for (const k of m.kernels) {
      expect(k.kind === 'run' && k.report.results.map((x) => [x.check, x.outcome.kind])).toEqual([['private', 'sigbus'], ['shared', 'ok']]);
    }
    expect([...readFileSync(junit, 'utf8').matchAll(/<testsuite name="([^"]+)"/g)].map((x) => x[1])).toEqual(['debian:bookworm/amd64', 'debian:bookworm/i386']);
    expect(r.exitCode).toBe(0);
  });
});

describe('a driver that oopses on i386', () => {
  it("is named at the driver's own line: the i386 oops (EIP, no <TASK>) parsed and its address resolved in the 32-bit module", async () => {
    const r = await runCli(['check', '--json', '--arch', 'i386', 'test/fixtures/drivers/null-deref-mmap']);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.items.find((i) => i.id === 'shared')).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/^the driver crashed: BUG: kernel NULL pointer dereference.* in broken_mmap\+0x[0-9a-f]+ \(test\/fixtures\/drivers\/null-deref-mmap\/null_deref\.c:19\)$/) });
    expect(r.exitCode).toBe(1);
  });

  it('a vmalloc area left after rmmod is found though its caller, in the 32-bit module gone, is a bare address', async () => {
    const r = await runCli(['check', '--json', '--arch', 'i386', 'test/fixtures/drivers/vmalloc-leak']);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.items.find((i) => i.id === 'leaks')).toMatchObject({ verdict: 'fail', reason: '1 vmalloc area still allocated' });
    expect(r.exitCode).toBe(1);
  });
});

describe('--arch refusals', () => {
  it('a suite without i386 kernels, a flavour of another architecture and an unknown architecture are usage errors, before any download', async () => {
    const trixie = await runCli(['run', '--arch', 'i386', '--kernel', 'debian:trixie']);
    expect(trixie.exitCode).toBe(2);
    expect(trixie.stderr).toMatch(/debian:trixie ships no i386 kernel/);
    const mixed = await runCli(['run', '--arch', 'i386', '--flavour', 'cloud-amd64']);
    expect(mixed.exitCode).toBe(2);
    expect(mixed.stderr).toMatch(/--flavour cloud-amd64 is a kernel for amd64, not i386/);
    const debug = await runCli(['debug', '--arch', 'i386', 'test/fixtures/drivers/null-deref-mmap']);
    expect(debug.exitCode).toBe(2);
    expect(debug.stderr).toMatch(/mmaplab debug boots amd64 guests only so far/);
    const sparc = await runCli(['run', '--arch', 'sparc']);
    expect(sparc.exitCode).toBe(2);
    expect(sparc.stderr).toMatch(/--arch.*sparc.*(amd64|choices)/);
  });
});
