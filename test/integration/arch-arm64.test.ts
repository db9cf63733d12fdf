/**
 * ARM machines: a real arm64 guest (Debian bookworm's cloud-arm64 kernel under
 * qemu-system-aarch64's virt machine, TCG here), the module and test program
 * built with Debian's cross gcc, the whole grid run on it; and the same guest
 * on a CPU without hardware dirty-bit management, where the report says what
 * the readonly check cannot see.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXPECTATIONS } from '../../src/diagnose/expectations.js';
import { SOFTWARE_DIRTY_NOTE } from '../../src/diagnose/assess.js';
import type { CheckReport, GuestMachine, RunReport } from '../../src/model/report.js';
import { qemuProcesses, runCli } from './cli.js';
import { acquireKernel, parseKernelSpec } from '../../src/kernel/index.js';
import { kprobeArgs, type Arch } from '../../src/kernel/arch.js';
import { cacheRoot } from '../../src/util/paths.js';
import { parseValidResults } from '../support/schema.js';
import { expectedGrid, gridOf, remapSizes } from '../support/grid.js';

afterEach(() => {
  expect(qemuProcesses()).toEqual([]);
});

const tmp = mkdtempSync(join(tmpdir(), 'mmaplab-arm64-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('mmaplab run --arch arm64 on debian:bookworm', () => {
  let grid: { exitCode: number | undefined; stdout: string; stderr: string };
  const junit = join(tmp, 'junit.xml');

  beforeAll(async () => {
    grid = await runCli(['run', '--arch', 'arm64', '--json', '--junit', junit]);
  });

  it('boots the cloud-arm64 kernel on the virt machine and the real grid equals the expectations table, as on amd64', () => {
    expect(grid.stderr).toBe('');
    const r = parseValidResults<RunReport & { machine: GuestMachine }>(grid.stdout);
    expect(r.kernel).toMatchObject({ spec: 'debian:bookworm', flavour: 'cloud-arm64', arch: 'arm64', release: expect.stringMatching(/^6\.1\.0-\d+-cloud-arm64$/) });
    expect(gridOf(r)).toEqual(expectedGrid());
    expect(r.kernelLog.problems).toEqual([]);
    // QEMU's max CPU manages the dirty bit in hardware: nothing to warn about.
    expect(r.notes).not.toContain(SOFTWARE_DIRTY_NOTE);
    expect(grid.exitCode).toBe(0);
  });

  it('reproduces the seed: SIGBUS at page 0 under MAP_PRIVATE after 16 traced -EINVALs of one page each ($arg4 in x3), 16/16 under MAP_SHARED', () => {
    const r = parseValidResults<RunReport>(grid.stdout);
    expect(r.strategies.every((s) => s.insmod?.ok && s.rmmod?.ok && s.tracing)).toBe(true);
    const cell = (check: string) => r.results.find((x) => x.strategy === 'seed' && x.check === check)!;
    expect(cell('private')).toMatchObject({ outcome: { kind: 'sigbus', page: 0 }, matchesExpected: true });
    expect(cell('private').traced).toEqual([expect.objectContaining({ fn: 'remap_pfn_range', calls: 16, returns: { '-22': 16 }, sizes: [4096] })]);
    expect(cell('shared')).toMatchObject({ outcome: { kind: 'ok', pagesOk: 16 }, matchesExpected: true });
    const records = readFileSync(join(r.artifacts.dir, 'records.jsonl'), 'utf8');
    const sizes = remapSizes(records, 'seed');
    expect(sizes.length).toBeGreaterThanOrEqual(16);
    expect(new Set(sizes)).toEqual(new Set(['0x1000']));
  });

  it('the JUnit names the architecture', () => {
    expect(readFileSync(junit, 'utf8')).toMatch(/<property name="arch" value="arm64"\/>/);
  });
});

describe('drivers that fail on arm64', () => {
  it("an oops is named at the driver's own line: arm64's report (Unable to handle kernel..., pc :, Call trace:) parsed and resolved by the cross addr2line", async () => {
    const r = await runCli(['check', '--json', '--arch', 'arm64', 'test/fixtures/drivers/null-deref-mmap']);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.kernel).toMatchObject({ arch: 'arm64' });
    expect(report.items.find((i) => i.id === 'shared')).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/^the driver crashed: Unable to handle kernel NULL pointer dereference at virtual address 0+ in broken_mmap\+0x[0-9a-f]+ \(test\/fixtures\/drivers\/null-deref-mmap\/null_deref\.c:19\)$/) });
    expect(r.exitCode).toBe(1);
  });

  it("the lab's own test program, 32-bit x86, is not run on arm64, and the report says why", async () => {
    const r = await runCli(['check', '--json', '--arch', 'arm64', 'test/fixtures/students/lab-vmmap-layout']);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.labTest).toEqual({ kind: 'skipped', program: 'test/fixtures/students/lab-vmmap-layout/test/mmap-test.c', reason: expect.stringMatching(/32-bit x86, which an arm64 guest does not run/) });
    expect(r.exitCode).toBe(0);
  });

  it('a vmalloc area left after rmmod is found though its caller, in the module gone, is a bare address beside the kernel image', async () => {
    const r = await runCli(['check', '--json', '--arch', 'arm64', 'test/fixtures/drivers/vmalloc-leak']);
    const report = parseValidResults<CheckReport>(r.stdout);
    expect(report.items.find((i) => i.id === 'leaks')).toMatchObject({ verdict: 'fail', reason: '1 vmalloc area still allocated' });
    expect(r.exitCode).toBe(1);
  });
});

describe('an arm64 CPU without hardware dirty-bit management (QEMU cortex-a57)', () => {
  it("PAGE_SHARED's write into a read-only mapping faults there, so the readonly check misses the bug: the report says so, once", async () => {
    const r = await runCli(['run', '--json', '--arch', 'arm64', '--strategy', 'page-shared,seed', '--check', 'readonly,shared'], { MMAPLAB_ARM64_CPU: 'cortex-a57' });
    const report = parseValidResults<RunReport>(r.stdout);
    const readonly = report.results.find((x) => x.strategy === 'page-shared' && x.check === 'readonly')!;
    // x86 (and the max CPU) let the write through; here it faulted, unlike the expectations table.
    expect(EXPECTATIONS['page-shared']!.readonly.kind).not.toBe(readonly.outcome.kind);
    expect(readonly.matchesExpected).toBe(false);
    expect(report.notes.filter((n) => n === SOFTWARE_DIRTY_NOTE)).toHaveLength(1);
    expect(r.exitCode).toBe(1);
  });
});

describe("the kprobe fetch-args checked against each kernel's own pt_regs and config", () => {
  /** The fields of the n-th `struct pt_regs {` in a header (x86's: the 32-bit one first, then the 64-bit one). */
  const fieldsOf = (header: string, n: number) => {
    const block = header.split(/^struct pt_regs \{$/m)[n + 1]!.split(/^\};$/m)[0]!;
    return [...block.matchAll(/^\s*(?:unsigned long|u64|s64)\s+(\w+)(?:\[\d+\])?;/gm)].map((m) => m[1]);
  };
  const headersOf = async (arch: Arch) => {
    const k = await acquireKernel(parseKernelSpec('debian:bookworm', undefined, arch), { cacheDir: cacheRoot() });
    const common = join(k.headersDir, '..', readdirSync(join(k.headersDir, '..')).find((d) => /-common$/.test(d))!);
    return { k, common, config: readFileSync(k.config, 'utf8') };
  };

  it("x86-64's register names are fields of its pt_regs; i386 and arm64 fetch $argN, which their kernels map (HAVE_FUNCTION_ARG_ACCESS_API)", async () => {
    const amd64 = await headersOf('amd64');
    const x86 = readFileSync(join(amd64.common, 'arch/x86/include/asm/ptrace.h'), 'utf8');
    const named = [...new Set([...Object.values(kprobeArgs('amd64')).join(' ').matchAll(/%(\w+)/g)].map((m) => m[1]))];
    expect(named.sort()).toEqual(['cx', 'di', 'dx', 'si']);
    expect(fieldsOf(x86, 1)).toEqual(expect.arrayContaining(named));
    for (const arch of ['i386', 'arm64'] as const) {
      const { config, common } = await headersOf(arch);
      expect(Object.values(kprobeArgs(arch)).join(' ')).toMatch(/\$arg4/);
      // $argN needs regs_get_kernel_argument(), which an architecture has with this config.
      expect(config).toMatch(/^CONFIG_HAVE_FUNCTION_ARG_ACCESS_API=y$/m);
      expect(config).toMatch(/^CONFIG_KPROBE_EVENTS=y$/m);
      // Where it finds them: i386's first three in ax, dx, cx (the fourth on the stack), arm64's in regs[0..7].
      const header = readFileSync(join(common, arch === 'i386' ? 'arch/x86/include/asm/ptrace.h' : 'arch/arm64/include/asm/ptrace.h'), 'utf8');
      if (arch === 'i386') expect(fieldsOf(header, 0)).toEqual(expect.arrayContaining(['ax', 'dx', 'cx', 'sp']));
      else expect(header).toMatch(/struct pt_regs \{[^]*?u64 regs\[31\];/);
    }
  });
});
